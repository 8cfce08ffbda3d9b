"""stories' part of a data export (services.common.exports): the user's stories (expired and
deleted ones while they are kept) and highlights with their stories, their close friends, whose
stories they muted, and the stories they viewed (with their reaction) while those are kept."""

from __future__ import annotations

from services.common.exports import ExportKind, rows_of, user_list

KINDS = {
    "stories": rows_of("stories", "author_id", "id"),
    "highlights": ExportKind(
        "SELECT h.*, ARRAY(SELECT story_id FROM {schema}.highlight_stories hs WHERE "
        "hs.highlight_id = h.id ORDER BY hs.added_at) AS story_ids FROM {schema}.highlights h "
        "WHERE h.owner_id = %(user)s AND h.id > %(after)s ORDER BY h.id LIMIT %(limit)s",
        key="id"),
    "close_friends": user_list("close_friends", "friend_id"),
    "story_mutes": user_list("story_mutes", "target_id"),
    # NOTE: no index leads with viewer_id: each shard's views (a day's worth, as stories expire)
    # are read once per export.
    "story_views": rows_of("story_views", "viewer_id", "story_id", "viewed_at", "reaction"),
}
