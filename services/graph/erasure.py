"""Graph's part of an account's erasure (services.common.erasure).

Every edge with the deleted user goes through the graph's own writes, so each
writes its event (unfollow, follow.request_removed, unblock, unmute): accounts'
counts of the people they followed or who followed them, feeds' follow sets and
exclusions, search's edges and notifications correct themselves from the events
they already consume. Then the member row goes (the user no longer exists for the
graph), and a last sweep deletes any half-edge left in any shard.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.db import Database, shard_schema
from services.common.erasure import delete_in_every_shard
from services.common.ids import shard_of
from services.graph.repository import PostgresGraphRepository

# (table, the owner's column, the other user's column): every table of the graph.
EDGE_TABLES = (
    ("following", "user_id", "target_id"),
    ("followers", "user_id", "follower_id"),
    ("follow_requests", "user_id", "requester_id"),
    ("sent_follow_requests", "user_id", "target_id"),
    ("blocks", "user_id", "target_id"),
    ("blocked_by", "user_id", "blocker_id"),
    ("mutes", "user_id", "target_id"),
)


@dataclass
class GraphEraser:
    db: Database
    edges: PostgresGraphRepository

    async def _own(self, table: str, column: str, user_id: int) -> list[int]:
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            rows = await (await conn.execute(
                f"SELECT {column} FROM {shard_schema(shard_of(user_id))}.{table} WHERE user_id = %s",
                (user_id,))).fetchall()
        return [row[0] for row in rows]

    async def erase_user(self, user_id: int) -> None:
        if not self.db.holds(user_id):
            return
        u = user_id
        # (table, column of the other user, undo as the graph's own write: its event goes with it)
        steps = (
            ("following", "target_id", lambda other: self.edges.unfollow(u, other)),
            ("followers", "follower_id", lambda other: self.edges.unfollow(other, u)),
            ("sent_follow_requests", "target_id", lambda other: self.edges.drop_request(u, other)),
            ("follow_requests", "requester_id", lambda other: self.edges.drop_request(other, u)),
            ("blocks", "target_id", lambda other: self.edges.unblock(u, other)),
            ("blocked_by", "blocker_id", lambda other: self.edges.unblock(other, u)),
            ("mutes", "target_id", lambda other: self.edges.unmute(u, other)),
        )
        for table, column, undo in steps:
            for other in await self._own(table, column, u):
                await undo(other)
        for (other,) in await self.db.every_shard("SELECT user_id FROM {schema}.mutes WHERE target_id = %s", (u,)):
            await self.edges.unmute(other, u)
        await delete_in_every_shard(self.db, [
            "DELETE FROM {schema}.members WHERE user_id = %(user)s",
            *(f"DELETE FROM {{schema}}.{table} WHERE {mine} = %(user)s OR {other} = %(user)s"
              for table, mine, other in EDGE_TABLES),
        ], u)
