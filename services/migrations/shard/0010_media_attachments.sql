-- Media keep their own record of which posts use them (issue 11: one owner per table).
--
-- Until now posts' create locked `media` rows and media's release read
-- `posts`. Now posts calls MediaService/AttachMedia before it inserts a post:
-- media locks its rows (FOR SHARE), checks they exist, are the author's and
-- ready, and records (media_id, post_id) here. ReleaseMedia, after the post
-- is deleted, removes the post's attachments and deletes the media no
-- attachment holds any more, under FOR UPDATE on the same rows. So a post
-- never ends up holding deleted media: whichever comes second sees the other.
--
-- A post whose creation fails after its attachment leaves the attachment
-- unconfirmed; the collector (services/media/collector.py) asks posts about
-- unconfirmed attachments older than PICTOR_MEDIA_ATTACHMENT_GRACE, confirms
-- those whose post exists and drops the others.
CREATE TABLE media_attachments (
    media_id bigint NOT NULL,
    post_id bigint NOT NULL,
    attached_at timestamptz NOT NULL DEFAULT now(),
    -- posts said the post exists: never asked about again.
    confirmed boolean NOT NULL DEFAULT false,
    PRIMARY KEY (media_id, post_id)
);
CREATE INDEX media_attachments_post_idx ON media_attachments (post_id);
CREATE INDEX media_attachments_unconfirmed_idx ON media_attachments (attached_at) WHERE NOT confirmed;

-- NOTE: the one and last time media reads posts' table: the attachments of
-- the posts that exist when this runs (cleaned-up posts released theirs).
INSERT INTO media_attachments (media_id, post_id, confirmed)
SELECT m, p.id, true FROM posts p, unnest(p.media_ids) AS m WHERE p.cleaned_at IS NULL
ON CONFLICT DO NOTHING;

-- Only media's release used it (0007).
DROP INDEX posts_media_idx;

-- The collector: media in no post for PICTOR_MEDIA_UNUSED_TTL.
CREATE INDEX media_created_idx ON media (created_at);

-- Per-user limits on open uploads (PICTOR_MEDIA_MAX_OPEN_UPLOADS, PICTOR_MEDIA_MAX_UPLOAD_MB).
CREATE INDEX uploads_open_idx ON uploads (owner_id) WHERE media_id IS NULL;
