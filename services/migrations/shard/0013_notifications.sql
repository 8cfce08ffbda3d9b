-- The notifications service's tables (services/notifications), in the shard of
-- the user notified.

-- One act that notifies `user_id`: `source` names the act itself (a like is
-- "like:<post>:<actor>", a comment "comment:<comment>", a follow
-- "follow:<actor>"), so that taking the act back finds it. Acts of one line of
-- the notification centre share `group_key`.
CREATE TABLE notifications (
    user_id bigint NOT NULL,
    source text NOT NULL,
    group_key text NOT NULL,
    type text NOT NULL,
    actor_id bigint NOT NULL,
    post_id bigint NOT NULL DEFAULT 0,
    comment_id bigint NOT NULL DEFAULT 0,
    parent_comment_id bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    read boolean NOT NULL DEFAULT false,
    PRIMARY KEY (user_id, source)
);
CREATE INDEX notifications_group_idx ON notifications (user_id, group_key, created_at DESC);
CREATE INDEX notifications_actor_idx ON notifications (user_id, actor_id);
-- A deleted post or comment takes its notifications from every shard.
CREATE INDEX notifications_post_idx ON notifications (post_id) WHERE post_id <> 0;
CREATE INDEX notifications_comment_idx ON notifications (comment_id) WHERE comment_id <> 0;
CREATE INDEX notifications_parent_idx ON notifications (parent_comment_id) WHERE parent_comment_id <> 0;
CREATE INDEX notifications_unread_idx ON notifications (user_id, created_at) WHERE NOT read;

-- One line of the notification centre, kept from its acts in the same
-- transaction: the page is read from here, newest first.
CREATE TABLE notification_groups (
    user_id bigint NOT NULL,
    group_key text NOT NULL,
    -- What its lines are of ("like:<post>", "follow"; a standalone act's own source).
    thread text NOT NULL,
    type text NOT NULL,
    post_id bigint NOT NULL DEFAULT 0,
    comment_id bigint NOT NULL DEFAULT 0,
    parent_comment_id bigint NOT NULL DEFAULT 0,
    -- The first and the newest act: a grouped line takes new acts while the
    -- newest is recent enough and the first not too old.
    opened_at timestamptz NOT NULL,
    latest_at timestamptz NOT NULL,
    notification_count integer NOT NULL,
    actor_count integer NOT NULL,
    unread_count integer NOT NULL,
    PRIMARY KEY (user_id, group_key)
);
CREATE INDEX notification_groups_thread_idx ON notification_groups (user_id, thread, latest_at DESC);
CREATE INDEX notification_groups_latest_idx ON notification_groups (user_id, latest_at DESC, group_key DESC);
CREATE INDEX notification_groups_unread_idx ON notification_groups (user_id) WHERE unread_count > 0;

-- What a user chose; no row: the defaults (nothing muted, digests on).
CREATE TABLE notification_settings (
    user_id bigint PRIMARY KEY,
    muted_types text[] NOT NULL DEFAULT '{}',
    email_digest boolean NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The digest's view of each user: whether a stream is open (from realtime's
-- presence.changed events), since when it is not, and the last digest sent.
CREATE TABLE notification_digests (
    user_id bigint PRIMARY KEY,
    stream_open boolean NOT NULL DEFAULT false,
    -- When the user was last seen with a stream open (NULL: never seen).
    last_online_at timestamptz,
    -- When presence last changed: an older event never overrides a newer one.
    presence_at timestamptz,
    last_digest_at timestamptz
);
