-- Data exports (POST /v1/users/me:export; services/accounts/exports.py): one row per export job, in
-- the user's shard (the job's id is made in it, so the archive's URL finds it by id alone). At most
-- one PENDING or RUNNING per user. The worker that runs one holds it by leased_until; one whose
-- worker died is taken again once the lease is past.
CREATE TABLE exports (
    id bigint PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    state text NOT NULL CHECK (state IN ('PENDING', 'RUNNING', 'READY', 'FAILED', 'EXPIRED')),
    items_done bigint NOT NULL DEFAULT 0,
    current_step text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    expires_at timestamptz,
    leased_until timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    size_bytes bigint NOT NULL DEFAULT 0,
    error text NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX exports_one_running_idx ON exports (user_id) WHERE state IN ('PENDING', 'RUNNING');
CREATE INDEX exports_user_idx ON exports (user_id, id DESC);
CREATE INDEX exports_waiting_idx ON exports (state, leased_until) WHERE state IN ('PENDING', 'RUNNING');
CREATE INDEX exports_expiring_idx ON exports (expires_at) WHERE state = 'READY';
