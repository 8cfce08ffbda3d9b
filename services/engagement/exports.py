"""engagement's part of a data export (services.common.exports): the comments the user wrote, the
posts they liked and saved. Comments others wrote on the user's posts are theirs, not in it."""

from __future__ import annotations

from services.common.exports import ExportKind

KINDS = {
    "comments": ExportKind(
        "SELECT * FROM {schema}.comments WHERE author_id = %(user)s AND id > %(after)s ORDER BY id "
        "LIMIT %(limit)s",
        key="id"),
    "likes": ExportKind(
        "SELECT post_id, created_at FROM {schema}.likes WHERE user_id = %(user)s AND post_id > "
        "%(after)s ORDER BY post_id LIMIT %(limit)s",
        key="post_id"),
    "saves": ExportKind(
        "SELECT post_id, created_at FROM {schema}.saves WHERE user_id = %(user)s AND post_id > "
        "%(after)s ORDER BY post_id LIMIT %(limit)s",
        key="post_id"),
}
