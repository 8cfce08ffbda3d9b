"""Engagement in PostgreSQL: likes, comments and counts in the post's shard, saves in the saver's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from services.common import outbox
from services.common.db import Database, shard_schema
from services.common.ids import shard_of
from services.engagement.counters import Flush, fold
from services.engagement.service import TOPIC, Comment, Counts, Entry

COMMENT_COLUMNS = ("id, post_id, author_id, parent_id, text, mentions, reply_count, created_at, "
                   "hidden_at IS NOT NULL AS hidden")
NEVER = 2**63 - 1


def _s(some_id: int) -> str:
    return shard_schema(shard_of(some_id))


def _comment(row: dict[str, Any]) -> Comment:
    return Comment(id=row["id"], post_id=row["post_id"], author_id=row["author_id"], text=row["text"],
                   parent_id=row["parent_id"] or 0, mentions=list(row["mentions"]), reply_count=row["reply_count"],
                   created_at=row["created_at"], hidden=row["hidden"])


class PostgresEngagementRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.waker = outbox.Waker(db)

    # --- likes ------------------------------------------------------------------------

    async def like(self, post_id: int, user_id: int, author_id: int) -> bool:
        """True (and a "like" event) when this call added the like.

        The hot path: one statement, and no NOTIFY in it (wake=False): the relay is woken after the
        commit, coalesced with other likes (outbox.Waker); the count moves by its delta meanwhile.
        """
        async with self.db.for_shard(shard_of(post_id)).connection() as conn:
            cur = await conn.execute(
                f"WITH changed AS (INSERT INTO {_s(post_id)}.likes (post_id, user_id) VALUES (%s, %s) "
                "ON CONFLICT DO NOTHING RETURNING 1) " + outbox.insert_for_each(shard_of(post_id), "changed"),
                (post_id, user_id, *outbox.event_params(TOPIC, "like", wake=False, post_id=post_id,
                                                        user_id=user_id, author_id=author_id)))
        if cur.rowcount != 1:
            return False
        self.waker.wake(shard_of(post_id))
        return True

    async def unlike(self, post_id: int, user_id: int, author_id: int) -> bool:
        """True (and an "unlike" event) when this call removed the like. One statement."""
        async with self.db.for_shard(shard_of(post_id)).connection() as conn:
            cur = await conn.execute(
                f"WITH changed AS (DELETE FROM {_s(post_id)}.likes WHERE post_id = %s AND user_id = %s RETURNING 1) "
                + outbox.insert_for_each(shard_of(post_id), "changed"),
                (post_id, user_id, *outbox.event_params(TOPIC, "unlike", wake=False, post_id=post_id,
                                                        user_id=user_id, author_id=author_id)))
        if cur.rowcount != 1:
            return False
        self.waker.wake(shard_of(post_id))
        return True

    async def scan_likes(self, shard: int, after: tuple[int, int], limit: int) -> list[tuple[int, int, datetime]]:
        async with self.db.for_shard(shard).connection() as conn:
            return await (await conn.execute(
                f"SELECT post_id, user_id, created_at FROM {shard_schema(shard)}.likes WHERE (post_id, user_id) > "
                "(%s, %s) ORDER BY post_id, user_id LIMIT %s", (*after, limit))).fetchall()

    async def likers(self, post_id: int, limit: int, after: tuple[datetime, int] | None) -> list[Entry]:
        query = f"SELECT user_id, created_at FROM {_s(post_id)}.likes WHERE post_id = %s"
        params: list[object] = [post_id]
        if after is not None:
            query += " AND (created_at, user_id) < (%s, %s)"
            params += [after[0], after[1]]
        query += " ORDER BY created_at DESC, user_id DESC LIMIT %s"
        params.append(limit)
        async with self.db.for_shard(shard_of(post_id)).connection() as conn:
            rows = await (await conn.execute(query, params)).fetchall()
        return [Entry(r[0], r[1]) for r in rows]

    # --- saves ------------------------------------------------------------------------

    async def save(self, user_id: int, post_id: int) -> bool:
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            cur = await conn.execute(
                f"INSERT INTO {_s(user_id)}.saves (user_id, post_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (user_id, post_id))
            return cur.rowcount == 1

    async def unsave(self, user_id: int, post_id: int) -> bool:
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            cur = await conn.execute(f"DELETE FROM {_s(user_id)}.saves WHERE user_id = %s AND post_id = %s",
                                     (user_id, post_id))
            return cur.rowcount == 1

    async def saved(self, user_id: int, limit: int, after: tuple[datetime, int] | None) -> list[Entry]:
        query = f"SELECT post_id, created_at FROM {_s(user_id)}.saves WHERE user_id = %s"
        params: list[object] = [user_id]
        if after is not None:
            query += " AND (created_at, post_id) < (%s, %s)"
            params += [after[0], after[1]]
        query += " ORDER BY created_at DESC, post_id DESC LIMIT %s"
        params.append(limit)
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            rows = await (await conn.execute(query, params)).fetchall()
        return [Entry(r[0], r[1]) for r in rows]

    async def saved_among(self, user_id: int, post_ids: list[int]) -> set[int]:
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            rows = await (await conn.execute(
                f"SELECT post_id FROM {_s(user_id)}.saves WHERE user_id = %s AND post_id = ANY(%s)",
                (user_id, post_ids))).fetchall()
        return {r[0] for r in rows}

    # --- comments -----------------------------------------------------------------------

    async def add_comment(self, comment: Comment, post_author_id: int) -> Comment | None:
        """Insert the comment (and count it on its parent) with its "comment" event; None when the parent is gone."""
        s = _s(comment.post_id)
        async with self.db.transaction(shard_of(comment.post_id)) as (conn,):
            parent_author_id = 0
            if comment.parent_id:
                # The parent's row lock also holds off its concurrent deletion.
                bumped = await (await conn.execute(
                    f"UPDATE {s}.comments SET reply_count = reply_count + 1 "
                    "WHERE id = %s AND post_id = %s AND parent_id IS NULL RETURNING author_id",
                    (comment.parent_id, comment.post_id))).fetchone()
                if bumped is None:
                    return None
                parent_author_id = bumped[0]
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                f"INSERT INTO {s}.comments (id, post_id, author_id, parent_id, text, mentions) "
                f"VALUES (%s, %s, %s, %s, %s, %s) RETURNING {COMMENT_COLUMNS}",
                (comment.id, comment.post_id, comment.author_id, comment.parent_id or None, comment.text,
                 comment.mentions))
            created = _comment(await cur.fetchone())
            await outbox.write(conn, shard_of(comment.post_id), TOPIC, "comment", post_id=comment.post_id,
                               user_id=comment.author_id, author_id=post_author_id, comment_id=created.id,
                               parent_comment_id=comment.parent_id, mentions=created.mentions,
                               parent_author_id=parent_author_id)
            return created

    async def get_comment(self, comment_id: int) -> Comment | None:
        if not 0 <= shard_of(comment_id) < self.db.logical_shards:
            return None
        async with self.db.for_shard(shard_of(comment_id)).connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(f"SELECT {COMMENT_COLUMNS} FROM {_s(comment_id)}.comments WHERE id = %s", (comment_id,))
            row = await cur.fetchone()
        return _comment(row) if row else None

    async def comments(self, post_id: int, newest_first: bool, limit: int, after_id: int | None) -> list[Comment]:
        if newest_first:
            where, order, start = "id < %s", "DESC", NEVER if after_id is None else after_id
        else:
            where, order, start = "id > %s", "ASC", 0 if after_id is None else after_id
        async with self.db.for_shard(shard_of(post_id)).connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                f"SELECT {COMMENT_COLUMNS} FROM {_s(post_id)}.comments "
                f"WHERE post_id = %s AND parent_id IS NULL AND {where} ORDER BY id {order} LIMIT %s",
                (post_id, start, limit))
            return [_comment(r) for r in await cur.fetchall()]

    async def replies(self, parent_id: int, limit: int, after_id: int | None) -> list[Comment]:
        async with self.db.for_shard(shard_of(parent_id)).connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                f"SELECT {COMMENT_COLUMNS} FROM {_s(parent_id)}.comments WHERE parent_id = %s AND id > %s "
                "ORDER BY id LIMIT %s", (parent_id, after_id or 0, limit))
            return [_comment(r) for r in await cur.fetchall()]

    async def delete_comment(self, comment: Comment, deleted_by: int, post_author_id: int) -> int:
        """Delete the comment and its replies, with a "comment.deleted" event; returns how many rows went
        (0, and no event, when already gone)."""
        s = _s(comment.id)
        async with self.db.transaction(shard_of(comment.id)) as (conn,):
            # Parent before reply, the order in which a reply is added (it bumps
            # its parent first) and a parent's replies cascade: no deadlocks.
            if comment.parent_id:
                await conn.execute(f"SELECT 1 FROM {s}.comments WHERE id = %s FOR UPDATE", (comment.parent_id,))
            locked = await (await conn.execute(
                f"SELECT 1 FROM {s}.comments WHERE id = %s FOR UPDATE", (comment.id,))).fetchone()
            if locked is None:
                return 0
            # Counted under the lock, which holds off new replies: the cascade removes exactly these.
            replies = (await (await conn.execute(
                f"SELECT count(*) FROM {s}.comments WHERE parent_id = %s", (comment.id,))).fetchone())[0]
            await conn.execute(f"DELETE FROM {s}.comments WHERE id = %s", (comment.id,))
            if comment.parent_id:
                await conn.execute(f"UPDATE {s}.comments SET reply_count = reply_count - 1 WHERE id = %s",
                                   (comment.parent_id,))
            await outbox.write(conn, shard_of(comment.id), TOPIC, "comment.deleted", post_id=comment.post_id,
                               comment_id=comment.id, user_id=deleted_by, author_id=post_author_id,
                               removed=1 + replies)
            return 1 + replies

    # --- a deleted post -----------------------------------------------------------------

    async def purge_post(self, post_id: int) -> tuple[int, int]:
        """Delete the post's likes, comments (both levels) and count row; returns (likes, comments) removed."""
        s = _s(post_id)
        async with self.db.transaction(shard_of(post_id)) as (conn,):
            likes = await conn.execute(f"DELETE FROM {s}.likes WHERE post_id = %s", (post_id,))
            # Replies first: deleting a parent would take its replies uncounted.
            replies = await conn.execute(
                f"DELETE FROM {s}.comments WHERE post_id = %s AND parent_id IS NOT NULL", (post_id,))
            comments = await conn.execute(f"DELETE FROM {s}.comments WHERE post_id = %s", (post_id,))
            await conn.execute(f"DELETE FROM {s}.post_counts WHERE post_id = %s", (post_id,))
            return likes.rowcount, replies.rowcount + comments.rowcount

    async def engaged_users(self, post_id: int) -> tuple[list[int], list[int]]:
        """Who liked the post, and who saved it (every saver's shard)."""
        async with self.db.for_shard(shard_of(post_id)).connection() as conn:
            likers = await (await conn.execute(f"SELECT user_id FROM {_s(post_id)}.likes WHERE post_id = %s",
                                               (post_id,))).fetchall()
        savers = await self.db.every_shard("SELECT user_id FROM {schema}.saves WHERE post_id = %s", (post_id,))
        return [r[0] for r in likers], [r[0] for r in savers]

    async def purge_saves(self, post_id: int) -> int:
        """Delete every save of the post, in every saver's shard; returns how many went."""
        return len(await self.db.every_shard("DELETE FROM {schema}.saves WHERE post_id = %s RETURNING user_id",
                                             (post_id,)))

    # --- counts -------------------------------------------------------------------------

    async def counts(self, post_ids: list[int], liked_by: int = 0) -> tuple[dict[int, Counts], set[int]]:
        """Durable counts, and which of the posts `liked_by` liked: one statement per database."""
        rows = await self.db.select_by_shard(
            post_ids,
            "SELECT p.id, c.like_count, c.comment_count, l.user_id IS NOT NULL FROM unnest(%s::bigint[]) AS p(id) "
            "LEFT JOIN {schema}.post_counts c ON c.post_id = p.id "
            "LEFT JOIN {schema}.likes l ON l.post_id = p.id AND l.user_id = %s",
            (liked_by,))
        counts = {post_id: Counts(likes or 0, comments or 0) for post_id, likes, comments, _ in rows}
        return counts, {post_id for post_id, _, _, is_liked in rows if is_liked}

    # --- moderation (services.engagement.moderation) ---------------------------------------

    async def hide_comment(self, comment_id: int) -> None:
        if self.db.holds(comment_id):
            async with self.db.for_shard(shard_of(comment_id)).connection() as conn:
                await conn.execute(f"UPDATE {_s(comment_id)}.comments SET hidden_at = coalesce(hidden_at, now()) "
                                   "WHERE id = %s", (comment_id,))

    async def hide_comments_by(self, author_id: int) -> None:
        """Every comment of a suspended author, in every shard (they are in their posts' shards)."""
        await self.db.every_shard("UPDATE {schema}.comments SET hidden_at = now() "
                                  "WHERE author_id = %s AND hidden_at IS NULL RETURNING id", (author_id,))


class PostgresCountStore:
    """post_counts for the flusher and the reconciliation job."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[None]:
        """Hold a session advisory lock (on the main database) named `name`.

        The flusher holds it for each cycle and reconciliation for its run, so
        a recount never races a flush. A dead holder's lock goes with its
        connection.
        """
        async with self.db.global_pool.connection() as conn:
            await conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (name,))
            try:
                yield
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (name,))

    async def apply(self, shard: int, flushes: list[Flush]) -> dict[int, Counts]:
        """Add the flushes' deltas (their posts in this shard) exactly once; returns those posts' counts.

        One transaction: it records the flush ids, skips flushes recorded
        before (a retry after a commit whose cleanup did not happen), and
        UPSERTs one row per post.
        """
        s = shard_schema(shard)
        async with self.db.transaction(shard) as (conn,):
            rows = await (await conn.execute(
                f"INSERT INTO {s}.counter_flushes (flush_id) SELECT unnest(%s::text[]) "
                "ON CONFLICT DO NOTHING RETURNING flush_id", ([f.id for f in flushes],))).fetchall()
            fresh = {r[0] for r in rows}
            posts, likes, comments = fold([f for f in flushes if f.id in fresh])
            changed = [i for i in range(len(posts)) if likes[i] or comments[i]]
            counts: dict[int, Counts] = {}
            if changed:
                rows = await (await conn.execute(
                    f"INSERT INTO {s}.post_counts AS c (post_id, like_count, comment_count) "
                    "SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) "
                    "ON CONFLICT (post_id) DO UPDATE SET like_count = c.like_count + EXCLUDED.like_count, "
                    "comment_count = c.comment_count + EXCLUDED.comment_count, updated_at = now() "
                    "RETURNING post_id, like_count, comment_count",
                    ([posts[i] for i in changed], [likes[i] for i in changed], [comments[i] for i in changed]),
                )).fetchall()
                counts = {r[0]: Counts(r[1], r[2]) for r in rows}
            others = [p for f in flushes for p in f.values if p not in counts]
            if others:
                rows = await (await conn.execute(
                    f"SELECT post_id, like_count, comment_count FROM {s}.post_counts WHERE post_id = ANY(%s)",
                    (others,))).fetchall()
                counts.update({p: Counts() for p in others})
                counts.update({r[0]: Counts(r[1], r[2]) for r in rows})
        return counts

    async def counts(self, post_ids: list[int]) -> dict[int, Counts]:
        """post_counts of the posts (zeros for posts without a row): one statement per database."""
        found = {p: Counts() for p in post_ids}
        rows = await self.db.select_by_shard(
            post_ids, "SELECT post_id, like_count, comment_count FROM {schema}.post_counts WHERE post_id = ANY(%s)")
        found.update((post_id, Counts(likes, comments)) for post_id, likes, comments in rows)
        return found

    async def prune_flushes(self, shard: int, older_than_s: int) -> None:
        async with self.db.for_shard(shard).connection() as conn:
            await conn.execute(
                f"DELETE FROM {shard_schema(shard)}.counter_flushes WHERE applied_at < now() - make_interval(secs => %s)",
                (older_than_s,))

    async def post_ids(self, shard: int, after_id: int, limit: int) -> list[int]:
        """The next `limit` posts of the shard, in id order, that have likes, comments or a count row."""
        s = shard_schema(shard)
        found: set[int] = set()
        async with self.db.for_shard(shard).connection() as conn:
            for table in ("post_counts", "likes", "comments"):
                rows = await (await conn.execute(
                    f"SELECT DISTINCT post_id FROM {s}.{table} WHERE post_id > %s ORDER BY post_id LIMIT %s",
                    (after_id, limit))).fetchall()
                found.update(r[0] for r in rows)
        return sorted(found)[:limit]

    async def engaged(self, shard: int, post_ids: list[int]) -> list[int]:
        """The posts of the shard, among `post_ids`, that have likes, comments or a count row."""
        s = shard_schema(shard)
        async with self.db.for_shard(shard).connection() as conn:
            rows = await (await conn.execute(
                f"SELECT p.id FROM unnest(%s::bigint[]) AS p(id) WHERE EXISTS (SELECT 1 FROM {s}.post_counts c "
                f"WHERE c.post_id = p.id) OR EXISTS (SELECT 1 FROM {s}.likes l WHERE l.post_id = p.id) "
                f"OR EXISTS (SELECT 1 FROM {s}.comments m WHERE m.post_id = p.id) ORDER BY p.id",
                (post_ids,))).fetchall()
        return [r[0] for r in rows]

    async def recount(self, shard: int, post_ids: list[int]) -> tuple[list[int], dict[int, Counts]]:
        """Set the posts' counts from their rows: (the posts whose count was wrong, every post's count)."""
        s = shard_schema(shard)
        async with self.db.transaction(shard) as (conn,):
            repaired = await (await conn.execute(
                f"INSERT INTO {s}.post_counts AS c (post_id, like_count, comment_count) "
                "SELECT p.id, "
                f"  (SELECT count(*) FROM {s}.likes l WHERE l.post_id = p.id), "
                f"  (SELECT count(*) FROM {s}.comments m WHERE m.post_id = p.id) "
                "FROM unnest(%s::bigint[]) AS p(id) "
                "ON CONFLICT (post_id) DO UPDATE SET like_count = EXCLUDED.like_count, "
                "comment_count = EXCLUDED.comment_count, updated_at = now() "
                "WHERE (c.like_count, c.comment_count) IS DISTINCT FROM (EXCLUDED.like_count, EXCLUDED.comment_count) "
                "RETURNING c.post_id, c.like_count, c.comment_count, xmax = 0 AS inserted", (post_ids,))).fetchall()
            rows = await (await conn.execute(
                f"SELECT post_id, like_count, comment_count FROM {s}.post_counts WHERE post_id = ANY(%s)",
                (post_ids,))).fetchall()
        counts = {p: Counts() for p in post_ids}
        counts.update({r[0]: Counts(r[1], r[2]) for r in rows})
        # A new row of zeros was no repair: the post simply had no count yet.
        return [r[0] for r in repaired if not (r[3] and r[1] == 0 and r[2] == 0)], counts

