-- Accounts' devices (services/accounts/devices.py), in the user's shard: the
-- public keys of a user's devices for end-to-end encrypted conversations.
-- Only public keys: a private key never leaves its device.
CREATE TABLE devices (
    user_id bigint NOT NULL,
    id bigint NOT NULL,
    public_key bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, id)
);
