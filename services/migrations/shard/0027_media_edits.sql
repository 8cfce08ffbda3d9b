-- Photo editing and alt text (issue 17).
--
-- An edit is a media item of its own, made from the original's kept bytes:
-- original_key names the same blob as the original's row (so the bytes stay
-- while either row does), source_media_id the original item (not a foreign
-- key: the original may be collected while its edit lives on), and edit the
-- recipe (services.media.edits.Edit.to_dict). alt_text is for screen readers.
ALTER TABLE media
    ADD COLUMN alt_text text NOT NULL DEFAULT '',
    ADD COLUMN source_media_id bigint,
    ADD COLUMN edit jsonb;

-- The alt text given when a resumable upload starts, for the media it completes into.
ALTER TABLE uploads ADD COLUMN alt_text text NOT NULL DEFAULT '';
