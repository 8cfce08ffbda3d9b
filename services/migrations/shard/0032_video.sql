-- Video (issue 17): a media item may be a video, transcoded after its upload by the
-- transcoder worker (services/media/transcoder.py).
--
-- A video's media row is written when its upload completes, in state PROCESSING,
-- together with its job (video_jobs) in the same transaction: an acknowledged
-- upload always has a job or an outcome. original_key names the uploaded file in
-- the blob store. When the job finishes, the same transaction writes the files
-- (media_variants: the poster's image variants, and 720/360 mp4, m3u8, m4s),
-- the state (READY or FAILED), deletes the job and writes media.processed to the
-- outbox.
ALTER TABLE media
    ADD COLUMN kind text NOT NULL DEFAULT 'photo',
    ADD COLUMN state text NOT NULL DEFAULT 'READY',
    ADD COLUMN failure_reason text NOT NULL DEFAULT '',
    ADD COLUMN duration_ms bigint NOT NULL DEFAULT 0,
    ADD COLUMN has_audio boolean NOT NULL DEFAULT false;

-- One row per video waiting for (or in) the transcoder. A transcoder takes a job by
-- setting leased_until (FOR UPDATE SKIP LOCKED) and pushes it forward while it
-- works (heartbeat); a job whose lease ran out (its transcoder died) is taken
-- again. attempts counts the takes: past PICTOR_VIDEO_MAX_ATTEMPTS the video FAILs.
CREATE TABLE video_jobs (
    media_id bigint PRIMARY KEY REFERENCES media (id) ON DELETE CASCADE,
    owner_id bigint NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    leased_until timestamptz,
    leased_by text NOT NULL DEFAULT '',
    -- 0..100, for whoever asks how far it is.
    progress integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX video_jobs_due_idx ON video_jobs (leased_until NULLS FIRST, created_at);
