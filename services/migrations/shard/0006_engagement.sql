-- Engagement: likes, comments, saves and the counts of likes and comments.
--
-- Likes, comments and counts live in the post's shard, so one post's likes
-- and its count are answered (and reconciled) by one schema; saves live in
-- the saver's shard, so "my saved posts" is one index range.
--
-- NOTE: post_counts, not posts.like_count / posts.comment_count, holds the
-- counts. The engagement service's flusher UPSERTs it (one row per post,
-- adding the coalesced deltas of its Redis counters) and the reconciliation
-- job sets it from the rows; posts' own columns stay 0 and the post
-- hydrator takes the counts from the engagement service.

-- user_id likes post_id; in post_id's shard.
CREATE TABLE likes (
    post_id bigint NOT NULL,
    user_id bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, user_id)
);
CREATE INDEX likes_recent_idx ON likes (post_id, created_at DESC, user_id DESC);

-- Comments and their replies (one level deep); in post_id's shard, and the
-- id carries that shard. Ids are time-ordered: "newest first" is "highest id
-- first". A top-level comment's reply_count moves in the transaction that
-- adds or removes one of its replies; deleting it deletes its replies.
CREATE TABLE comments (
    id bigint PRIMARY KEY,
    post_id bigint NOT NULL,
    author_id bigint NOT NULL,
    parent_id bigint REFERENCES comments (id) ON DELETE CASCADE,
    text text NOT NULL CHECK (char_length(text) BETWEEN 1 AND 2200),
    mentions text[] NOT NULL DEFAULT '{}',
    reply_count bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX comments_top_level_idx ON comments (post_id, id) WHERE parent_id IS NULL;
CREATE INDEX comments_replies_idx ON comments (parent_id, id) WHERE parent_id IS NOT NULL;
-- Reconciliation counts a post's comments of both levels.
CREATE INDEX comments_post_idx ON comments (post_id);

-- user_id saved post_id; in user_id's shard.
CREATE TABLE saves (
    user_id bigint NOT NULL,
    post_id bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, post_id)
);
CREATE INDEX saves_recent_idx ON saves (user_id, created_at DESC, post_id DESC);

-- Counts of a post's likes and comments (both levels); in the post's shard.
-- Eventually consistent with the rows: see the note above.
CREATE TABLE post_counts (
    post_id bigint PRIMARY KEY,
    like_count bigint NOT NULL DEFAULT 0,
    comment_count bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The counter flushes applied to this shard: a flush interrupted after its
-- commit is retried, and this makes the retry add nothing twice. Rows older
-- than a day are pruned (a retry comes within seconds).
CREATE TABLE counter_flushes (
    flush_id text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX counter_flushes_applied_idx ON counter_flushes (applied_at);
