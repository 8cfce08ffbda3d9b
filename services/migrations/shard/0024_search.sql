-- The search service's index (services/search): its own documents, fed by
-- the accounts, posts, graph and engagement events and rebuilt from those
-- services by `python -m services.search.rebuild`. No other service reads
-- these tables. A user's document lives in the user's shard, a post's in its
-- author's (the post id's shard), a follow edge in both ends' shards, a like
-- in its post's shard: a search runs in every schema and merges.
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public;

-- Lower case without accents ("Zoë" -> "zoe"). unaccent() is only STABLE; the
-- dictionary named explicitly makes this IMMUTABLE, so columns and indexes use it.
CREATE FUNCTION search_fold(text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, $1)) $$;

-- Typo keys (a deletion neighbourhood, as SymSpell does): for each word of a
-- folded text, its prefixes of 4 to 7 characters and each of them with one
-- character deleted. A query prefix shares a key with a word when one typo
-- (a wrong, missing, extra or swapped letter) apart: "jhon" and "john" both
-- give "jon" and "jhn".
CREATE FUNCTION search_typo_keys(folded text, max_len int DEFAULT 7) RETURNS text[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT AS $$
DECLARE
    word text;
    prefix text;
    n int;
    i int;
    keys text[] := '{}';
BEGIN
    FOREACH word IN ARRAY regexp_split_to_array(folded, '[^[:alnum:]]+') LOOP
        FOR n IN 4..least(length(word), max_len) LOOP
            prefix := left(word, n);
            keys := keys || prefix;
            FOR i IN 1..n LOOP
                keys := keys || (left(prefix, i - 1) || substr(prefix, i + 1));
            END LOOP;
        END LOOP;
    END LOOP;
    RETURN keys;
END $$;

-- A post's searchable words: its caption and hashtags, folded (search_fold's
-- expression written out: a SQL function's body is resolved with the caller's
-- search_path, where this schema is not). IMMUTABLE by
-- declaration (array_to_string is STABLE only because of arrays of types whose
-- output may change; text[] does not).
CREATE FUNCTION search_post_document(caption text, hashtags text[]) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT to_tsvector('simple'::regconfig, lower(public.unaccent('public.unaccent'::regdictionary,
                                                                  caption || ' ' || array_to_string(hashtags, ' ')))) $$;

-- One row per user (deleted: a tombstone, so a late user.created cannot bring it back).
CREATE TABLE search_users (
    user_id bigint PRIMARY KEY,
    username text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    is_private boolean NOT NULL DEFAULT false,
    follower_count bigint NOT NULL DEFAULT 0,
    deleted boolean NOT NULL DEFAULT false,
    -- occurred_at of the event that wrote the row: an older event changes nothing.
    version timestamptz NOT NULL,
    folded text GENERATED ALWAYS AS (search_fold(username || ' ' || replace(username, '_', ' ') || ' '
                                                 || display_name)) STORED,
    typo_keys text[] GENERATED ALWAYS AS (search_typo_keys(search_fold(replace(username, '_', ' ') || ' '
                                                                       || display_name))) STORED
);
CREATE INDEX search_users_username_idx ON search_users (username text_pattern_ops) WHERE NOT deleted;
CREATE INDEX search_users_folded_idx ON search_users USING gin (folded public.gin_trgm_ops) WHERE NOT deleted;
CREATE INDEX search_users_typo_idx ON search_users USING gin (typo_keys) WHERE NOT deleted;

-- One row per post (deleted: a tombstone). place_id: services.search.service.place_id.
CREATE TABLE search_posts (
    post_id bigint PRIMARY KEY,
    author_id bigint NOT NULL,
    caption text NOT NULL DEFAULT '',
    hashtags text[] NOT NULL DEFAULT '{}',
    place_id bigint,
    like_count bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    version timestamptz NOT NULL,
    document tsvector GENERATED ALWAYS AS (search_post_document(caption, hashtags)) STORED
);
CREATE INDEX search_posts_document_idx ON search_posts USING gin (document) WHERE NOT deleted;
CREATE INDEX search_posts_hashtags_idx ON search_posts USING gin (hashtags) WHERE NOT deleted;
CREATE INDEX search_posts_place_idx ON search_posts (place_id, post_id DESC) WHERE NOT deleted AND place_id IS NOT NULL;
CREATE INDEX search_posts_recent_idx ON search_posts (created_at DESC) WHERE NOT deleted;

-- Follow edges (approved ones), in the follower's shard and again in the target's.
CREATE TABLE search_following (
    follower_id bigint NOT NULL,
    target_id bigint NOT NULL,
    PRIMARY KEY (follower_id, target_id)
);
CREATE TABLE search_followers (
    target_id bigint NOT NULL,
    follower_id bigint NOT NULL,
    PRIMARY KEY (target_id, follower_id)
);

-- Likes, in the post's shard (with its like_count, in one transaction).
CREATE TABLE search_likes (
    post_id bigint NOT NULL,
    user_id bigint NOT NULL,
    liked_at timestamptz NOT NULL,
    PRIMARY KEY (post_id, user_id)
);
CREATE INDEX search_likes_user_idx ON search_likes (user_id, liked_at DESC);
