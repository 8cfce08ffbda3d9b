-- A user's rows live in the logical shard encoded in their id.
CREATE TABLE users (
    id bigint PRIMARY KEY,
    username text NOT NULL,
    email text NOT NULL,
    password_hash text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    bio text NOT NULL DEFAULT '',
    avatar_media_id bigint,
    is_private boolean NOT NULL DEFAULT false,
    follower_count bigint NOT NULL DEFAULT 0,
    following_count bigint NOT NULL DEFAULT 0,
    post_count bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Refresh tokens: the client holds "<id>.<secret>"; we keep sha256(secret).
-- Rotation marks a token used and issues its successor in the same family;
-- presenting a used token again revokes the whole family.
CREATE TABLE refresh_tokens (
    id bigint PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id bigint NOT NULL,
    secret_hash bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    revoked_at timestamptz
);

CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
