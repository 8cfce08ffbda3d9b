-- The digest's projection of realtime's user classes (user.classified on topic "classes"): a
-- digest goes only to users in one of PICTOR_DIGEST_CLASSES (PASSIVE by default: they visit but
-- rarely act; LIVE and ACTIVE users see their notifications in the app).
ALTER TABLE notification_digests
    ADD COLUMN classes text[],
    -- When the labels were given: an older event never overrides a newer one.
    ADD COLUMN classes_at timestamptz;

-- Users labelled before the event existed start from the labels realtime stores in this shard.
INSERT INTO notification_digests AS d (user_id, classes, classes_at)
SELECT user_id, classes, since FROM user_classes
ON CONFLICT (user_id) DO UPDATE SET classes = excluded.classes, classes_at = excluded.classes_at;
