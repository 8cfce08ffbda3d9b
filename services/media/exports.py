"""media's part of a data export (services.common.exports): the user's media items; their original
files travel through ReadOriginal."""

from __future__ import annotations

from services.common.exports import rows_of

KINDS = {
    "media": rows_of("media", "owner_id", "id", "width", "height", "original_format", "original_bytes",
                     "captured_at", "alt_text", "created_at", "kind", "state", "duration_ms", "source_media_id"),
}
