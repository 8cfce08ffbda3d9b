"""graph's part of a data export (services.common.exports): whom the user follows, who follows
them, whom they blocked."""

from __future__ import annotations

from services.common.exports import ExportKind

KINDS = {
    "following": ExportKind(
        "SELECT target_id AS user_id, created_at FROM {schema}.following WHERE user_id = %(user)s "
        "AND target_id > %(after)s ORDER BY target_id LIMIT %(limit)s",
        key="user_id"),
    "followers": ExportKind(
        "SELECT follower_id AS user_id, created_at FROM {schema}.followers WHERE user_id = "
        "%(user)s AND follower_id > %(after)s ORDER BY follower_id LIMIT %(limit)s",
        key="user_id"),
    "blocks": ExportKind(
        "SELECT target_id AS user_id, created_at FROM {schema}.blocks WHERE user_id = %(user)s AND "
        "target_id > %(after)s ORDER BY target_id LIMIT %(limit)s",
        key="user_id"),
}
