-- Unsharded lookups that must be unique across every shard. Small, hot and
-- read-mostly: they map a login name to the id (and so the shard) of a user.
CREATE TABLE usernames (
    username text PRIMARY KEY CHECK (username ~ '^[a-z0-9._]{1,30}$'),
    user_id bigint NOT NULL UNIQUE
);

CREATE TABLE emails (
    email text PRIMARY KEY CHECK (email = lower(email)),
    user_id bigint NOT NULL UNIQUE
);
