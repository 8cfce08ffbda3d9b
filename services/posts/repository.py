"""Posts in PostgreSQL, in their author's shard."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from services.common import outbox
from services.common.db import Database, shard_schema
from services.common.ids import shard_of
from services.posts.service import TOPIC, Location, Post

COLUMNS = ("id, author_id, media_ids, caption, hashtags, mentions, location_name, location_lat, location_lng, "
           "like_count, comment_count, request_id, created_at, deleted_at, cleaned_at, hidden_at")
COLUMN_NAMES = COLUMNS.split(", ")


def _post(row: dict[str, Any]) -> Post:
    location = None
    if row["location_name"] is not None:
        location = Location(row["location_name"], row["location_lat"], row["location_lng"])
    return Post(
        id=row["id"], author_id=row["author_id"], media_ids=list(row["media_ids"]), caption=row["caption"],
        hashtags=list(row["hashtags"]), mentions=list(row["mentions"]), location=location,
        like_count=row["like_count"], comment_count=row["comment_count"], request_id=row["request_id"],
        created_at=row["created_at"], deleted=row["deleted_at"] is not None, cleaned=row["cleaned_at"] is not None,
        hidden=row["hidden_at"] is not None,
    )


def _indexed(post: Post) -> dict[str, object]:
    """What search indexes of a post, as post.created and post.updated carry it."""
    loc = post.location
    return {"caption": post.caption, "hashtags": post.hashtags, "location_name": loc.name if loc else "",
            "location_lat": loc.lat if loc else 0.0, "location_lng": loc.lng if loc else 0.0}


class PostgresPostsRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, post: Post) -> Post:
        """Insert the post and its post.created event; a repeated request_id returns the first post
        instead. (Its media were attached beforehand, through media: PostsService.create.)"""
        s = shard_schema(shard_of(post.author_id))
        loc = post.location
        async with self.db.transaction(shard_of(post.author_id)) as (conn,):
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                f"INSERT INTO {s}.posts (id, author_id, media_ids, caption, hashtags, mentions, location_name, "
                "location_lat, location_lng, request_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                f"ON CONFLICT (author_id, request_id) WHERE request_id IS NOT NULL DO NOTHING RETURNING {COLUMNS}",
                (post.id, post.author_id, post.media_ids, post.caption, post.hashtags, post.mentions,
                 loc.name if loc else None, loc.lat if loc else None, loc.lng if loc else None, post.request_id),
            )
            row = await cur.fetchone()
            if row is None:  # the same request came before
                await cur.execute(f"SELECT {COLUMNS} FROM {s}.posts WHERE author_id = %s AND request_id = %s",
                                  (post.author_id, post.request_id))
                return _post(await cur.fetchone())
            await outbox.write(conn, shard_of(post.author_id), TOPIC, "post.created", post_id=post.id,
                               author_id=post.author_id, mentions=post.mentions, **_indexed(post))
            return _post(row)

    async def get_many(self, post_ids: list[int]) -> dict[int, Post]:
        rows = await self.db.select_by_shard(post_ids, f"SELECT {COLUMNS} FROM {{schema}}.posts WHERE id = ANY(%s)")
        return {row[0]: _post(dict(zip(COLUMN_NAMES, row))) for row in rows}

    async def scan(self, shard: int, after_id: int, limit: int) -> list[Post]:
        """The shard's live posts in id order after `after_id` (search's index rebuild)."""
        async with self.db.for_shard(shard).connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(f"SELECT {COLUMNS} FROM {shard_schema(shard)}.posts WHERE id > %s "
                              "AND deleted_at IS NULL AND hidden_at IS NULL ORDER BY id LIMIT %s", (after_id, limit))
            return [_post(r) for r in await cur.fetchall()]

    async def list_by_author(self, author_id: int, before_id: int | None, limit: int) -> list[Post]:
        s = shard_schema(shard_of(author_id))
        async with self.db.for_shard(shard_of(author_id)).connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                f"SELECT {COLUMNS} FROM {s}.posts WHERE author_id = %s AND deleted_at IS NULL AND hidden_at IS NULL AND id < %s "
                "ORDER BY id DESC LIMIT %s",
                (author_id, before_id if before_id is not None else 2**63 - 1, limit),
            )
            return [_post(r) for r in await cur.fetchall()]

    async def update_caption(self, post: Post) -> Post | None:
        s = shard_schema(shard_of(post.id))
        async with self.db.transaction(shard_of(post.id)) as (conn,):
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                f"UPDATE {s}.posts SET caption = %s, hashtags = %s, mentions = %s, updated_at = now() "
                f"WHERE id = %s AND deleted_at IS NULL RETURNING {COLUMNS}",
                (post.caption, post.hashtags, post.mentions, post.id),
            )
            row = await cur.fetchone()
            if row is None:
                return None
            updated = _post(row)
            await outbox.write(conn, shard_of(post.id), TOPIC, "post.updated", post_id=post.id,
                               author_id=row["author_id"], mentions=post.mentions, **_indexed(updated))
        return updated

    async def soft_delete(self, post_id: int) -> bool:
        """Hide the post, once, with its post.deleted event; True when this call deleted it."""
        s = shard_schema(shard_of(post_id))
        async with self.db.transaction(shard_of(post_id)) as (conn,):
            cur = await conn.execute(
                f"UPDATE {s}.posts SET deleted_at = now() WHERE id = %s AND deleted_at IS NULL RETURNING author_id",
                (post_id,))
            row = await cur.fetchone()
            if row is None:
                return False
            await outbox.write(conn, shard_of(post_id), TOPIC, "post.deleted", post_id=post_id, author_id=row[0])
            return True

    async def mark_cleaned(self, post_id: int) -> bool:
        """Scrub a deleted post's text and record that its cleanup finished; False when it was not deleted."""
        s = shard_schema(shard_of(post_id))
        async with self.db.for_shard(shard_of(post_id)).connection() as conn:
            cur = await conn.execute(
                f"UPDATE {s}.posts SET caption = '', hashtags = '{{}}', mentions = '{{}}', location_name = NULL, "
                "location_lat = NULL, location_lng = NULL, cleaned_at = coalesce(cleaned_at, now()) "
                "WHERE id = %s AND deleted_at IS NOT NULL", (post_id,))
            return cur.rowcount == 1

    async def uncleaned(self, shard: int, deleted_before: datetime, limit: int) -> list[int]:
        """Posts of the shard deleted before `deleted_before` whose cleanup has not finished, oldest first."""
        async with self.db.for_shard(shard).connection() as conn:
            rows = await (await conn.execute(
                f"SELECT id FROM {shard_schema(shard)}.posts WHERE deleted_at IS NOT NULL AND cleaned_at IS NULL "
                "AND deleted_at < %s ORDER BY deleted_at LIMIT %s", (deleted_before, limit))).fetchall()
        return [r[0] for r in rows]

    async def recent_ids(self, author_ids: list[int], limit: int) -> list[tuple[int, int]]:
        async def one_shard(shard: int, authors: list[int]) -> list[tuple[int, int]]:
            async with self.db.for_shard(shard).connection() as conn:
                # One index range scan per author, then the newest of them all.
                return await (await conn.execute(
                    f"SELECT p.id, p.author_id FROM unnest(%s::bigint[]) AS a(id) CROSS JOIN LATERAL ("
                    f"  SELECT id, author_id FROM {shard_schema(shard)}.posts"
                    "   WHERE author_id = a.id AND deleted_at IS NULL AND hidden_at IS NULL ORDER BY id DESC LIMIT %s) p "
                    "ORDER BY p.id DESC LIMIT %s", (authors, limit, limit))).fetchall()

        return sorted(((p, a) for p, a in await self.db.per_shard(author_ids, one_shard)), reverse=True)[:limit]

    async def hide(self, post_id: int) -> int | None:
        """A moderator hid the post (moderation.content_hidden): its author, None for no such post. Idempotent."""
        if not self.db.holds(post_id):
            return None
        async with self.db.for_shard(shard_of(post_id)).connection() as conn:
            row = await (await conn.execute(
                f"UPDATE {shard_schema(shard_of(post_id))}.posts SET hidden_at = coalesce(hidden_at, now()) "
                "WHERE id = %s RETURNING author_id", (post_id,))).fetchone()
        return None if row is None else row[0]

    async def hide_by_author(self, author_id: int) -> list[int]:
        """Every post of a suspended author hidden (moderation.account_suspended); all their hidden posts' ids."""
        if not self.db.holds(author_id):
            return []
        async with self.db.for_shard(shard_of(author_id)).connection() as conn:
            rows = await (await conn.execute(
                f"UPDATE {shard_schema(shard_of(author_id))}.posts SET hidden_at = coalesce(hidden_at, now()) "
                "WHERE author_id = %s AND deleted_at IS NULL RETURNING id", (author_id,))).fetchall()
        return [r[0] for r in rows]
