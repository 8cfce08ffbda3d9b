"""Stories in PostgreSQL: a story, its views and its highlights in its author's shard; close friends and
story mutes in the shard of the user whose list it is."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from services.common import outbox
from services.common.batching import Batcher
from services.common.db import Database, shard_schema
from services.common.ids import shard_of
from services.stories.service import TOPIC, Highlight, Story, Viewer

AUDIENCE_CODES = {"EVERYONE": 1, "CLOSE_FRIENDS": 2}
AUDIENCE_NAMES = {code: name for name, code in AUDIENCE_CODES.items()}
COLUMNS = ("id, author_id, media_id, audience, allow_replies, created_at, expires_at, view_count, deleted_at, "
           "hidden_at")


def _s(any_id: int) -> str:
    return shard_schema(shard_of(any_id))


def _story(row: dict[str, Any]) -> Story:
    return Story(id=row["id"], author_id=row["author_id"], media_id=row["media_id"],
                 audience=AUDIENCE_NAMES[row["audience"]], allow_replies=row["allow_replies"],
                 created_at=row["created_at"], expires_at=row["expires_at"], view_count=row["view_count"],
                 deleted=row["deleted_at"] is not None, hidden=row["hidden_at"] is not None)


def _after(column: str, tiebreak: str, after: tuple[str, int] | None) -> tuple[str, list[object]]:
    if after is None:
        return "", []
    return f" AND ({column}, {tiebreak}) < (%s, %s)", [datetime.fromisoformat(after[0]), after[1]]


class PostgresStoryRepository:
    def __init__(self, db: Database, batch_linger_s: float = 0.0) -> None:
        self.db = db
        # A celebrity's story read by every view: the reads of a shard's stories that arrive while
        # one is in flight go together in the next (services.common.batching).
        self._gets: Batcher[int, int, Story | None] = Batcher(self._get_many, linger_s=batch_linger_s)

    async def _rows(self, shard_id: int, sql: str, params: object) -> list[dict[str, Any]]:
        async with self.db.for_shard(shard_of(shard_id)).connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(sql, params)
            return await cur.fetchall()

    async def _values(self, shard_id: int, sql: str, params: object) -> list[tuple]:
        async with self.db.for_shard(shard_of(shard_id)).connection() as conn:
            return await (await conn.execute(sql, params)).fetchall()

    # --- stories -------------------------------------------------------------------

    async def insert(self, story: Story, max_active: int) -> bool:
        s = _s(story.author_id)
        async with self.db.transaction(shard_of(story.author_id)) as (conn,):
            # One author's creates take turns, so the limit holds under concurrent posts.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('stories'), hashtext(%s::text))",
                               (story.author_id,))
            active = (await (await conn.execute(
                f"SELECT count(*) FROM {s}.stories WHERE author_id = %s AND deleted_at IS NULL AND expires_at > %s",
                (story.author_id, story.created_at))).fetchone())[0]
            if active >= max_active:
                return False
            await conn.execute(
                f"INSERT INTO {s}.stories (id, author_id, media_id, audience, allow_replies, created_at, expires_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (story.id, story.author_id, story.media_id, AUDIENCE_CODES[story.audience], story.allow_replies,
                 story.created_at, story.expires_at))
        return True

    async def get(self, story_id: int) -> Story | None:
        if not self.db.holds(story_id):
            return None
        return await self._gets.submit(shard_of(story_id), story_id)

    async def _get_many(self, shard: int, story_ids: list[int]) -> list[Story | None]:
        async with self.db.for_shard(shard).connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(f"SELECT {COLUMNS} FROM {shard_schema(shard)}.stories WHERE id = ANY(%s)",
                              (list(set(story_ids)),))
            found = {row["id"]: _story(row) for row in await cur.fetchall()}
        return [found.get(story_id) for story_id in story_ids]

    async def active(self, author_id: int, now: datetime) -> list[Story]:
        rows = await self._rows(
            author_id, f"SELECT {COLUMNS} FROM {_s(author_id)}.stories WHERE author_id = %s AND deleted_at IS NULL "
                       "AND expires_at > %s ORDER BY created_at, id", (author_id, now))
        return [_story(r) for r in rows]

    async def active_count(self, author_id: int, now: datetime) -> int:
        rows = await self._values(
            author_id, f"SELECT count(*) FROM {_s(author_id)}.stories WHERE author_id = %s AND deleted_at IS NULL "
                       "AND expires_at > %s", (author_id, now))
        return rows[0][0]

    async def seen(self, viewer_id: int, story_ids: list[int]) -> set[int]:
        if not story_ids:
            return set()
        rows = await self._values(story_ids[0], f"SELECT story_id FROM {_s(story_ids[0])}.story_views "
                                                "WHERE story_id = ANY(%s) AND viewer_id = %s", (story_ids, viewer_id))
        return {r[0] for r in rows}

    async def delete(self, story: Story) -> bool:
        s = _s(story.author_id)
        async with self.db.transaction(shard_of(story.author_id)) as (conn,):
            gone = await conn.execute(f"UPDATE {s}.stories SET deleted_at = now() WHERE id = %s AND deleted_at IS NULL",
                                      (story.id,))
            if not gone.rowcount:
                return False
            await conn.execute(f"DELETE FROM {s}.highlight_stories WHERE story_id = %s", (story.id,))
            await outbox.write(conn, shard_of(story.author_id), TOPIC, "story.deleted", story_id=story.id,
                               author_id=story.author_id, media_id=story.media_id)
        return True

    # --- views ---------------------------------------------------------------------

    async def add_views(self, shard: int, story_ids: list[int], viewer_ids: list[int]) -> set[tuple[int, int]]:
        """Insert many views of the shard's stories in one statement (one transaction), each story's
        view_count moved by the views that were new; the (story, viewer) pairs that were."""
        s = shard_schema(shard)
        async with self.db.for_shard(shard).connection() as conn:
            rows = await (await conn.execute(
                f"WITH new AS (INSERT INTO {s}.story_views (story_id, viewer_id, viewed_at)"
                "   SELECT v.story_id, v.viewer_id, clock_timestamp()"
                "   FROM unnest(%s::bigint[], %s::bigint[]) AS v(story_id, viewer_id)"
                "   ON CONFLICT DO NOTHING RETURNING story_id, viewer_id),"
                f" counted AS (UPDATE {s}.stories st SET view_count = st.view_count + c.n"
                "   FROM (SELECT story_id, count(*) AS n FROM new GROUP BY story_id) c WHERE st.id = c.story_id)"
                " SELECT story_id, viewer_id FROM new", (story_ids, viewer_ids))).fetchall()
        return {(r[0], r[1]) for r in rows}

    async def react(self, story: Story, viewer_id: int, emoji: str) -> None:
        """The reaction on the viewer's view (a view too, when it is the first), with story.reaction."""
        s, shard = _s(story.author_id), shard_of(story.author_id)
        async with self.db.transaction(shard) as (conn,):
            first = (await (await conn.execute(
                f"INSERT INTO {s}.story_views (story_id, viewer_id, viewed_at, reaction) "
                "VALUES (%s, %s, clock_timestamp(), %s) ON CONFLICT (story_id, viewer_id) "
                "DO UPDATE SET reaction = excluded.reaction RETURNING (xmax = 0)",
                (story.id, viewer_id, emoji))).fetchone())[0]
            if first:
                await conn.execute(f"UPDATE {s}.stories SET view_count = view_count + 1 WHERE id = %s", (story.id,))
            await outbox.write(conn, shard, TOPIC, "story.reaction", story_id=story.id, author_id=story.author_id,
                               user_id=viewer_id, emoji=emoji)

    async def reply(self, story: Story, viewer_id: int, text: str) -> None:
        shard = shard_of(story.author_id)
        async with self.db.transaction(shard) as (conn,):
            await outbox.write(conn, shard, TOPIC, "story.reply", story_id=story.id, author_id=story.author_id,
                               user_id=viewer_id, text=text)

    async def viewers(self, story_id: int, limit: int, after: tuple[str, int] | None) -> list[Viewer]:
        where, params = _after("viewed_at", "viewer_id", after)
        rows = await self._values(
            story_id, f"SELECT viewer_id, viewed_at, reaction FROM {_s(story_id)}.story_views WHERE story_id = %s"
                      f"{where} ORDER BY viewed_at DESC, viewer_id DESC LIMIT %s", [story_id, *params, limit])
        return [Viewer(*r) for r in rows]

    async def archive(self, author_id: int, now: datetime, limit: int, after: tuple[str, int] | None) -> list[Story]:
        where, params = _after("expires_at", "id", after)
        rows = await self._rows(
            author_id, f"SELECT {COLUMNS} FROM {_s(author_id)}.stories WHERE author_id = %s AND deleted_at IS NULL "
                       f"AND expires_at <= %s{where} ORDER BY expires_at DESC, id DESC LIMIT %s",
            [author_id, now, *params, limit])
        return [_story(r) for r in rows]

    # --- highlights ------------------------------------------------------------------

    async def owned_stories(self, owner_id: int, story_ids: list[int]) -> set[int]:
        rows = await self._values(owner_id, f"SELECT id FROM {_s(owner_id)}.stories WHERE author_id = %s "
                                            "AND id = ANY(%s) AND deleted_at IS NULL", (owner_id, story_ids))
        return {r[0] for r in rows}

    async def add_highlight(self, highlight: Highlight, story_ids: list[int]) -> None:
        s = _s(highlight.owner_id)
        async with self.db.transaction(shard_of(highlight.owner_id)) as (conn,):
            await conn.execute(f"INSERT INTO {s}.highlights (id, owner_id, title, cover_story_id, created_at) "
                               "VALUES (%s, %s, %s, %s, %s)", (highlight.id, highlight.owner_id, highlight.title,
                                                               highlight.cover_story_id, highlight.created_at))
            await self._add_items(conn, s, highlight.id, story_ids)

    @staticmethod
    async def _add_items(conn, s: str, highlight_id: int, story_ids: list[int]) -> None:
        # One by one, so that added_at keeps the order given.
        for story_id in story_ids:
            await conn.execute(f"INSERT INTO {s}.highlight_stories (highlight_id, story_id) VALUES (%s, %s) "
                               "ON CONFLICT DO NOTHING", (highlight_id, story_id))

    async def _highlights(self, owner_id: int, where: str, params: tuple) -> list[Highlight]:
        s = _s(owner_id)
        heads = await self._rows(owner_id, f"SELECT id, owner_id, title, cover_story_id, created_at "
                                           f"FROM {s}.highlights WHERE {where} ORDER BY created_at DESC, id DESC", params)
        if not heads:
            return []
        items = await self._rows(
            owner_id, f"SELECT h.highlight_id, {', '.join('st.' + c for c in COLUMNS.split(', '))} "
                      f"FROM {s}.highlight_stories h JOIN {s}.stories st ON st.id = h.story_id "
                      "WHERE h.highlight_id = ANY(%s) AND st.deleted_at IS NULL AND st.hidden_at IS NULL "
                      "ORDER BY h.added_at, h.story_id",
            ([h["id"] for h in heads],))
        stories: dict[int, list[Story]] = {}
        for row in items:
            stories.setdefault(row["highlight_id"], []).append(_story(row))
        return [Highlight(id=h["id"], owner_id=h["owner_id"], title=h["title"], cover_story_id=h["cover_story_id"],
                          created_at=h["created_at"], stories=stories.get(h["id"], [])) for h in heads]

    async def highlights(self, owner_id: int) -> list[Highlight]:
        return await self._highlights(owner_id, "owner_id = %s", (owner_id,))

    async def highlight(self, highlight_id: int) -> Highlight | None:
        if not self.db.holds(highlight_id):
            return None
        found = await self._highlights(highlight_id, "id = %s", (highlight_id,))
        return found[0] if found else None

    async def update_highlight(self, highlight_id: int, title: str | None, cover_story_id: int,
                               add: list[int], remove: list[int]) -> None:
        s = _s(highlight_id)
        async with self.db.transaction(shard_of(highlight_id)) as (conn,):
            if title is not None:
                await conn.execute(f"UPDATE {s}.highlights SET title = %s WHERE id = %s", (title, highlight_id))
            if cover_story_id:
                await conn.execute(f"UPDATE {s}.highlights SET cover_story_id = %s WHERE id = %s",
                                   (cover_story_id, highlight_id))
            await self._add_items(conn, s, highlight_id, add)
            if remove:
                await conn.execute(f"DELETE FROM {s}.highlight_stories WHERE highlight_id = %s AND story_id = ANY(%s)",
                                   (highlight_id, remove))

    async def delete_highlight(self, highlight_id: int) -> None:
        s = _s(highlight_id)
        async with self.db.transaction(shard_of(highlight_id)) as (conn,):
            await conn.execute(f"DELETE FROM {s}.highlight_stories WHERE highlight_id = %s", (highlight_id,))
            await conn.execute(f"DELETE FROM {s}.highlights WHERE id = %s", (highlight_id,))

    # --- close friends and story mutes -------------------------------------------

    async def is_close_friend(self, owner_id: int, friend_id: int) -> bool:
        rows = await self._values(owner_id, f"SELECT 1 FROM {_s(owner_id)}.close_friends WHERE user_id = %s "
                                            "AND friend_id = %s", (owner_id, friend_id))
        return bool(rows)

    async def _write(self, user_id: int, sql: str, params: tuple) -> None:
        if not self.db.holds(user_id):
            return
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            await conn.execute(sql.format(s=_s(user_id)), params)

    async def add_close_friend(self, owner_id: int, friend_id: int) -> None:
        await self._write(owner_id, "INSERT INTO {s}.close_friends (user_id, friend_id) VALUES (%s, %s) "
                                    "ON CONFLICT DO NOTHING", (owner_id, friend_id))

    async def remove_close_friend(self, owner_id: int, friend_id: int) -> None:
        await self._write(owner_id, "DELETE FROM {s}.close_friends WHERE user_id = %s AND friend_id = %s",
                          (owner_id, friend_id))

    async def close_friends(self, owner_id: int, limit: int, after: tuple[str, int] | None) -> list[tuple[int, str]]:
        where, params = _after("created_at", "friend_id", after)
        rows = await self._values(
            owner_id, f"SELECT friend_id, created_at FROM {_s(owner_id)}.close_friends WHERE user_id = %s{where} "
                      "ORDER BY created_at DESC, friend_id DESC LIMIT %s", [owner_id, *params, limit])
        return [(r[0], r[1].isoformat()) for r in rows]

    async def mute(self, user_id: int, target_id: int) -> None:
        await self._write(user_id, "INSERT INTO {s}.story_mutes (user_id, target_id) VALUES (%s, %s) "
                                   "ON CONFLICT DO NOTHING", (user_id, target_id))

    async def unmute(self, user_id: int, target_id: int) -> None:
        await self._write(user_id, "DELETE FROM {s}.story_mutes WHERE user_id = %s AND target_id = %s",
                          (user_id, target_id))

    # --- what the Redis index is rebuilt from ------------------------------------------

    async def all_active(self, now: datetime) -> list[tuple[int, int, int, datetime]]:
        """(story_id, author_id, audience code, expires_at) of every active story, every shard."""
        return await self.db.every_shard(
            "SELECT id, author_id, audience, expires_at FROM {schema}.stories WHERE deleted_at IS NULL "
            "AND hidden_at IS NULL AND expires_at > %s", (now,))

    async def all_close_friends(self) -> list[tuple[int, int]]:
        return await self.db.every_shard("SELECT user_id, friend_id FROM {schema}.close_friends")

    async def all_story_mutes(self) -> list[tuple[int, int]]:
        return await self.db.every_shard("SELECT user_id, target_id FROM {schema}.story_mutes")

    # --- moderation (services.stories.moderation) ----------------------------------------

    async def hide(self, story_id: int) -> list[Story]:
        """A moderator hid the story: marked (idempotent); the story, to leave the tray."""
        return await self._hide("id = %s", story_id)

    async def hide_by_author(self, author_id: int) -> list[Story]:
        """Every story of a suspended author hidden; all of them, to leave the tray."""
        return await self._hide("author_id = %s", author_id)

    async def _hide(self, where: str, some_id: int) -> list[Story]:
        if not self.db.holds(some_id):
            return []
        async with self.db.for_shard(shard_of(some_id)).connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(f"UPDATE {_s(some_id)}.stories SET hidden_at = coalesce(hidden_at, now()) "
                              f"WHERE {where} AND deleted_at IS NULL RETURNING {COLUMNS}", (some_id,))
            return [_story(r) for r in await cur.fetchall()]
