-- What cleaning up after a deleted post needs (services/posts/cleanup.py).
--
-- A deleted post is hidden at once (posts.deleted_at). Afterwards the cleanup
-- worker removes its likes, comments, counts and saves (engagement), the
-- media no live post holds any more and the blobs no media names (media),
-- and scrubs the post's text; cleaned_at records that all of it finished, so
-- a sweep can finish what a lost event or a crash left.
--
-- NOTE: two reads across services' tables, both in the author's shard schema:
-- - posts' create locks the media it attaches (FOR KEY SHARE on media rows)
--   in the transaction that inserts the post;
-- - media's release locks the media rows (FOR UPDATE), then reads which of
--   them live posts still hold (posts_media_idx) before deleting the rest.
-- So a media item is never deleted under a post being created with it.

ALTER TABLE posts ADD COLUMN cleaned_at timestamptz;
CREATE INDEX posts_uncleaned_idx ON posts (deleted_at) WHERE deleted_at IS NOT NULL AND cleaned_at IS NULL;
CREATE INDEX posts_media_idx ON posts USING gin (media_ids) WHERE deleted_at IS NULL;

-- Saves live in the saver's shard: purging a post's saves asks every shard.
CREATE INDEX saves_post_idx ON saves (post_id);

-- A blob is deleted only when no media row in any shard names it.
CREATE INDEX media_original_key_idx ON media (original_key);
CREATE INDEX media_variants_blob_idx ON media_variants (blob_key);

-- Blob keys of deleted media rows, queued in the transaction that deletes the
-- rows: the collector deletes each blob no media names any more, then its
-- row, so a crash between the two leaks nothing.
CREATE TABLE blob_garbage (
    blob_key text PRIMARY KEY,
    queued_at timestamptz NOT NULL DEFAULT now()
);

-- An upload's result goes with its media.
ALTER TABLE uploads DROP CONSTRAINT uploads_media_id_fkey,
    ADD CONSTRAINT uploads_media_id_fkey FOREIGN KEY (media_id) REFERENCES media (id) ON DELETE CASCADE;
