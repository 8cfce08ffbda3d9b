"""stories' part of a data export (services.common.exports): the user's stories (expired and
deleted ones while they are kept) and highlights with their stories, their close friends, whose
stories they muted, and the stories they viewed (with their reaction) while those are kept."""

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
    "close_friends": ExportKind(
        "SELECT friend_id AS user_id, created_at FROM {schema}.close_friends WHERE user_id = %(user)s "
        "AND friend_id > %(after)s ORDER BY friend_id LIMIT %(limit)s",
        key="user_id"),
    "story_mutes": ExportKind(
        "SELECT target_id AS user_id, created_at FROM {schema}.story_mutes WHERE user_id = %(user)s "
        "AND target_id > %(after)s ORDER BY target_id LIMIT %(limit)s",
        key="user_id"),
    # NOTE: no index leads with viewer_id: each shard's views (a day's worth, as stories expire)
    # are read once per export.
    "story_views": ExportKind(
        "SELECT story_id, viewed_at, reaction FROM {schema}.story_views WHERE viewer_id = %(user)s "
        "AND story_id > %(after)s ORDER BY story_id LIMIT %(limit)s",
        key="story_id"),
}
