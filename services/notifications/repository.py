"""Notifications in PostgreSQL: acts, their groups, settings and the digest's state, in the user's shard.

A group's row (notification_groups) is brought up to date from its acts in
the transaction that changes them, with a notification.changed event in the
outbox; the page is read from the group rows, newest first. Changes to one
user's notifications take a transaction-scoped advisory lock on the user, so
replicas of the worker never open two groups where one belongs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import psycopg

from services.common import outbox
from services.common.db import Database, shard_schema
from services.common.ids import shard_of
from services.notifications.service import (
    CHANGED,
    GROUPED,
    TOPIC,
    Group,
    Notification,
    OpenGroup,
    Settings,
)

# The advisory lock (class, user) held while a user's notifications change.
LOCK_CLASS = 0x0A71F
# Columns an act may be found by when it is taken back.
WHERE_COLUMNS = ("source", "actor_id", "post_id", "comment_id", "parent_comment_id")
GROUP_COLUMNS = ("user_id, group_key, type, latest_at, notification_count, actor_count, unread_count > 0, "
                 "post_id, comment_id, parent_comment_id")
MAX_ACTORS = 3


def _s(user_id: int) -> str:
    return shard_schema(shard_of(user_id))


def _where(where: dict[str, object]) -> tuple[str, list[object]]:
    unknown = set(where) - set(WHERE_COLUMNS)
    if unknown or not where:
        raise ValueError(f"acts are found by {WHERE_COLUMNS}, not {sorted(unknown)}")
    return " AND ".join(f"{column} = %s" for column in where), list(where.values())


def thread_of(key: str, type: str) -> str:
    """A grouped line's key is its thread and the time it opened; a standalone act's, its thread."""
    return key.rsplit(":", 1)[0] if type in GROUPED else key


async def _actors(conn: psycopg.AsyncConnection, user_id: int, keys: list[str]) -> dict[str, list[int]]:
    """The MAX_ACTORS newest actors of each group, newest first, each once (a conversation's messages
    are many acts of one actor)."""
    rows = await (await conn.execute(
        f"SELECT group_key, actor_id FROM (SELECT group_key, actor_id, row_number() OVER "
        f"(PARTITION BY group_key ORDER BY max(created_at) DESC, actor_id DESC) AS rank FROM {_s(user_id)}.notifications "
        f"WHERE user_id = %s AND group_key = ANY(%s) GROUP BY group_key, actor_id) ranked "
        f"WHERE rank <= {MAX_ACTORS} ORDER BY group_key, rank",
        (user_id, keys))).fetchall()
    found: dict[str, list[int]] = {}
    for key, actor_id in rows:
        found.setdefault(key, []).append(actor_id)
    return found


def _group(row: tuple, actors: dict[str, list[int]]) -> Group:
    user_id, key, type, latest_at, count, actor_count, unread, post_id, comment_id, parent_id = row
    return Group(user_id=user_id, key=key, type=type, latest_at=latest_at, notification_count=count,
                 actor_count=actor_count, unread=unread, actor_ids=actors.get(key, []), post_id=post_id,
                 comment_id=comment_id, parent_comment_id=parent_id)


async def _unread(conn: psycopg.AsyncConnection, user_id: int) -> int:
    row = await (await conn.execute(
        f"SELECT count(*) FROM {_s(user_id)}.notification_groups WHERE user_id = %s AND unread_count > 0",
        (user_id,))).fetchone()
    return row[0]


async def _publish(conn: psycopg.AsyncConnection, user_id: int, key: str, group_json: str, unread: int) -> None:
    await outbox.write(conn, shard_of(user_id), TOPIC, CHANGED, user_id=user_id, group_key=key,
                       group_json=group_json, unread_count=unread)


class PostgresRecipientChanges:
    """One transaction on one user's notifications (services.notifications.inbox.RecipientChanges)."""

    def __init__(self, conn: psycopg.AsyncConnection, user_id: int) -> None:
        self.conn = conn
        self.user_id = user_id
        self.s = _s(user_id)

    async def first_time(self, consumer: str, event_id: str) -> bool:
        if not event_id:
            return True
        cur = await self.conn.execute(
            f"INSERT INTO {self.s}.consumed_events (consumer, event_id, entity_id) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING", (consumer, event_id, self.user_id))
        return cur.rowcount == 1

    async def muted_types(self) -> set[str]:
        row = await (await self.conn.execute(
            f"SELECT muted_types FROM {self.s}.notification_settings WHERE user_id = %s", (self.user_id,))).fetchone()
        return set(row[0]) if row else set()

    async def stream_open(self) -> bool:
        row = await (await self.conn.execute(
            f"SELECT stream_open FROM {self.s}.notification_digests WHERE user_id = %s", (self.user_id,))).fetchone()
        return bool(row and row[0])

    async def newest_group(self, thread: str) -> OpenGroup | None:
        row = await (await self.conn.execute(
            f"SELECT group_key, opened_at, latest_at FROM {self.s}.notification_groups "
            "WHERE user_id = %s AND thread = %s ORDER BY latest_at DESC LIMIT 1", (self.user_id, thread))).fetchone()
        return OpenGroup(*row) if row else None

    async def add(self, n: Notification, key: str) -> bool:
        cur = await self.conn.execute(
            f"INSERT INTO {self.s}.notifications (user_id, source, group_key, type, actor_id, post_id, comment_id, "
            "parent_comment_id, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (n.user_id, n.source, key, n.type, n.actor_id, n.post_id, n.comment_id, n.parent_comment_id, n.at))
        return cur.rowcount == 1

    async def remove(self, **where: object) -> list[str]:
        clause, values = _where(where)
        rows = await (await self.conn.execute(
            f"DELETE FROM {self.s}.notifications WHERE user_id = %s AND {clause} RETURNING group_key",
            (self.user_id, *values))).fetchall()
        return list(dict.fromkeys(r[0] for r in rows))

    async def refresh_group(self, key: str) -> Group | None:
        row = await (await self.conn.execute(
            "SELECT min(type), min(post_id), min(comment_id), min(parent_comment_id), min(created_at), "
            "max(created_at), count(*), count(DISTINCT actor_id), count(*) FILTER (WHERE NOT read) "
            f"FROM {self.s}.notifications WHERE user_id = %s AND group_key = %s", (self.user_id, key))).fetchone()
        type, post_id, comment_id, parent_id, opened_at, latest_at, count, actors, unread = row
        if count == 0:
            await self.conn.execute(f"DELETE FROM {self.s}.notification_groups WHERE user_id = %s AND group_key = %s",
                                    (self.user_id, key))
            return None
        await self.conn.execute(
            f"INSERT INTO {self.s}.notification_groups (user_id, group_key, thread, type, post_id, comment_id, "
            "parent_comment_id, opened_at, latest_at, notification_count, actor_count, unread_count) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (user_id, group_key) DO UPDATE SET "
            "opened_at = excluded.opened_at, latest_at = excluded.latest_at, "
            "notification_count = excluded.notification_count, actor_count = excluded.actor_count, "
            "unread_count = excluded.unread_count",
            (self.user_id, key, thread_of(key, type), type, post_id, comment_id, parent_id, opened_at, latest_at,
             count, actors, unread))
        return _group((self.user_id, key, type, latest_at, count, actors, unread > 0, post_id, comment_id, parent_id),
                      await _actors(self.conn, self.user_id, [key]))

    async def unread_count(self) -> int:
        return await _unread(self.conn, self.user_id)

    async def publish(self, key: str, group_json: str, unread_count: int) -> None:
        await _publish(self.conn, self.user_id, key, group_json, unread_count)


class PostgresNotificationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def holds(self, user_id: int) -> bool:
        return self.db.holds(user_id)

    # --- the worker's side ------------------------------------------------------------

    @asynccontextmanager
    async def changes(self, user_id: int) -> AsyncIterator[PostgresRecipientChanges]:
        async with self.db.transaction(shard_of(user_id)) as (conn,):
            await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_CLASS, str(user_id)))
            yield PostgresRecipientChanges(conn, user_id)

    async def recipients(self, **where: int) -> set[int]:
        clause, values = _where(where)
        rows = await self.db.every_shard(f"SELECT DISTINCT user_id FROM {{schema}}.notifications WHERE {clause}",
                                         tuple(values))
        return {r[0] for r in rows}

    # --- the API's side ---------------------------------------------------------------

    async def groups(self, user_id: int, limit: int, after: tuple[str, str] | None, types: list[str]) -> list[Group]:
        conditions, params = ["user_id = %s"], [user_id]
        if types:
            conditions.append("type = ANY(%s)")
            params.append(types)
        if after:
            conditions.append("(latest_at, group_key) < (%s::timestamptz, %s)")
            params += list(after)
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            rows = await (await conn.execute(
                f"SELECT {GROUP_COLUMNS} FROM {_s(user_id)}.notification_groups WHERE {' AND '.join(conditions)} "
                "ORDER BY latest_at DESC, group_key DESC LIMIT %s", (*params, limit))).fetchall()
            actors = await _actors(conn, user_id, [r[1] for r in rows]) if rows else {}
        return [_group(r, actors) for r in rows]

    async def unread_count(self, user_id: int) -> int:
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            return await _unread(conn, user_id)

    async def mark_read(self, user_id: int, before: datetime | None) -> int:
        """Mark read (everything, or what happened up to `before`); the unread count after. When it
        moved, a notification.changed with no group (group_key empty) carries the new count."""
        s = _s(user_id)
        async with self.db.transaction(shard_of(user_id)) as (conn,):
            await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_CLASS, str(user_id)))
            rows = await (await conn.execute(
                f"UPDATE {s}.notifications SET read = true WHERE user_id = %s AND NOT read "
                "AND created_at <= coalesce(%s, 'infinity'::timestamptz) RETURNING group_key",
                (user_id, before))).fetchall()
            keys = list(dict.fromkeys(r[0] for r in rows))
            if keys:
                await conn.execute(
                    f"UPDATE {s}.notification_groups g SET unread_count = (SELECT count(*) FROM {s}.notifications n "
                    "WHERE n.user_id = g.user_id AND n.group_key = g.group_key AND NOT n.read) "
                    "WHERE g.user_id = %s AND g.group_key = ANY(%s)", (user_id, keys))
            unread = await _unread(conn, user_id)
            if keys:
                await _publish(conn, user_id, "", "", unread)
        return unread

    async def settings(self, user_id: int) -> Settings:
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            row = await (await conn.execute(
                f"SELECT muted_types, email_digest FROM {_s(user_id)}.notification_settings WHERE user_id = %s",
                (user_id,))).fetchone()
        return Settings(list(row[0]), row[1]) if row else Settings()

    async def save_settings(self, user_id: int, settings: Settings) -> None:
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            await conn.execute(
                f"INSERT INTO {_s(user_id)}.notification_settings (user_id, muted_types, email_digest) "
                "VALUES (%s, %s, %s) ON CONFLICT (user_id) DO UPDATE SET muted_types = excluded.muted_types, "
                "email_digest = excluded.email_digest, updated_at = now()",
                (user_id, settings.muted_types, settings.email_digest))

    async def forget_consumed(self, consumer: str, older_than_s: int) -> None:
        """Forget the event ids applied longer ago than any redelivery comes."""
        await self.db.every_shard(
            "DELETE FROM {schema}.consumed_events WHERE consumer = %s "
            "AND applied_at < now() - make_interval(secs => %s) RETURNING 1", (consumer, older_than_s))

    # --- the digest's side ------------------------------------------------------------

    async def record_presence(self, user_id: int, stream_open: bool, seen_at: datetime, at: datetime) -> None:
        """A presence change at `at` (an older one than recorded changes nothing)."""
        if not self.db.holds(user_id):
            return
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            await conn.execute(
                f"INSERT INTO {_s(user_id)}.notification_digests AS d (user_id, stream_open, last_online_at, "
                "presence_at) VALUES (%s, %s, %s, %s) ON CONFLICT (user_id) DO UPDATE SET "
                "stream_open = excluded.stream_open, presence_at = excluded.presence_at, "
                "last_online_at = greatest(d.last_online_at, excluded.last_online_at) "
                "WHERE d.presence_at IS NULL OR d.presence_at <= excluded.presence_at",
                (user_id, stream_open, seen_at, at))

    async def record_classes(self, user_id: int, classes: list[str], at: datetime) -> None:
        """The user's labels as of `at` (an older change than recorded changes nothing)."""
        if not self.db.holds(user_id):
            return
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            await conn.execute(
                f"INSERT INTO {_s(user_id)}.notification_digests AS d (user_id, classes, classes_at) "
                "VALUES (%s, %s, %s) ON CONFLICT (user_id) DO UPDATE SET classes = excluded.classes, "
                "classes_at = excluded.classes_at WHERE d.classes_at IS NULL OR d.classes_at <= excluded.classes_at",
                (user_id, classes, at))

    async def claim_digests(self, shard: int, away_s: int, period_s: int, classes: list[str],
                            limit: int) -> list[tuple[int, datetime | None]]:
        """Claim (one statement) the shard's users due a digest: unread groups newer than their last
        digest, digests on, labelled with one of `classes` (never labelled: INACTIVE, as the
        classifier has it), no stream open for away_s, no digest for period_s."""
        s = shard_schema(shard)
        async with self.db.for_shard(shard).connection() as conn:
            rows = await (await conn.execute(
                f"WITH due AS (SELECT g.user_id, max(d.last_digest_at) AS previous "
                f"FROM {s}.notification_groups g "
                f"LEFT JOIN {s}.notification_digests d ON d.user_id = g.user_id "
                f"LEFT JOIN {s}.notification_settings st ON st.user_id = g.user_id "
                "WHERE g.unread_count > 0 AND coalesce(st.email_digest, true) AND NOT coalesce(d.stream_open, false) "
                "AND coalesce(d.classes, '{INACTIVE}') && %(classes)s::text[] "
                "AND coalesce(d.last_online_at, '-infinity') < now() - make_interval(secs => %(away)s) "
                "AND coalesce(d.last_digest_at, '-infinity') < now() - make_interval(secs => %(period)s) "
                "AND g.latest_at > coalesce(d.last_digest_at, '-infinity') "
                "GROUP BY g.user_id LIMIT %(limit)s), "
                f"claimed AS (INSERT INTO {s}.notification_digests AS d (user_id, last_digest_at) "
                "SELECT user_id, now() FROM due ON CONFLICT (user_id) DO UPDATE SET last_digest_at = now() "
                "WHERE coalesce(d.last_digest_at, '-infinity') < now() - make_interval(secs => %(period)s) "
                "RETURNING user_id) "
                "SELECT claimed.user_id, due.previous FROM claimed JOIN due USING (user_id)",
                {"away": away_s, "period": period_s, "classes": classes, "limit": limit})).fetchall()
        return [(user_id, previous) for user_id, previous in rows]

    async def release_digest(self, user_id: int, previous: datetime | None) -> None:
        """Give a claim back (the digest was not sent)."""
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            await conn.execute(f"UPDATE {_s(user_id)}.notification_digests SET last_digest_at = %s "
                               "WHERE user_id = %s", (previous, user_id))
