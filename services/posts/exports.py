"""posts' part of a data export (services.common.exports): the user's posts, hidden ones too."""

from __future__ import annotations

from services.common.exports import rows_of

KINDS = {
    "posts": rows_of("posts", "author_id", "id"),
}
