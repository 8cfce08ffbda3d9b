-- Media: processed images and resumable uploads, in their owner's shard.
-- The bytes live in the blob store, named by the SHA-256 (hex) of their content.

CREATE TABLE media (
    id bigint PRIMARY KEY,
    owner_id bigint NOT NULL,
    -- Of the upright original, in pixels.
    width integer NOT NULL,
    height integer NOT NULL,
    -- BlurHash.
    placeholder text NOT NULL,
    -- The original as uploaded: private, kept for re-processing.
    original_key text NOT NULL,
    original_format text NOT NULL,
    original_bytes bigint NOT NULL,
    captured_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX media_owner_idx ON media (owner_id, id DESC);

CREATE TABLE media_variants (
    media_id bigint NOT NULL REFERENCES media (id) ON DELETE CASCADE,
    -- 150 (square), 320, 640 or 1080 (long edge).
    size integer NOT NULL,
    -- 'jpeg' or 'webp'.
    format text NOT NULL,
    width integer NOT NULL,
    height integer NOT NULL,
    blob_key text NOT NULL,
    byte_size integer NOT NULL,
    PRIMARY KEY (media_id, size, format)
);

-- A resumable upload. received_bytes moves only after the chunk is fsynced;
-- media_id is set in the transaction that creates the media, so completing
-- twice gives the same media.
CREATE TABLE uploads (
    id bigint PRIMARY KEY,
    owner_id bigint NOT NULL,
    content_type text NOT NULL,
    size_bytes bigint NOT NULL,
    sha256 text NOT NULL,
    received_bytes bigint NOT NULL DEFAULT 0 CHECK (received_bytes BETWEEN 0 AND size_bytes),
    media_id bigint REFERENCES media (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX uploads_expiry_idx ON uploads (expires_at);
