-- The moderation service's tables (services/moderation). A report and the audit entries of a
-- target live in the target's shard (the shard in its id), with the outbox that carries the
-- action to the target's owner; a moderator grant lives in the moderator's shard.

-- One row per reporter and target while open: a repeat finds it (reports_open_idx).
-- status: OPEN, then ACTIONED (hidden or suspended) or DISMISSED when a moderator acts.
CREATE TABLE moderation_reports (
    id bigint PRIMARY KEY,
    reporter_id bigint NOT NULL,
    -- pictor.moderation.v1.TargetType (1 POST, 2 COMMENT, 3 STORY, 4 MESSAGE, 5 ACCOUNT).
    target_type smallint NOT NULL,
    target_id bigint NOT NULL,
    -- Who wrote it (the account itself for ACCOUNT), as its owner answered.
    owner_id bigint NOT NULL,
    -- pictor.moderation.v1.Reason.
    reason smallint NOT NULL,
    note text NOT NULL DEFAULT '',
    status text NOT NULL DEFAULT 'OPEN',
    created_at timestamptz NOT NULL DEFAULT now(),
    closed_at timestamptz,
    closed_by bigint
);
CREATE UNIQUE INDEX moderation_reports_open_idx ON moderation_reports (reporter_id, target_type, target_id)
    WHERE status = 'OPEN';
CREATE INDEX moderation_reports_target_idx ON moderation_reports (target_type, target_id) WHERE status = 'OPEN';

-- Who may work the queue (granted and revoked by the admin command).
CREATE TABLE moderators (
    user_id bigint PRIMARY KEY,
    granted_at timestamptz NOT NULL DEFAULT now()
);

-- Every moderator action and every grant or revoke, never updated or deleted.
CREATE TABLE moderation_audit (
    id bigint PRIMARY KEY,
    -- The moderator; 0 for the admin command.
    actor_id bigint NOT NULL,
    -- pictor.moderation.v1.Action.
    action smallint NOT NULL,
    target_type smallint NOT NULL,
    target_id bigint NOT NULL,
    owner_id bigint NOT NULL,
    reports_closed integer NOT NULL DEFAULT 0,
    note text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
