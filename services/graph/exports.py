"""graph's part of a data export (services.common.exports): whom the user follows, who follows
them, whom they blocked and muted, the follow requests they sent and those waiting for them."""

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
    "mutes": ExportKind(
        "SELECT target_id AS user_id, created_at FROM {schema}.mutes WHERE user_id = %(user)s AND "
        "target_id > %(after)s ORDER BY target_id LIMIT %(limit)s",
        key="user_id"),
    "follow_requests_sent": ExportKind(
        "SELECT target_id AS user_id, created_at FROM {schema}.sent_follow_requests WHERE user_id = "
        "%(user)s AND target_id > %(after)s ORDER BY target_id LIMIT %(limit)s",
        key="user_id"),
    "follow_requests_received": ExportKind(
        "SELECT requester_id AS user_id, created_at FROM {schema}.follow_requests WHERE user_id = "
        "%(user)s AND requester_id > %(after)s ORDER BY requester_id LIMIT %(limit)s",
        key="user_id"),
}
