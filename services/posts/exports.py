"""posts' part of a data export (services.common.exports): the user's posts, hidden ones too."""

from __future__ import annotations

from services.common.exports import ExportKind

KINDS = {
    "posts": ExportKind(
        "SELECT * FROM {schema}.posts WHERE author_id = %(user)s AND id > %(after)s ORDER BY id "
        "LIMIT %(limit)s",
        key="id"),
}
