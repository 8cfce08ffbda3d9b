"""Search's index in PostgreSQL: documents in the shards (users, posts, follows, likes), hashtags,
places and explore's model in the global schema.

Only the search service and its workers read or write these tables. A
document carries the `version` (occurred_at) of the event that wrote it, and
an older event changes nothing, so redelivered and reordered events leave the
newest state; a deleted user or post stays as a tombstone for the same reason.
Follow and like edges are idempotent by their keys, and the counts they move
change in the same statement as the edge, only when the edge changed.
Hashtag and place counts are recounted from the documents (idempotent, and
right even when the shards sit in other databases than the global schema).
Queries over documents run in every shard schema (Database.every_shard: one
pipelined round trip per physical database, the databases concurrently).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from services.common.db import GLOBAL_SCHEMA, Database, shard_schema
from services.common.ids import shard_of
from services.search.service import (
    Candidate,
    Hashtag,
    Place,
    PostDoc,
    PostHit,
    UserDoc,
)

G = GLOBAL_SCHEMA
# How many users each way of matching a query may bring, per shard, before they are scored.
BRANCH = 100


def _s(entity_id: int) -> str:
    return shard_schema(shard_of(entity_id))


class PostgresSearchIndex:
    def __init__(self, db: Database) -> None:
        self.db = db

    def holds(self, entity_id: int) -> bool:
        return self.db.holds(entity_id)

    # --- users -------------------------------------------------------------------------

    async def put_user(self, user: UserDoc, version: datetime) -> int | None:
        """Write the user's document; its follower count, or None when a newer event (or the user's
        deletion) came first and nothing changed."""
        async with self.db.for_shard(shard_of(user.user_id)).connection() as conn:
            row = await (await conn.execute(
                f"INSERT INTO {_s(user.user_id)}.search_users (user_id, username, display_name, is_private, version) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (user_id) DO UPDATE SET username = excluded.username, "
                "display_name = excluded.display_name, is_private = excluded.is_private, version = excluded.version "
                "WHERE search_users.version <= excluded.version AND NOT search_users.deleted RETURNING follower_count",
                (user.user_id, user.username, user.display_name, user.is_private, version))).fetchone()
        return None if row is None else row[0]

    async def delete_user(self, user_id: int, version: datetime) -> None:
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            await conn.execute(
                f"INSERT INTO {_s(user_id)}.search_users (user_id, username, deleted, version) "
                "VALUES (%s, '', true, %s) ON CONFLICT (user_id) DO UPDATE SET deleted = true, version = excluded.version",
                (user_id, version))

    async def any_user(self) -> bool:
        """Whether the index holds a user (a deleted one's tombstone too)."""
        return bool(await self.db.every_shard("SELECT 1 FROM {schema}.search_users LIMIT 1"))

    async def live_users(self, shard: int, after_id: int, limit: int) -> list[tuple[int, str, str, int]]:
        """One shard's live users (id, username, display name, follower count) after `after_id`, by id."""
        async with self.db.for_shard(shard).connection() as conn:
            return await (await conn.execute(
                f"SELECT user_id, username, display_name, follower_count FROM {shard_schema(shard)}.search_users "
                "WHERE user_id > %s AND NOT deleted ORDER BY user_id LIMIT %s", (after_id, limit))).fetchall()

    async def users(self, user_ids: list[int]) -> dict[int, UserDoc]:
        rows = await self.db.select_by_shard(
            user_ids, "SELECT user_id, username, display_name, is_private, follower_count "
                      "FROM {schema}.search_users WHERE user_id = ANY(%s) AND NOT deleted")
        return {r[0]: UserDoc(*r) for r in rows}

    async def match_users(self, q: str, keys: list[str], limit: int, following: list[int] | None = None
                          ) -> list[Candidate]:
        """Users whose username starts with q, a word of whose name starts with q, one typo away from
        q (shared typo keys), or trigram-similar to it; with how well they match (higher is better).

        Each way of matching takes at most BRANCH rows (no ordering: a GIN or btree scan that stops
        early), and only those are scored, so a query most users match ("seed") costs no more than a
        rare one; accounts the searcher follows that match are always among them, typos included.
        The typo ways over everyone are the dear ones (typo keys most names share make a GIN bitmap
        of the whole table; trigrams are compared row by row): they run only when the name ways found
        fewer than `limit`. So a misspelt account shows when few accounts start with what was typed,
        which is when a typo is likely; past that, those that match as typed fill the list.
        """
        fuzzy = len(q) >= 3
        live = "SELECT user_id FROM {schema}.search_users WHERE NOT deleted AND "
        # USING ~<~: the order of the text_pattern_ops index, so the scan walks it and stops at the limit
        # (ORDER BY username, in the database's collation, sorted every prefix match first).
        branches = [live + "username LIKE %(prefix)s ORDER BY username USING ~<~ LIMIT %(branch)s"]
        typos = []
        if fuzzy:
            branches.append(live + "folded LIKE %(word)s LIMIT %(branch)s")
            typos.append(live + "%(q)s <%% folded LIMIT %(branch)s")
        if keys:
            typos.append(live + "typo_keys && %(keys)s::text[] LIMIT %(branch)s")
        if following:
            branches.append(live + "user_id = ANY(%(following)s) AND (username LIKE %(prefix)s"
                            + (" OR folded LIKE %(word)s OR %(q)s <%% folded" if fuzzy else "")
                            + (" OR typo_keys && %(keys)s::text[]" if keys else "") + ")")
        params = {"q": q, "prefix": _like_prefix(q), "word": "% " + _like_prefix(q), "keys": keys, "limit": limit,
                  "branch": max(limit, BRANCH), "following": following or []}
        found = await self._score_users(branches, fuzzy, bool(keys), params)
        if typos and len(found) < limit:
            found = await self._score_users([*branches, *typos], fuzzy, bool(keys), params)
        return found

    async def _score_users(self, branches: list[str], fuzzy: bool, keys: bool, params: dict) -> list[Candidate]:
        match = ("CASE WHEN username LIKE %(prefix)s THEN 3.0 "
                 + ("WHEN folded LIKE %(word)s THEN 2.5 " if fuzzy else "")
                 + ("WHEN typo_keys && %(keys)s::text[] THEN 1.5 " if keys else "")
                 + "ELSE 0 END" + (" + word_similarity(%(q)s, folded)" if fuzzy else ""))
        sql = (f"SELECT user_id, username, display_name, follower_count, {match} AS match "
               "FROM {schema}.search_users WHERE user_id IN (" + " UNION ".join(f"({b})" for b in branches) + ") "
               "ORDER BY match DESC, follower_count DESC LIMIT %(limit)s")
        rows = await self.db.every_shard(sql, params)  # type: ignore[arg-type]
        return [Candidate("user", r[0], r[1], r[2], r[3], float(r[4])) for r in rows]

    # --- posts -------------------------------------------------------------------------

    async def put_post(self, post: PostDoc, version: datetime) -> tuple[set[str], set[int]] | None:
        """Write the post's document; the hashtags and places whose counts it may have moved, or None
        when a newer event (or the post's deletion) came first."""
        s = _s(post.post_id)
        async with self.db.transaction(shard_of(post.post_id)) as (conn,):
            old = await (await conn.execute(
                f"SELECT hashtags, place_id, deleted, version FROM {s}.search_posts WHERE post_id = %s FOR UPDATE",
                (post.post_id,))).fetchone()
            if old is not None and (old[2] or old[3] > version):
                return None
            await conn.execute(
                f"INSERT INTO {s}.search_posts (post_id, author_id, caption, hashtags, place_id, created_at, version) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (post_id) DO UPDATE SET caption = excluded.caption, "
                "hashtags = excluded.hashtags, place_id = excluded.place_id, version = excluded.version",
                (post.post_id, post.author_id, post.caption, post.hashtags, post.place_id, post.created_at, version))
        tags, places = set(post.hashtags), {post.place_id} if post.place_id else set()
        if old is not None:
            tags |= set(old[0])
            places |= {old[1]} if old[1] else set()
        return tags, places

    async def delete_post(self, post_id: int, author_id: int, version: datetime) -> tuple[set[str], set[int]]:
        s = _s(post_id)
        async with self.db.for_shard(shard_of(post_id)).connection() as conn:
            row = await (await conn.execute(
                f"INSERT INTO {s}.search_posts (post_id, author_id, created_at, deleted, version) "
                "VALUES (%s, %s, now(), true, %s) ON CONFLICT (post_id) DO UPDATE SET deleted = true "
                "RETURNING hashtags, place_id", (post_id, author_id, version))).fetchone()
        return set(row[0]), {row[1]} if row[1] else set()

    async def recount(self, tags: set[str], places: set[int],
                      new_places: dict[int, tuple[str, float, float]] | None = None) -> None:
        """Bring the counts of these hashtags and places up to date with the documents; `new_places`
        (id -> name, lat, lng) are made first when missing."""
        if tags:
            rows = await self.db.every_shard(
                "SELECT tag, count(*) FROM {schema}.search_posts, unnest(hashtags) tag "
                "WHERE NOT deleted AND hashtags && %s AND tag = ANY(%s) GROUP BY tag", (list(tags), list(tags)))
            counts: dict[str, int] = defaultdict(int)
            for tag, n in rows:
                counts[tag] += n
            async with self.db.global_pool.connection() as conn:
                await conn.execute(
                    f"INSERT INTO {G}.search_hashtags (name, post_count) SELECT * FROM unnest(%s::text[], %s::bigint[]) "
                    "ON CONFLICT (name) DO UPDATE SET post_count = excluded.post_count",
                    (sorted(tags), [counts.get(t, 0) for t in sorted(tags)]))
        if places:
            ids = sorted(places)
            rows = await self.db.every_shard(
                "SELECT place_id, count(*) FROM {schema}.search_posts WHERE NOT deleted AND place_id = ANY(%s) "
                "GROUP BY place_id", (ids,))
            counts_by_place: dict[int, int] = defaultdict(int)
            for place_id, n in rows:
                counts_by_place[place_id] += n
            async with self.db.global_pool.connection() as conn:
                if new_places:
                    made = sorted(new_places)
                    await conn.execute(
                        f"INSERT INTO {G}.search_places (place_id, name, lat, lng) SELECT * FROM "
                        "unnest(%s::bigint[], %s::text[], %s::float8[], %s::float8[]) ON CONFLICT (place_id) DO NOTHING",
                        (made, [new_places[i][0] for i in made], [new_places[i][1] for i in made],
                         [new_places[i][2] for i in made]))
                await conn.execute(
                    f"UPDATE {G}.search_places p SET post_count = c.n FROM unnest(%s::bigint[], %s::bigint[]) "
                    "AS c(id, n) WHERE p.place_id = c.id", (ids, [counts_by_place.get(i, 0) for i in ids]))

    async def match_posts(self, query: str, following: list[int], blocked: list[int], limit: int
                          ) -> list[PostHit]:
        """Posts whose caption or hashtags match the web-search query, that the viewer may see."""
        rows = await self.db.every_shard(
            "SELECT p.post_id, ts_rank(p.document, q) AS rank, p.created_at FROM {schema}.search_posts p "
            "JOIN {schema}.search_users u ON u.user_id = p.author_id, "
            "websearch_to_tsquery('simple', lower(public.unaccent('public.unaccent'::regdictionary, %s))) q "
            "WHERE p.document @@ q AND NOT p.deleted AND NOT u.deleted AND NOT (p.author_id = ANY(%s)) "
            "AND (NOT u.is_private OR p.author_id = ANY(%s)) ORDER BY rank DESC, p.post_id DESC LIMIT %s",
            (query, blocked, following, limit))
        return [PostHit(r[0], float(r[1]), r[2]) for r in rows]

    async def tagged_posts(self, where: str, value: object, order_top: bool, after: tuple[int, int] | None,
                           following: list[int], blocked: list[int], limit: int) -> list[tuple[int, int]]:
        """(sort key, post_id) of visible live posts with `where` (hashtag or place), best first: by
        likes (TOP) or newest (the key is then the id); after the cursor `after` (key, post_id)."""
        key = "p.like_count" if order_top else "p.post_id"
        cursor = f"AND ({key}, p.post_id) < (%s, %s) " if after else ""
        rows = await self.db.every_shard(
            f"SELECT {key}, p.post_id FROM {{schema}}.search_posts p JOIN {{schema}}.search_users u "
            f"ON u.user_id = p.author_id WHERE {where} AND NOT p.deleted AND NOT u.deleted "
            f"AND NOT (p.author_id = ANY(%s)) AND (NOT u.is_private OR p.author_id = ANY(%s)) {cursor}"
            f"ORDER BY {key} DESC, p.post_id DESC LIMIT %s",
            (value, blocked, following, *(after or ()), limit))
        return sorted(((r[0], r[1]) for r in rows), reverse=True)[:limit]

    async def post_docs(self, post_ids: list[int]) -> dict[int, tuple[int, int, datetime, bool]]:
        """post_id -> (author_id, like_count, created_at, author is private) of live posts."""
        rows = await self.db.select_by_shard(
            post_ids, "SELECT p.post_id, p.author_id, p.like_count, p.created_at, u.is_private "
                      "FROM {schema}.search_posts p JOIN {schema}.search_users u ON u.user_id = p.author_id "
                      "WHERE p.post_id = ANY(%s) AND NOT p.deleted AND NOT u.deleted")
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}

    # --- hashtags and places -------------------------------------------------------------

    async def match_hashtags(self, q: str, limit: int, offset: int = 0) -> list[Hashtag]:
        fuzzy = " OR folded %% %(q)s" if len(q) >= 3 else ""
        async with self.db.global_pool.connection() as conn:
            rows = await (await conn.execute(
                f"SELECT name, post_count FROM {G}.search_hashtags WHERE post_count > 0 AND (folded LIKE %(prefix)s"
                f"{fuzzy}) ORDER BY folded LIKE %(prefix)s DESC, post_count DESC, name LIMIT %(limit)s "
                "OFFSET %(offset)s", {"q": q, "prefix": _like_prefix(q), "limit": limit, "offset": offset})).fetchall()
        return [Hashtag(*r) for r in rows]

    async def hashtag(self, name: str) -> Hashtag | None:
        async with self.db.global_pool.connection() as conn:
            row = await (await conn.execute(
                f"SELECT name, post_count FROM {G}.search_hashtags WHERE name = %s AND post_count > 0",
                (name,))).fetchone()
        return Hashtag(*row) if row else None

    async def match_places(self, q: str, limit: int, offset: int = 0) -> list[Place]:
        fuzzy = " OR folded LIKE %(word)s OR folded %% %(q)s" if len(q) >= 3 else ""
        async with self.db.global_pool.connection() as conn:
            rows = await (await conn.execute(
                f"SELECT place_id, name, lat, lng, post_count FROM {G}.search_places WHERE post_count > 0 AND "
                f"(folded LIKE %(prefix)s{fuzzy}) ORDER BY folded LIKE %(prefix)s DESC, post_count DESC, place_id "
                "LIMIT %(limit)s OFFSET %(offset)s",
                {"q": q, "prefix": _like_prefix(q), "word": "% " + _like_prefix(q), "limit": limit,
                 "offset": offset})).fetchall()
        return [Place(*r) for r in rows]

    async def place(self, place_id: int) -> Place | None:
        async with self.db.global_pool.connection() as conn:
            row = await (await conn.execute(
                f"SELECT place_id, name, lat, lng, post_count FROM {G}.search_places WHERE place_id = %s "
                "AND post_count > 0", (place_id,))).fetchone()
        return Place(*row) if row else None

    # --- follows -------------------------------------------------------------------------

    async def follow(self, follower_id: int, target_id: int) -> int | None:
        return await self._edge(follower_id, target_id, added=True)

    async def unfollow(self, follower_id: int, target_id: int) -> int | None:
        return await self._edge(follower_id, target_id, added=False)

    async def _edge(self, follower_id: int, target_id: int, *, added: bool) -> int | None:
        """Add (or remove) the edge in both shards; the target's follower count moves only when the edge
        did. The target's new follower count, or None when nothing changed."""
        a_s, b_s = _s(follower_id), _s(target_id)
        if added:
            first = f"INSERT INTO {a_s}.search_following VALUES (%s, %s) ON CONFLICT DO NOTHING"
            changed = f"INSERT INTO {b_s}.search_followers VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING 1"
            count = "follower_count + 1"
        else:
            first = f"DELETE FROM {a_s}.search_following WHERE follower_id = %s AND target_id = %s"
            changed = f"DELETE FROM {b_s}.search_followers WHERE target_id = %s AND follower_id = %s RETURNING 1"
            count = "greatest(follower_count - 1, 0)"
        async with self.db.transaction(shard_of(follower_id), shard_of(target_id)) as (a, b):
            await a.execute(first, (follower_id, target_id))
            row = await (await b.execute(
                f"WITH changed AS ({changed}) UPDATE {b_s}.search_users SET follower_count = {count} "
                "WHERE user_id = %s AND NOT deleted AND EXISTS (SELECT 1 FROM changed) RETURNING follower_count",
                (target_id, follower_id, target_id))).fetchone()
        return None if row is None else row[0]

    async def following(self, user_id: int) -> list[int]:
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            rows = await (await conn.execute(
                f"SELECT target_id FROM {_s(user_id)}.search_following WHERE follower_id = %s", (user_id,))).fetchall()
        return [r[0] for r in rows]

    async def followed_by_any(self, follower_ids: list[int], limit: int) -> list[tuple[int, int]]:
        """(user, how many of follower_ids follow them), most first: friends of friends."""
        if not follower_ids:
            return []
        rows = await self.db.select_by_shard(
            follower_ids, "SELECT target_id, count(*) FROM {schema}.search_following WHERE follower_id = ANY(%s) "
                          "GROUP BY target_id")
        counts: dict[int, int] = defaultdict(int)
        for target, n in rows:
            counts[target] += n
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]

    async def most_followed(self, limit: int) -> list[int]:
        """The `limit` accounts with the most followers (at least one), most first."""
        rows = await self.db.every_shard(
            "SELECT user_id, follower_count FROM {schema}.search_users WHERE NOT deleted AND follower_count > 0 "
            "ORDER BY follower_count DESC, user_id LIMIT %s", (limit,))
        return [u for u, _ in sorted(rows, key=lambda row: (-row[1], row[0]))[:limit]]

    async def followers_among(self, target_id: int, candidates: list[int]) -> list[tuple[int, int]]:
        """(follower, their follower count) of target's followers among candidates, most followed first."""
        async with self.db.for_shard(shard_of(target_id)).connection() as conn:
            rows = await (await conn.execute(
                f"SELECT follower_id FROM {_s(target_id)}.search_followers WHERE target_id = %s "
                "AND follower_id = ANY(%s)", (target_id, candidates))).fetchall()
        users = await self.users([r[0] for r in rows])
        return sorted(((u, users[u].follower_count) for u in users), key=lambda item: (-item[1], item[0]))

    # --- likes ---------------------------------------------------------------------------

    async def like(self, post_id: int, user_id: int, at: datetime) -> None:
        s = _s(post_id)
        async with self.db.for_shard(shard_of(post_id)).connection() as conn:
            await conn.execute(
                f"WITH added AS (INSERT INTO {s}.search_likes VALUES (%s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1) "
                f"UPDATE {s}.search_posts SET like_count = like_count + 1 WHERE post_id = %s "
                "AND EXISTS (SELECT 1 FROM added)", (post_id, user_id, at, post_id))

    async def unlike(self, post_id: int, user_id: int) -> None:
        s = _s(post_id)
        async with self.db.for_shard(shard_of(post_id)).connection() as conn:
            await conn.execute(
                f"WITH gone AS (DELETE FROM {s}.search_likes WHERE post_id = %s AND user_id = %s RETURNING 1) "
                f"UPDATE {s}.search_posts SET like_count = greatest(like_count - 1, 0) WHERE post_id = %s "
                "AND EXISTS (SELECT 1 FROM gone)", (post_id, user_id, post_id))

    async def liked_by(self, user_id: int, limit: int) -> list[int]:
        """The posts the user liked, newest like first (every shard: likes live with their posts)."""
        rows = await self.db.every_shard(
            "SELECT post_id, liked_at FROM {schema}.search_likes WHERE user_id = %s ORDER BY liked_at DESC LIMIT %s",
            (user_id, limit))
        return [r[0] for r in sorted(rows, key=lambda r: r[1], reverse=True)[:limit]]

    async def recent_likes(self, since: datetime) -> list[tuple[int, int, datetime]]:
        """(user_id, post_id, liked_at) of likes since `since`: the model's input."""
        return await self.db.every_shard(
            "SELECT user_id, post_id, liked_at FROM {schema}.search_likes WHERE liked_at >= %s", (since,))

    # --- explore's model -------------------------------------------------------------------

    async def neighbors(self, post_ids: list[int]) -> list[tuple[int, int, float]]:
        async with self.db.global_pool.connection() as conn:
            return await (await conn.execute(
                f"SELECT post_id, neighbor_id, score FROM {G}.search_neighbors WHERE post_id = ANY(%s)",
                (post_ids,))).fetchall()

    async def popular(self, limit: int) -> list[tuple[int, float]]:
        async with self.db.global_pool.connection() as conn:
            return await (await conn.execute(
                f"SELECT post_id, score FROM {G}.search_popular ORDER BY score DESC, post_id DESC LIMIT %s",
                (limit,))).fetchall()

    async def popular_candidates(self, since: datetime, limit: int) -> list[tuple[int, int, int, datetime]]:
        """(post_id, author_id, like_count, created_at) of the most liked public posts since `since`."""
        rows = await self.db.every_shard(
            "SELECT p.post_id, p.author_id, p.like_count, p.created_at FROM {schema}.search_posts p "
            "JOIN {schema}.search_users u ON u.user_id = p.author_id WHERE NOT p.deleted AND NOT u.deleted "
            "AND NOT u.is_private AND p.created_at >= %s ORDER BY p.like_count DESC LIMIT %s", (since, limit))
        return rows

    @asynccontextmanager
    async def model_turn(self, every_s: float) -> AsyncIterator[bool]:
        """Whether this process refreshes explore's model now: True when no other replica is refreshing
        it (a session advisory lock, held until the block ends and gone with a dead holder's connection)
        and none finished one in the last 90% of `every_s`; so replicas of the worker refresh it once
        per period between them."""
        async with self.db.global_pool.connection() as conn:
            row = await (await conn.execute("SELECT pg_try_advisory_lock(hashtext('search:explore_model'))")).fetchone()
            if not row[0]:
                yield False
                return
            try:
                recent = await (await conn.execute(
                    f"SELECT EXISTS (SELECT 1 FROM {G}.search_model_runs "
                    "WHERE finished_at > now() - make_interval(secs => %s))", (every_s * 0.9,))).fetchone()
                yield not recent[0]
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtext('search:explore_model'))")

    async def replace_model(self, neighbors: list[tuple[int, int, float]],
                            popular: list[tuple[int, int, float, datetime]], likes_used: int, seconds: float) -> None:
        """Swap in a new model: neighbors and popular posts, in one transaction."""
        async with self.db.global_pool.connection() as conn, conn.transaction():
            await conn.execute(f"TRUNCATE {G}.search_neighbors, {G}.search_popular")
            async with conn.cursor().copy(f"COPY {G}.search_neighbors (post_id, neighbor_id, score) FROM STDIN") as copy:
                for row in neighbors:
                    await copy.write_row(row)
            async with conn.cursor().copy(
                    f"COPY {G}.search_popular (post_id, author_id, score, created_at) FROM STDIN") as copy:
                for row in popular:
                    await copy.write_row(row)
            await conn.execute(f"INSERT INTO {G}.search_model_runs (likes_used, pairs, seconds) VALUES (%s, %s, %s)",
                               (likes_used, len(neighbors), seconds))

    # --- rebuild -------------------------------------------------------------------------

    async def _in_every_shard(self, sql: str) -> None:
        """Run a statement that returns no rows in every shard schema (the rebuild's bulk steps)."""
        async def one_database(shards: list[int]) -> None:
            async with self.db.for_shard(shards[0]).connection() as conn, conn.transaction():
                for shard in shards:
                    await conn.execute(sql.format(schema=shard_schema(shard)))

        await asyncio.gather(*(one_database(shards) for shards in self.db.shards_by_database()))

    async def clear(self) -> None:
        """Empty the whole index (the rebuild's first step)."""
        await self._in_every_shard("TRUNCATE {schema}.search_users, {schema}.search_posts, {schema}.search_following, "
                                  "{schema}.search_followers, {schema}.search_likes")
        async with self.db.global_pool.connection() as conn:
            await conn.execute(f"TRUNCATE {G}.search_hashtags, {G}.search_places")

    async def copy_rows(self, shard: int, table: str, columns: str, rows: list[tuple]) -> None:
        if not rows:
            return
        async with (self.db.for_shard(shard).connection() as conn, conn.transaction(),
                    conn.cursor().copy(f"COPY {shard_schema(shard)}.{table} ({columns}) FROM STDIN") as copy):
            for row in rows:
                await copy.write_row(row)

    async def finish_rebuild(self, version: datetime) -> None:
        """After a bulk load: follower and like counts, hashtag and place counts, from the rows."""
        await self._in_every_shard(
            "UPDATE {schema}.search_users u SET follower_count = c.n FROM (SELECT target_id, count(*) n FROM "
            "{schema}.search_followers GROUP BY target_id) c WHERE u.user_id = c.target_id")
        await self._in_every_shard(
            "UPDATE {schema}.search_posts p SET like_count = c.n FROM (SELECT post_id, count(*) n FROM "
            "{schema}.search_likes GROUP BY post_id) c WHERE p.post_id = c.post_id")
        rows = await self.db.every_shard(
            "SELECT tag, count(*) FROM {schema}.search_posts, unnest(hashtags) tag WHERE NOT deleted GROUP BY tag")
        counts: dict[str, int] = defaultdict(int)
        for tag, n in rows:
            counts[tag] += n
        async with self.db.global_pool.connection() as conn:
            await conn.execute(
                f"INSERT INTO {G}.search_hashtags (name, post_count) SELECT * FROM unnest(%s::text[], %s::bigint[]) "
                "ON CONFLICT (name) DO UPDATE SET post_count = excluded.post_count",
                (list(counts), list(counts.values())))
        await self._in_every_shard("ANALYZE {schema}.search_users")
        await self._in_every_shard("ANALYZE {schema}.search_posts")

    async def put_places(self, places: dict[int, tuple[str, float, float]]) -> None:
        if places:
            await self.recount(set(), set(places), places)


def _like_prefix(q: str) -> str:
    """A LIKE pattern for "starts with q", q's own wildcards escaped."""
    return q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"

