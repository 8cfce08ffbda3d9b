"""Realtime's PostgreSQL rows (migration 0016): presence states and user classes, in the user's shard."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf import timestamp_pb2

from services.common import outbox
from services.common.db import Database, shard_schema
from services.common.ids import shard_of


def _timestamp(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms is not None else None


class PostgresPresenceStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, user_id: int, state: str, last_active_ms: int | None) -> bool:
        shard = shard_of(user_id)
        s = shard_schema(shard)
        async with self.db.for_shard(shard).connection() as conn, conn.transaction():
            row = await (await conn.execute(
                f"INSERT INTO {s}.presence AS p (user_id, state, last_active_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (user_id) DO UPDATE SET state = EXCLUDED.state, changed_at = now(), "
                "last_active_at = GREATEST(p.last_active_at, EXCLUDED.last_active_at) "
                "WHERE p.state <> EXCLUDED.state RETURNING last_active_at",
                (user_id, state, _timestamp(last_active_ms)))).fetchone()
            if row is None:
                return False
            last_active = timestamp_pb2.Timestamp()
            if row[0] is not None:
                last_active.FromDatetime(row[0])
            await outbox.write(conn, shard, "presence", "presence.changed", user_id=user_id, state=state,
                               last_active_at=last_active)
        return True

    async def last_active(self, user_id: int) -> int | None:
        shard = shard_of(user_id)
        async with self.db.for_shard(shard).connection() as conn:
            row = await (await conn.execute(
                f"SELECT last_active_at FROM {shard_schema(shard)}.presence WHERE user_id = %s",
                (user_id,))).fetchone()
        return int(row[0].timestamp() * 1000) if row and row[0] is not None else None


class PostgresClassesStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, user_id: int, classes: list[str]) -> bool:
        """Store the user's classes and a history row, when they differ from the stored ones, and
        publish the change (user.classified on topic "classes")."""
        shard = shard_of(user_id)
        s = shard_schema(shard)
        async with self.db.for_shard(shard).connection() as conn, conn.transaction():
            row = await (await conn.execute(
                f"INSERT INTO {s}.user_classes AS c (user_id, classes) VALUES (%s, %s) "
                "ON CONFLICT (user_id) DO UPDATE SET classes = EXCLUDED.classes, since = now() "
                "WHERE c.classes <> EXCLUDED.classes RETURNING since", (user_id, classes))).fetchone()
            if row is None:
                return False
            await conn.execute(
                f"INSERT INTO {s}.user_class_history (user_id, changed_at, classes) VALUES (%s, %s, %s) "
                "ON CONFLICT DO NOTHING", (user_id, row[0], classes))
            await outbox.write(conn, shard, "classes", "user.classified", user_id=user_id, classes=classes)
        return True

    async def history(self, user_id: int) -> list[tuple[datetime, list[str]]]:
        shard = shard_of(user_id)
        async with self.db.for_shard(shard).connection() as conn:
            rows = await (await conn.execute(
                f"SELECT changed_at, classes FROM {shard_schema(shard)}.user_class_history "
                "WHERE user_id = %s ORDER BY changed_at", (user_id,))).fetchall()
        return [(r[0], list(r[1])) for r in rows]
