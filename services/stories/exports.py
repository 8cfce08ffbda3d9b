"""stories' part of a data export (services.common.exports): the user's stories (expired and
deleted ones while they are kept) and highlights with their stories."""

from __future__ import annotations

from services.common.exports import ExportKind

KINDS = {
    "stories": ExportKind(
        "SELECT * FROM {schema}.stories WHERE author_id = %(user)s AND id > %(after)s ORDER BY id "
        "LIMIT %(limit)s",
        key="id"),
    "highlights": ExportKind(
        "SELECT h.*, ARRAY(SELECT story_id FROM {schema}.highlight_stories hs WHERE "
        "hs.highlight_id = h.id ORDER BY hs.added_at) AS story_ids FROM {schema}.highlights h "
        "WHERE h.owner_id = %(user)s AND h.id > %(after)s ORDER BY h.id LIMIT %(limit)s",
        key="id"),
}
