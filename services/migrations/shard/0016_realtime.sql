-- Realtime's tables (services/realtime), in the user's shard.

-- The presence state last recorded per user. A change is taken only when it
-- differs from this row (compare-and-set in one statement), with its
-- presence.changed event in the outbox of the same transaction.
CREATE TABLE presence (
    user_id bigint PRIMARY KEY,
    state text NOT NULL CHECK (state IN ('ONLINE', 'IDLE', 'OFFLINE')),
    last_active_at timestamptz,
    changed_at timestamptz NOT NULL DEFAULT now()
);

-- The classifier's labels per user (LIVE, ACTIVE, PASSIVE or INACTIVE, and
-- POPULAR), and every change of them. Redis holds the same labels for reads
-- (services/realtime/keys.py); these rows are their record.
CREATE TABLE user_classes (
    user_id bigint PRIMARY KEY,
    classes text[] NOT NULL,
    since timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE user_class_history (
    user_id bigint NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    classes text[] NOT NULL,
    PRIMARY KEY (user_id, changed_at)
);
