"""Data export, the owners' side: each owner pages one user's rows of one kind to accounts' exporter.

`POST /v1/users/me:export` (accounts) makes an export job; accounts' exporter
worker builds the archive by asking every owner, over its mesh-only
`ExportUserData` (pictor.exports.v1 messages), for the user's rows kind by
kind, never by reading their tables. An owner declares its kinds here: a SELECT
per kind over its own tables, paged by a bigint key, one logical shard after
the other (a user's rows may live in any shard: comments in their post's).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from pictor.exports.v1 import exports_pb2
from psycopg.rows import dict_row

from services.common.db import Database, shard_schema
from services.common.errors import InvalidArgument, Unavailable
from services.common.pagination import decode_token, encode_token, page_size

DEFAULT_PAGE = 500
MAX_PAGE = 2000
# Integers this large (ids) travel as strings, as the JSON API renders int64.
SAFE_INT = 2 ** 31


@dataclass(frozen=True)
class ExportKind:
    # A SELECT over `{schema}`'s tables with the named parameters %(user)s, %(after)s and %(limit)s:
    # the user's rows whose `key` column is above %(after)s, in `key` order, at most %(limit)s.
    sql: str
    key: str


def rows_of(table: str, owner: str, key: str, *columns: str, key_as: str = "") -> ExportKind:
    """The rows of `{schema}.table` whose `owner` column is the user, paged by the bigint column
    `key`: all their columns, or `key` (shown as `key_as` when given) and `columns`."""
    shown = ", ".join([f"{key} AS {key_as}" if key_as else key, *columns]) if columns or key_as else "*"
    return ExportKind(f"SELECT {shown} FROM {{schema}}.{table} WHERE {owner} = %(user)s AND {key} > %(after)s "
                      f"ORDER BY {key} LIMIT %(limit)s", key=key_as or key)


def user_list(table: str, column: str) -> ExportKind:
    """A list of accounts the user keeps in `table` (whom they follow, block, mute...): the
    accounts (in `column`, shown as user_id) with when each was added."""
    return rows_of(table, "user_id", column, "created_at", key_as="user_id")


def _json_value(value: object) -> object:
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return str(value) if abs(value) >= SAFE_INT else value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return str(value)


def _shard(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("not a shard")
    return value


def to_json(row: dict) -> str:
    return json.dumps({k: _json_value(v) for k, v in row.items()}, separators=(",", ":"), ensure_ascii=False)


class UserDataExport:
    """One owner's kinds of a user's rows, paged for the exporter."""

    def __init__(self, db: Database, kinds: dict[str, ExportKind]) -> None:
        self.db = db
        self.kinds = kinds

    async def page(self, user_id: int, kind: str, requested: int, page_token: str) -> tuple[list[str], str]:
        """A page of `user_id`'s rows of `kind` as JSON objects, and the next page's token ("" at the end)."""
        found = self.kinds.get(kind)
        if found is None:
            raise InvalidArgument("kind", f"kind must be one of {', '.join(sorted(self.kinds))}",
                                  reason="EXPORT_KIND_UNKNOWN")
        if user_id <= 0:
            raise InvalidArgument("user_id", "user_id must be a positive id")
        limit = page_size(requested, default=DEFAULT_PAGE, maximum=MAX_PAGE)
        scope = f"export:{kind}"
        cursor = decode_token(page_token, scope, shard=_shard, after=int) or {"shard": 0, "after": 0}
        shard, after = cursor["shard"], cursor["after"]
        while shard < self.db.logical_shards:
            sql = found.sql.format(schema=shard_schema(shard))
            async with self.db.for_shard(shard).connection() as conn:
                cur = conn.cursor(row_factory=dict_row)
                await cur.execute(sql, {"user": user_id, "after": after, "limit": limit})
                rows = await cur.fetchall()
            if rows:
                if len(rows) == limit:
                    next_token = encode_token(scope, shard=shard, after=int(rows[-1][found.key]))
                elif shard + 1 < self.db.logical_shards:
                    next_token = encode_token(scope, shard=shard + 1, after=0)
                else:
                    next_token = ""
                return [to_json(r) for r in rows], next_token
            shard, after = shard + 1, 0
        return [], ""


async def answer(user_data: UserDataExport | None,
                 request: exports_pb2.ExportUserDataRequest) -> exports_pb2.ExportUserDataResponse:
    """An owner's ExportUserData handler's work (each servicer calls it with its kinds)."""
    if user_data is None:
        raise Unavailable("this process was started without its export kinds", reason="EXPORT_UNAVAILABLE")
    records, token = await user_data.page(request.user_id, request.kind, request.page_size, request.page_token)
    return exports_pb2.ExportUserDataResponse(records=records, next_page_token=token)
