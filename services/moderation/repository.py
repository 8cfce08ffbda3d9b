"""Moderation's storage in PostgreSQL: reports and audit entries in their target's shard, grants in the
moderator's. An action and the event it hands to the owners commit together (the target shard's outbox)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime

from services.common import outbox
from services.common.db import Database, shard_schema
from services.common.ids import shard_of
from services.moderation.events import ACCOUNT_SUSPENDED, TOPIC
from services.moderation.service import OPEN, AuditEntry, OwnerEvent, Report, ReportedTarget

REPORT_COLUMNS = "id, reporter_id, target_type, target_id, owner_id, reason, note, status"
AUDIT_COLUMNS = "id, actor_id, action, target_type, target_id, owner_id, reports_closed, note, created_at"
FAR_FUTURE = 2**63 - 1


def _audit(row: tuple) -> AuditEntry:
    return AuditEntry(*row)


class PostgresModerationRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def is_moderator(self, user_id: int) -> bool:
        if not self.db.holds(user_id):
            return False
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            row = await (await conn.execute(
                f"SELECT 1 FROM {shard_schema(shard_of(user_id))}.moderators WHERE user_id = %s", (user_id,))
            ).fetchone()
        return row is not None

    async def set_moderator(self, user_id: int, on: bool, entry: AuditEntry) -> bool:
        s = shard_schema(shard_of(user_id))
        async with self.db.transaction(shard_of(user_id)) as (conn,):
            if on:
                cur = await conn.execute(f"INSERT INTO {s}.moderators (user_id) VALUES (%s) ON CONFLICT DO NOTHING",
                                         (user_id,))
            else:
                cur = await conn.execute(f"DELETE FROM {s}.moderators WHERE user_id = %s", (user_id,))
            if cur.rowcount == 0:
                return False
            await self._write_audit(conn, entry)
            return True

    @staticmethod
    async def _write_audit(conn, entry: AuditEntry) -> None:
        await conn.execute(
            f"INSERT INTO {shard_schema(shard_of(entry.id))}.moderation_audit "
            "(id, actor_id, action, target_type, target_id, owner_id, reports_closed, note) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (entry.id, entry.actor_id, entry.action, entry.target_type, entry.target_id, entry.owner_id,
             entry.reports_closed, entry.note))

    async def add_report(self, report: Report) -> Report:
        s = shard_schema(shard_of(report.target_id))
        async with self.db.transaction(shard_of(report.target_id)) as (conn,):
            row = await (await conn.execute(
                f"INSERT INTO {s}.moderation_reports (id, reporter_id, target_type, target_id, owner_id, reason, note) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) "
                f"ON CONFLICT (reporter_id, target_type, target_id) WHERE status = '{OPEN}' DO NOTHING "
                f"RETURNING {REPORT_COLUMNS}",
                (report.id, report.reporter_id, report.target_type, report.target_id, report.owner_id,
                 report.reason, report.note))).fetchone()
            if row is None:  # the reporter's open report on it came first
                row = await (await conn.execute(
                    f"SELECT {REPORT_COLUMNS} FROM {s}.moderation_reports WHERE reporter_id = %s "
                    f"AND target_type = %s AND target_id = %s AND status = '{OPEN}'",
                    (report.reporter_id, report.target_type, report.target_id))).fetchone()
        return Report(*row)

    async def reported_targets(self, after: tuple[str, int, int] | None, limit: int) -> list[ReportedTarget]:
        at, type, id = (datetime.fromisoformat(after[0]), after[1], after[2]) if after else (None, 0, 0)
        rows = await self.db.every_shard(
            "SELECT target_type, target_id, min(owner_id), count(*), array_agg(reason), min(created_at), "
            f"max(created_at) FROM {{schema}}.moderation_reports WHERE status = '{OPEN}' "
            "GROUP BY target_type, target_id "
            "HAVING %s::timestamptz IS NULL OR (min(created_at), target_type, target_id) > (%s::timestamptz, %s::int, %s::bigint) "
            "ORDER BY min(created_at), target_type, target_id LIMIT %s",
            (at, at, type, id, limit))
        targets = [ReportedTarget(r[0], r[1], r[2], r[3], dict(Counter(r[4])), r[5], r[6]) for r in rows]
        return sorted(targets, key=lambda t: (t.first_reported_at, t.target_type, t.target_id))[:limit]

    async def act(self, entry: AuditEntry, status: str, event: OwnerEvent | None) -> AuditEntry | None:
        shard = shard_of(entry.target_id)
        s = shard_schema(shard)
        async with self.db.transaction(shard) as (conn,):
            rows = await (await conn.execute(
                f"UPDATE {s}.moderation_reports SET status = %s, closed_at = now(), closed_by = %s "
                f"WHERE target_type = %s AND target_id = %s AND status = '{OPEN}' RETURNING owner_id",
                (status, entry.actor_id, entry.target_type, entry.target_id))).fetchall()
            if not rows:
                return None
            done = replace(entry, owner_id=rows[0][0], reports_closed=len(rows))
            await self._write_audit(conn, done)
            if event is not None:
                owner = {"user_id": done.owner_id} if event.type == ACCOUNT_SUSPENDED else {"owner_id": done.owner_id}
                await outbox.write(conn, shard, TOPIC, event.type, **event.data, **owner)
            row = await (await conn.execute(
                f"SELECT {AUDIT_COLUMNS} FROM {s}.moderation_audit WHERE id = %s", (done.id,))).fetchone()
        return _audit(row)

    async def audit(self, before_id: int | None, limit: int) -> list[AuditEntry]:
        rows = await self.db.every_shard(
            f"SELECT {AUDIT_COLUMNS} FROM {{schema}}.moderation_audit WHERE id < %s ORDER BY id DESC LIMIT %s",
            (before_id or FAR_FUTURE, limit))
        return sorted((_audit(r) for r in rows), key=lambda e: e.id, reverse=True)[:limit]
