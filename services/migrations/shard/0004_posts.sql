-- Posts live in their author's shard; ids are time-ordered, so "newest
-- first" is "highest id first".
--
-- NOTE: users.post_count (accounts' table, same schema) is maintained by the
-- posts service in the transaction that creates or deletes the post.
CREATE TABLE posts (
    id bigint PRIMARY KEY,
    author_id bigint NOT NULL,
    caption text NOT NULL DEFAULT '',
    hashtags text[] NOT NULL DEFAULT '{}',
    mentions text[] NOT NULL DEFAULT '{}',
    media_ids bigint[] NOT NULL,
    location_name text,
    location_lat double precision,
    location_lng double precision,
    like_count bigint NOT NULL DEFAULT 0,
    comment_count bigint NOT NULL DEFAULT 0,
    request_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz,
    -- Soft delete: hidden at once; cleanup (feeds, media) runs afterwards.
    deleted_at timestamptz,
    CHECK (cardinality(media_ids) BETWEEN 1 AND 10)
);

CREATE INDEX posts_author_recent_idx ON posts (author_id, id DESC) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX posts_request_idx ON posts (author_id, request_id) WHERE request_id IS NOT NULL;
CREATE INDEX posts_hashtags_idx ON posts USING gin (hashtags) WHERE deleted_at IS NULL;
