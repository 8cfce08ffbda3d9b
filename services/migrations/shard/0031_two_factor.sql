-- Two-factor sign-in (TOTP, RFC 6238; services/accounts/totp.py). A secret per user, on once a
-- code made from it was shown (enabled_at); the last step accepted, so a code is never good twice;
-- single-use recovery codes, kept as sha256 (they are random, like refresh tokens).
CREATE TABLE two_factor (
    user_id bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret text NOT NULL,
    enabled_at timestamptz,
    last_step bigint NOT NULL DEFAULT -1
);

CREATE TABLE recovery_codes (
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash bytea NOT NULL,
    used_at timestamptz,
    PRIMARY KEY (user_id, code_hash)
);
