"""notifications' part of a data export (services.common.exports): the user's notification
settings. The notifications themselves are others' acts (each in its owner's part: the likes in the
liker's), kept here only as a view of them."""

from __future__ import annotations

from services.common.exports import rows_of

KINDS = {
    "notification_settings": rows_of("notification_settings", "user_id", "user_id", "muted_types",
                                     "email_digest", "updated_at"),
}
