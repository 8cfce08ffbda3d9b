-- The stories service's tables (services/stories), each in the shard of the
-- user it belongs to: a story, its views and its highlights in the author's;
-- close friends and story mutes in the shard of the user whose list it is.

-- A story shows one media item until expires_at (created_at + PICTOR_STORY_TTL),
-- then stays for its author's archive and for highlights; deleted_at hides it
-- at once everywhere. view_count moves in the transaction that inserts views.
CREATE TABLE stories (
    id bigint PRIMARY KEY,
    author_id bigint NOT NULL,
    media_id bigint NOT NULL,
    -- 1 EVERYONE, 2 CLOSE_FRIENDS (pictor.stories.v1.Audience).
    audience smallint NOT NULL,
    allow_replies boolean NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    view_count bigint NOT NULL DEFAULT 0,
    deleted_at timestamptz
);
-- Active stories (expires_at > now) and the archive (expires_at <= now), per author.
CREATE INDEX stories_author_idx ON stories (author_id, expires_at DESC, id DESC) WHERE deleted_at IS NULL;

-- viewer_id viewed story_id (never its author), with their reaction if any.
CREATE TABLE story_views (
    story_id bigint NOT NULL,
    viewer_id bigint NOT NULL,
    viewed_at timestamptz NOT NULL,
    reaction text NOT NULL DEFAULT '',
    PRIMARY KEY (story_id, viewer_id)
);
CREATE INDEX story_views_recent_idx ON story_views (story_id, viewed_at DESC, viewer_id DESC);

CREATE TABLE highlights (
    id bigint PRIMARY KEY,
    owner_id bigint NOT NULL,
    title text NOT NULL,
    cover_story_id bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX highlights_owner_idx ON highlights (owner_id, created_at DESC, id DESC);

CREATE TABLE highlight_stories (
    highlight_id bigint NOT NULL,
    story_id bigint NOT NULL,
    added_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (highlight_id, story_id)
);
-- A deleted story leaves every highlight.
CREATE INDEX highlight_stories_story_idx ON highlight_stories (story_id);

-- friend_id is on user_id's close friends list.
CREATE TABLE close_friends (
    user_id bigint NOT NULL,
    friend_id bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, friend_id)
);
CREATE INDEX close_friends_recent_idx ON close_friends (user_id, created_at DESC, friend_id DESC);

-- user_id hides target_id's stories from their tray (and still follows them).
CREATE TABLE story_mutes (
    user_id bigint NOT NULL,
    target_id bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, target_id)
);
