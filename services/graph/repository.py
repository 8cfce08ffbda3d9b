"""The follow graph in PostgreSQL: each edge on both sides; its events in the outbox with the change.

An event is written only when the change changed something, so a consumer
that counts (accounts' follower counts) sees each edge come and go once.
Across two physical databases the two sides commit one after the other:
the event goes with the actor's side, which the exit order of
Database.transaction commits last (after the other side committed).
"""

from __future__ import annotations

from datetime import datetime

import psycopg

from services.common import outbox
from services.common.db import Database, shard_schema
from services.common.ids import shard_of
from services.graph.service import TOPIC, Edges, Page, Profile

# kind -> (table, owner column, other column), all in the owner's shard.
LISTS = {
    "followers": ("followers", "user_id", "follower_id"),
    "following": ("following", "user_id", "target_id"),
    "requests": ("follow_requests", "user_id", "requester_id"),
    "blocked": ("blocks", "user_id", "target_id"),
}


def _s(user_id: int) -> str:
    return shard_schema(shard_of(user_id))


async def _emit(conn: psycopg.AsyncConnection, changed: bool, type: str, actor_id: int, **data: int) -> bool:
    """Write the event to the actor's outbox when the change changed something; returns `changed`."""
    if changed:
        await outbox.write(conn, shard_of(actor_id), TOPIC, type, **data)
    return changed


class PostgresProfiles:
    """Who exists and who is private: the graph's own members rows, in each user's shard.

    Accounts keeps them current through SetAccountPrivacy (registration, and
    every change of is_private); a user without a row does not exist here.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, user_ids: list[int]) -> dict[int, Profile]:
        rows = await self.db.select_by_shard(
            user_ids, "SELECT user_id, is_private FROM {schema}.members WHERE user_id = ANY(%s)")
        return {user_id: Profile(user_id, private) for user_id, private in rows}

    async def put(self, user_id: int, is_private: bool) -> bool:
        """Record the member (idempotent); False when the id cannot live in any configured shard."""
        if not self.db.holds(user_id):
            return False
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            await conn.execute(
                f"INSERT INTO {_s(user_id)}.members (user_id, is_private) VALUES (%s, %s) ON CONFLICT (user_id) "
                "DO UPDATE SET is_private = excluded.is_private, updated_at = now()"
                " WHERE members.is_private IS DISTINCT FROM excluded.is_private",
                (user_id, is_private))
        return True


class PostgresGraphRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def edges(self, viewer_id: int, owner_ids: list[int]) -> Edges:
        s = _s(viewer_id)
        async with self.db.for_shard(shard_of(viewer_id)).connection() as conn:
            cur = await conn.execute(
                f"SELECT 'following', target_id FROM {s}.following WHERE user_id = %(v)s AND target_id = ANY(%(o)s)"
                f" UNION ALL SELECT 'requested', target_id FROM {s}.sent_follow_requests"
                "  WHERE user_id = %(v)s AND target_id = ANY(%(o)s)"
                f" UNION ALL SELECT 'blocked', target_id FROM {s}.blocks WHERE user_id = %(v)s AND target_id = ANY(%(o)s)"
                f" UNION ALL SELECT 'blocked', blocker_id FROM {s}.blocked_by"
                "  WHERE user_id = %(v)s AND blocker_id = ANY(%(o)s)"
                f" UNION ALL SELECT 'muted', target_id FROM {s}.mutes WHERE user_id = %(v)s AND target_id = ANY(%(o)s)",
                {"v": viewer_id, "o": owner_ids},
            )
            found: dict[str, set[int]] = {"following": set(), "requested": set(), "blocked": set(), "muted": set()}
            for kind, owner in await cur.fetchall():
                found[kind].add(owner)
        return Edges(**found)

    async def audience(self, owner_id: int, viewer_ids: list[int], followers: bool) -> tuple[set[int], set[int]]:
        s = _s(owner_id)
        query = (f"SELECT 'blocked', target_id FROM {s}.blocks WHERE user_id = %(o)s AND target_id = ANY(%(v)s)"
                 f" UNION ALL SELECT 'blocked', blocker_id FROM {s}.blocked_by"
                 "  WHERE user_id = %(o)s AND blocker_id = ANY(%(v)s)")
        if followers:
            query += (f" UNION ALL SELECT 'following', follower_id FROM {s}.followers"
                      "  WHERE user_id = %(o)s AND follower_id = ANY(%(v)s)")
        found: dict[str, set[int]] = {"following": set(), "blocked": set()}
        async with self.db.for_shard(shard_of(owner_id)).connection() as conn:
            cur = await conn.execute(query, {"o": owner_id, "v": viewer_ids})
            for kind, viewer in await cur.fetchall():
                found[kind].add(viewer)
        return found["following"], found["blocked"]

    async def follow(self, follower_id: int, target_id: int, approved: bool = False) -> bool:
        """Idempotent; True (and a "follow" event) when the edge is new on either side. approved: the
        target approved the follower's request (the event says so, for the follower's notification)."""
        async with self.db.transaction(shard_of(follower_id), shard_of(target_id)) as (out_conn, in_conn):
            added_out = await out_conn.execute(
                f"INSERT INTO {_s(follower_id)}.following (user_id, target_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (follower_id, target_id))
            added_in = await in_conn.execute(
                f"INSERT INTO {_s(target_id)}.followers (user_id, follower_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (target_id, follower_id))
            return await _emit(out_conn, bool(added_out.rowcount or added_in.rowcount), "follow", follower_id,
                               follower_id=follower_id, target_id=target_id, approved=approved)

    async def unfollow(self, follower_id: int, target_id: int) -> bool:
        """Idempotent; True (and an "unfollow" event) when the edge was there on either side."""
        if not (self.db.holds(follower_id) and self.db.holds(target_id)):
            return False  # an id that cannot exist follows no one
        async with self.db.transaction(shard_of(follower_id), shard_of(target_id)) as (out_conn, in_conn):
            gone_out = await out_conn.execute(
                f"DELETE FROM {_s(follower_id)}.following WHERE user_id = %s AND target_id = %s",
                (follower_id, target_id))
            gone_in = await in_conn.execute(
                f"DELETE FROM {_s(target_id)}.followers WHERE user_id = %s AND follower_id = %s",
                (target_id, follower_id))
            return await _emit(out_conn, bool(gone_out.rowcount or gone_in.rowcount), "unfollow", follower_id,
                               follower_id=follower_id, target_id=target_id)

    async def request(self, requester_id: int, target_id: int) -> None:
        """Idempotent; a "follow.requested" event when the request is new."""
        async with self.db.transaction(shard_of(requester_id), shard_of(target_id)) as (out_conn, in_conn):
            await out_conn.execute(
                f"INSERT INTO {_s(requester_id)}.sent_follow_requests (user_id, target_id) VALUES (%s, %s) "
                "ON CONFLICT DO NOTHING", (requester_id, target_id))
            added = await in_conn.execute(
                f"INSERT INTO {_s(target_id)}.follow_requests (user_id, requester_id) VALUES (%s, %s) "
                "ON CONFLICT DO NOTHING", (target_id, requester_id))
            await _emit(out_conn, bool(added.rowcount), "follow.requested", requester_id,
                        follower_id=requester_id, target_id=target_id)

    async def drop_request(self, requester_id: int, target_id: int) -> bool:
        """Remove a pending request; True (and a "follow.request_removed" event) when there was one."""
        if not (self.db.holds(requester_id) and self.db.holds(target_id)):
            return False
        async with self.db.transaction(shard_of(requester_id), shard_of(target_id)) as (out_conn, in_conn):
            await out_conn.execute(
                f"DELETE FROM {_s(requester_id)}.sent_follow_requests WHERE user_id = %s AND target_id = %s",
                (requester_id, target_id))
            gone = await in_conn.execute(
                f"DELETE FROM {_s(target_id)}.follow_requests WHERE user_id = %s AND requester_id = %s",
                (target_id, requester_id))
            return await _emit(out_conn, gone.rowcount > 0, "follow.request_removed", requester_id,
                               follower_id=requester_id, target_id=target_id)

    async def block(self, user_id: int, target_id: int) -> None:
        """Block, then end every follow and request between the two, both ways (each "unfollow" its own
        event, so the counts follow). The follows go even when the block was there already: a retry
        after a crash between the two steps finishes the job."""
        async with self.db.transaction(shard_of(user_id), shard_of(target_id)) as (out_conn, in_conn):
            added_out = await out_conn.execute(
                f"INSERT INTO {_s(user_id)}.blocks (user_id, target_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (user_id, target_id))
            added_in = await in_conn.execute(
                f"INSERT INTO {_s(target_id)}.blocked_by (user_id, blocker_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (target_id, user_id))
            await _emit(out_conn, bool(added_out.rowcount or added_in.rowcount), "block", user_id,
                        user_id=user_id, target_id=target_id)
        for a, b in ((user_id, target_id), (target_id, user_id)):
            await self.unfollow(a, b)
            await self.drop_request(a, b)

    async def unblock(self, user_id: int, target_id: int) -> None:
        if not (self.db.holds(user_id) and self.db.holds(target_id)):
            return
        async with self.db.transaction(shard_of(user_id), shard_of(target_id)) as (out_conn, in_conn):
            gone_out = await out_conn.execute(
                f"DELETE FROM {_s(user_id)}.blocks WHERE user_id = %s AND target_id = %s", (user_id, target_id))
            gone_in = await in_conn.execute(
                f"DELETE FROM {_s(target_id)}.blocked_by WHERE user_id = %s AND blocker_id = %s", (target_id, user_id))
            await _emit(out_conn, bool(gone_out.rowcount or gone_in.rowcount), "unblock", user_id,
                        user_id=user_id, target_id=target_id)

    async def mute(self, user_id: int, target_id: int) -> None:
        async with self.db.transaction(shard_of(user_id)) as (conn,):
            added = await conn.execute(
                f"INSERT INTO {_s(user_id)}.mutes (user_id, target_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (user_id, target_id))
            await _emit(conn, bool(added.rowcount), "mute", user_id, user_id=user_id, target_id=target_id)

    async def unmute(self, user_id: int, target_id: int) -> None:
        if not (self.db.holds(user_id) and self.db.holds(target_id)):
            return
        async with self.db.transaction(shard_of(user_id)) as (conn,):
            gone = await conn.execute(f"DELETE FROM {_s(user_id)}.mutes WHERE user_id = %s AND target_id = %s",
                                      (user_id, target_id))
            await _emit(conn, bool(gone.rowcount), "unmute", user_id, user_id=user_id, target_id=target_id)

    async def list_edges(self, kind: str, user_id: int, limit: int, after: tuple[str, int] | None) -> Page:
        table, owner, other = LISTS[kind]
        query = f"SELECT {other}, created_at FROM {_s(user_id)}.{table} WHERE {owner} = %s"
        params: list[object] = [user_id]
        if after is not None:
            query += f" AND (created_at, {other}) < (%s, %s)"
            params += [datetime.fromisoformat(after[0]), after[1]]
        query += f" ORDER BY created_at DESC, {other} DESC LIMIT %s"
        params.append(limit + 1)
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            rows = await (await conn.execute(query, params)).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        return Page([r[0] for r in rows], (rows[-1][1].isoformat(), rows[-1][0]) if more else None)

    async def follower_ids(self, user_id: int, after_id: int, limit: int) -> list[int]:
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            rows = await (await conn.execute(
                f"SELECT follower_id FROM {_s(user_id)}.followers WHERE user_id = %s AND follower_id > %s "
                "ORDER BY follower_id LIMIT %s", (user_id, after_id, limit))).fetchall()
        return [r[0] for r in rows]

    async def following_ids(self, user_id: int) -> list[int]:
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            rows = await (await conn.execute(
                f"SELECT target_id FROM {_s(user_id)}.following WHERE user_id = %s", (user_id,))).fetchall()
        return [r[0] for r in rows]

    async def exclusions(self, user_id: int) -> tuple[list[int], list[int]]:
        """(muted, blocked either way), both from the user's shard."""
        s = _s(user_id)
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            rows = await (await conn.execute(
                f"SELECT 'muted', target_id FROM {s}.mutes WHERE user_id = %(u)s"
                f" UNION ALL SELECT 'blocked', target_id FROM {s}.blocks WHERE user_id = %(u)s"
                f" UNION ALL SELECT 'blocked', blocker_id FROM {s}.blocked_by WHERE user_id = %(u)s",
                {"u": user_id})).fetchall()
        return [r[1] for r in rows if r[0] == "muted"], list({r[1] for r in rows if r[0] == "blocked"})
