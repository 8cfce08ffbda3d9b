-- The follow graph. Every edge is written on both sides, so each side's
-- questions ("whom do I follow", "who follows me", "did they block me") are
-- answered from one shard: the asker's.
--
-- NOTE: users.follower_count and users.following_count (accounts' table, in
-- the same shard schema) are maintained by the graph service in the same
-- transaction as the edge they count.

-- user_id follows target_id; in user_id's shard.
CREATE TABLE following (
    user_id bigint NOT NULL,
    target_id bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, target_id)
);
CREATE INDEX following_recent_idx ON following (user_id, created_at DESC, target_id DESC);

-- follower_id follows user_id; in user_id's shard.
CREATE TABLE followers (
    user_id bigint NOT NULL,
    follower_id bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, follower_id)
);
CREATE INDEX followers_recent_idx ON followers (user_id, created_at DESC, follower_id DESC);

-- requester_id asked to follow the private account user_id; in user_id's shard.
CREATE TABLE follow_requests (
    user_id bigint NOT NULL,
    requester_id bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, requester_id)
);
CREATE INDEX follow_requests_recent_idx ON follow_requests (user_id, created_at DESC, requester_id DESC);

-- The same request seen from the requester; in user_id's (the requester's) shard.
CREATE TABLE sent_follow_requests (
    user_id bigint NOT NULL,
    target_id bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, target_id)
);

-- user_id blocked target_id; in user_id's shard.
CREATE TABLE blocks (
    user_id bigint NOT NULL,
    target_id bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, target_id)
);

-- blocker_id blocked user_id; in user_id's shard.
CREATE TABLE blocked_by (
    user_id bigint NOT NULL,
    blocker_id bigint NOT NULL,
    PRIMARY KEY (user_id, blocker_id)
);

-- user_id muted target_id (their feed only); in user_id's shard.
CREATE TABLE mutes (
    user_id bigint NOT NULL,
    target_id bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, target_id)
);
