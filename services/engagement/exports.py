"""engagement's part of a data export (services.common.exports): the comments the user wrote, the
posts they liked and saved. Comments others wrote on the user's posts are theirs, not in it."""

from __future__ import annotations

from services.common.exports import rows_of

KINDS = {
    "comments": rows_of("comments", "author_id", "id"),
    "likes": rows_of("likes", "user_id", "post_id", "created_at"),
    "saves": rows_of("saves", "user_id", "post_id", "created_at"),
}
