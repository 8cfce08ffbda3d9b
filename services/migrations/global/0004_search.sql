-- The search service's global index (services/search): hashtags and places
-- (counted from its post documents, which live in the shards), and explore's
-- item-item co-engagement model (written whole by the explore_model worker).
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public;

CREATE FUNCTION search_fold(text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, $1)) $$;

CREATE TABLE search_hashtags (
    name text PRIMARY KEY,
    post_count bigint NOT NULL DEFAULT 0,
    folded text GENERATED ALWAYS AS (search_fold(name)) STORED
);
CREATE INDEX search_hashtags_prefix_idx ON search_hashtags (folded text_pattern_ops) WHERE post_count > 0;
CREATE INDEX search_hashtags_trgm_idx ON search_hashtags USING gin (folded public.gin_trgm_ops) WHERE post_count > 0;

CREATE TABLE search_places (
    place_id bigint PRIMARY KEY,
    name text NOT NULL,
    lat double precision NOT NULL,
    lng double precision NOT NULL,
    post_count bigint NOT NULL DEFAULT 0,
    folded text GENERATED ALWAYS AS (search_fold(name)) STORED
);
CREATE INDEX search_places_prefix_idx ON search_places (folded text_pattern_ops) WHERE post_count > 0;
CREATE INDEX search_places_trgm_idx ON search_places USING gin (folded public.gin_trgm_ops) WHERE post_count > 0;

-- For each post, its most co-engaged posts (liked by the same people), cosine-scored.
CREATE TABLE search_neighbors (
    post_id bigint NOT NULL,
    neighbor_id bigint NOT NULL,
    score real NOT NULL,
    PRIMARY KEY (post_id, neighbor_id)
);
-- Popular recent public posts, for explore's cold start and blend (same worker).
CREATE TABLE search_popular (
    post_id bigint PRIMARY KEY,
    author_id bigint NOT NULL,
    score real NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE search_model_runs (
    id bigserial PRIMARY KEY,
    finished_at timestamptz NOT NULL DEFAULT now(),
    likes_used bigint NOT NULL,
    pairs bigint NOT NULL,
    seconds real NOT NULL
);
