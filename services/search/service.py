"""Search and discovery: the domain logic (no gRPC, no SQL).

What the caller may see is decided here, from the index's own projections
(who follows whom, who is private) and the graph's exclusions (blocks either
way, mutes), asked once per request; posts' pages are hydrated by the posts
service, which checks visibility again as their owner.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from services.common.errors import InvalidArgument, NotFound
from services.common.pagination import decode_token, encode_token, invalid_page_token, page_size, positive_int64
from services.common.text import without_nul

MAX_QUERY = 100
AUTOCOMPLETE_LIMIT = 10
SEARCH_PAGE = (20, 50)  # default, maximum
MAX_RESULTS = 500  # how deep one query pages
SEARCH_TYPES = ("USERS", "HASHTAGS", "POSTS", "PLACES")
ORDERS = ("RECENT", "TOP")
HASHTAG = re.compile(r"^[^\W_][\w]{0,99}$")
# Ranking weights of the autocomplete and user search (see README "Search").
FOLLOWED_BOOST = 2.0
POPULARITY_WEIGHT = 0.4
# Explore: how many ranked posts one token chain holds, and the blend. Popularity and freshness
# (each 0..1) break ties among co-engaged posts and rank alone for someone with no likes yet:
# at 0.35 and 0.25 they swamped co-engagement (normalised by its best, most posts score far
# below 1), and on the 100K seed's likes the ranker's recall@20 was 0.0 against popularity's
# 0.0001; at 0.1 and 0.05 it is 0.0056 (`make search-eval`).
EXPLORE_DEPTH = 300
EXPLORE_SEEDS = 50
EXPLORE_WEIGHTS = {"cf": 1.0, "popularity": 0.1, "freshness": 0.05}
FRESHNESS_HALF_LIFE_DAYS = 3.0
MAX_PER_AUTHOR = 3
SUGGESTIONS = (20, 30)
MUTUALS = (3, 50)
# Characters unaccent folds differently from a plain NFKD decomposition.
SPECIAL_FOLDS = str.maketrans({"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th",
                               "ı": "i"})


async def _nothing() -> list:
    return []


@dataclass(frozen=True)
class UserDoc:
    user_id: int
    username: str
    display_name: str = ""
    is_private: bool = False
    follower_count: int = 0


@dataclass(frozen=True)
class PostDoc:
    post_id: int
    author_id: int
    caption: str
    hashtags: list[str]
    place_id: int | None
    created_at: datetime


@dataclass(frozen=True)
class Candidate:
    """A user matching a query, with how well it matches (higher is better)."""

    kind: str
    id: int
    name: str
    display_name: str
    popularity: int
    match: float


@dataclass(frozen=True)
class PostHit:
    post_id: int
    rank: float
    created_at: datetime


@dataclass(frozen=True)
class Hashtag:
    name: str
    post_count: int


@dataclass(frozen=True)
class Place:
    id: int
    name: str
    lat: float
    lng: float
    post_count: int


@dataclass(frozen=True)
class Trend:
    name: str
    author_count: int
    score: float


@dataclass
class Viewer:
    """What decides what one caller sees: whom they follow, whom they muted, who is blocked either way."""

    user_id: int
    following: set[int]
    muted: set[int]
    blocked: set[int]

    @property
    def sees_private_of(self) -> list[int]:
        return [self.user_id, *self.following]


def fold(text: str) -> str:
    """Lower case without accents, as the index's search_fold() does ("Zoë" -> "zoe")."""
    decomposed = unicodedata.normalize("NFKD", text.lower().translate(SPECIAL_FOLDS))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def typo_keys(folded: str, max_len: int = 7) -> list[str]:
    """The query's side of the index's typo keys (search_typo_keys): for each word of 4+ characters,
    its first max_len characters and each of them with one character deleted."""
    keys: list[str] = []
    for word in re.split(r"[^0-9a-z]+", folded):
        if len(word) < 4:
            continue
        prefix = word[:max_len]
        keys.append(prefix)
        keys += [prefix[:i] + prefix[i + 1:] for i in range(len(prefix))]
    return list(dict.fromkeys(keys))


def place_id(name: str, lat: float, lng: float) -> int:
    """A place is a location name within about 100 m: the same folded name and coordinates rounded to
    0.001 degree give the same positive 63-bit id."""
    key = f"{fold(' '.join(name.split()))}|{round(lat, 3):.3f}|{round(lng, 3):.3f}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") >> 1 or 1


def check_query(q: str) -> str:
    q = q.strip()
    if not q or len(q) > MAX_QUERY:
        raise InvalidArgument("q", f"q must be 1-{MAX_QUERY} characters", reason="QUERY_INVALID")
    return without_nul("q", q, reason="QUERY_INVALID")


def hashtag_name(name: str) -> str:
    name = name.strip().removeprefix("#").lower()
    if not HASHTAG.match(name):
        raise InvalidArgument("name", "a hashtag is 1-100 letters, digits or underscores", reason="HASHTAG_INVALID")
    return name


def popularity(count: int) -> float:
    return POPULARITY_WEIGHT * math.log10(1 + max(count, 0))


def rank_users(candidates: list[Candidate], viewer: Viewer) -> list[Candidate]:
    """Best match first; accounts the viewer follows, then popular ones, lifted; none across a block."""
    best: dict[int, tuple[float, Candidate]] = {}
    for c in candidates:
        if c.id in viewer.blocked:
            continue
        score = c.match + (FOLLOWED_BOOST if c.id in viewer.following else 0.0) + popularity(c.popularity)
        if c.id not in best or best[c.id][0] < score:
            best[c.id] = (score, c)
    return [c for _, c in sorted(best.values(), key=lambda item: (-item[0], item[1].id))]


def _starts(folded_name: str, q: str) -> bool:
    return folded_name.startswith(q) or f" {q}" in folded_name


def explore_rank(seeds: list[int], neighbors: list[tuple[int, int, float]], popular: dict[int, float],
                 docs: dict[int, tuple[int, int, datetime, bool]], excluded_posts: set[int],
                 excluded_authors: set[int], now: datetime, depth: int = EXPLORE_DEPTH) -> list[int]:
    """Explore's ranking: co-engagement with the seeds (item-item), blended with popularity and
    freshness; at most MAX_PER_AUTHOR posts of one author. `docs`: post -> (author, likes, created_at,
    author private). Shared by the service and the offline evaluation (services.search.evaluate)."""
    seed_set = set(seeds)
    cf: dict[int, float] = {}
    for post_id, neighbor, score in neighbors:
        if post_id in seed_set:
            cf[neighbor] = cf.get(neighbor, 0.0) + score
    top_cf = max(cf.values(), default=0.0) or 1.0
    top_likes = max((d[1] for d in docs.values()), default=0)
    scored = []
    for post_id in set(cf) | set(popular):
        doc = docs.get(post_id)
        if doc is None or post_id in excluded_posts or post_id in seed_set:
            continue
        author, likes, created_at, private = doc
        if private or author in excluded_authors:
            continue
        age_days = max((now - created_at).total_seconds(), 0) / 86_400
        score = (EXPLORE_WEIGHTS["cf"] * cf.get(post_id, 0.0) / top_cf
                 + EXPLORE_WEIGHTS["popularity"] * (math.log1p(likes) / math.log1p(top_likes) if top_likes else 0)
                 + EXPLORE_WEIGHTS["freshness"] * 0.5 ** (age_days / FRESHNESS_HALF_LIFE_DAYS))
        scored.append((score, post_id, author))
    scored.sort(key=lambda item: (-item[0], -item[1]))
    per_author: dict[int, int] = {}
    ranked = []
    for _, post_id, author in scored:
        if per_author.get(author, 0) >= MAX_PER_AUTHOR:
            continue
        per_author[author] = per_author.get(author, 0) + 1
        ranked.append(post_id)
        if len(ranked) >= depth:
            break
    return ranked


class SearchIndex(Protocol):
    async def users(self, user_ids: list[int]) -> dict[int, UserDoc]: ...
    async def match_users(self, q: str, keys: list[str], limit: int, following: list[int] | None = None
                          ) -> list[Candidate]: ...
    async def match_posts(self, query: str, following: list[int], blocked: list[int], limit: int
                          ) -> list[PostHit]: ...
    async def match_hashtags(self, q: str, limit: int, offset: int = 0) -> list[Hashtag]: ...
    async def match_places(self, q: str, limit: int, offset: int = 0) -> list[Place]: ...
    async def hashtag(self, name: str) -> Hashtag | None: ...
    async def place(self, place_id: int) -> Place | None: ...
    async def tagged_posts(self, where: str, value: object, order_top: bool, after: tuple[int, int] | None,
                           following: list[int], blocked: list[int], limit: int) -> list[tuple[int, int]]: ...
    async def following(self, user_id: int) -> list[int]: ...
    async def followed_by_any(self, follower_ids: list[int], limit: int) -> list[tuple[int, int]]: ...
    async def most_followed(self, limit: int) -> list[int]: ...
    async def followers_among(self, target_id: int, candidates: list[int]) -> list[tuple[int, int]]: ...
    async def liked_by(self, user_id: int, limit: int) -> list[int]: ...
    async def neighbors(self, post_ids: list[int]) -> list[tuple[int, int, float]]: ...
    async def popular(self, limit: int) -> list[tuple[int, float]]: ...
    async def post_docs(self, post_ids: list[int]) -> dict[int, tuple[int, int, datetime, bool]]: ...


class Relations(Protocol):
    async def exclusions(self, user_id: int) -> tuple[list[int], list[int]]:
        """(muted by the user, blocked either way), from the graph."""
        ...

    async def unavailable(self, viewer_id: int, user_ids: list[int]) -> set[int]:
        """Which of the users the viewer follows, asked to follow, or is blocked with."""
        ...

    async def blocked(self, viewer_id: int, user_id: int) -> bool: ...


class Trends(Protocol):
    async def top(self, window: str, now: float, limit: int) -> list[Trend]: ...


class PrefixIndex(Protocol):
    """Autocomplete's users by prefix, outside PostgreSQL's planner (services.search.prefixes)."""

    async def ready(self) -> bool: ...
    async def match(self, q: str, following: list[int], limit: int) -> list[Candidate]: ...


class ExplorePages(Protocol):
    async def save(self, viewer_id: int, post_ids: list[int]) -> str: ...
    async def load(self, viewer_id: int, chain: str) -> list[int] | None: ...


@dataclass
class Page:
    kind: str
    items: list = field(default_factory=list)
    next_page_token: str = ""


@dataclass
class SearchService:
    index: SearchIndex
    relations: Relations
    trends: Trends
    explore_pages: ExplorePages
    prefixes: PrefixIndex | None = None

    async def viewer(self, user_id: int) -> Viewer:
        following, (muted, blocked) = await asyncio.gather(self.index.following(user_id),
                                                           self.relations.exclusions(user_id))
        return Viewer(user_id, set(following), set(muted), set(blocked))

    # --- search --------------------------------------------------------------------------

    async def autocomplete(self, user_id: int, q: str) -> list[UserDoc | Hashtag | Place]:
        raw = check_query(q)
        tags_only = raw.startswith("#")
        q = fold(raw.lstrip("#@").strip())
        if not q:
            raise InvalidArgument("q", "q must have a letter or digit after # or @", reason="QUERY_INVALID")
        if tags_only:
            return list(await self.index.match_hashtags(q, AUTOCOMPLETE_LIMIT))
        # "@ada": accounts only (a mention being typed), as "#" is hashtags only.
        people_only = raw.startswith("@")
        following, indexed = await asyncio.gather(self.index.following(user_id), self._prefixes_ready())
        matching = (self.prefixes.match(q, following, 20) if indexed and self.prefixes
                    else self.index.match_users(q, typo_keys(q), 20, following))
        exclusions, users, tags, places = await asyncio.gather(
            self.relations.exclusions(user_id), matching,
            _nothing() if people_only else self.index.match_hashtags(q, 5),
            _nothing() if people_only else self.index.match_places(q, 5))
        viewer = Viewer(user_id, set(following), set(exclusions[0]), set(exclusions[1]))
        scored: list[tuple[float, int, UserDoc | Hashtag | Place]] = []
        for c in rank_users(users, viewer)[:AUTOCOMPLETE_LIMIT]:
            score = c.match + (FOLLOWED_BOOST if c.id in viewer.following else 0.0) + popularity(c.popularity)
            scored.append((score, c.id, UserDoc(c.id, c.name, c.display_name, follower_count=c.popularity)))
        for t in tags:
            scored.append(((2.5 if t.name.startswith(q) else 1.0) + popularity(t.post_count), 0, t))
        for p in places:
            scored.append(((2.5 if _starts(fold(p.name), q) else 1.0) + popularity(p.post_count), p.id, p))
        scored.sort(key=lambda item: (-item[0], item[1]))
        return [item for _, _, item in scored[:AUTOCOMPLETE_LIMIT]]

    async def _prefixes_ready(self) -> bool:
        return self.prefixes is not None and await self.prefixes.ready()

    async def search(self, user_id: int, q: str, type: str, size: int, token: str) -> Page:
        raw = check_query(q)
        if type not in SEARCH_TYPES:
            raise InvalidArgument("type", f"type must be one of {', '.join(SEARCH_TYPES)}", reason="TYPE_INVALID")
        size = page_size(size, default=SEARCH_PAGE[0], maximum=SEARCH_PAGE[1])
        scope = f"search:{type}:{hashlib.sha256(raw.encode()).hexdigest()[:16]}"
        cursor = decode_token(token, scope, o=positive_int64)
        offset = cursor["o"] if cursor else 0
        if offset > MAX_RESULTS:
            raise invalid_page_token("past the last result")
        want = offset + size + 1
        q = fold(raw.lstrip("#@").strip()) if type != "POSTS" else raw
        if not q:
            raise InvalidArgument("q", "q must have a letter or digit", reason="QUERY_INVALID")
        items: list
        if type == "USERS":
            following = await self.index.following(user_id)
            exclusions, users = await asyncio.gather(self.relations.exclusions(user_id),
                                                     self.index.match_users(q, typo_keys(q), want, following))
            viewer = Viewer(user_id, set(following), set(exclusions[0]), set(exclusions[1]))
            items = [UserDoc(c.id, c.name, c.display_name, follower_count=c.popularity)
                     for c in rank_users(users, viewer)[offset:want]]
        elif type == "HASHTAGS":
            items = list(await self.index.match_hashtags(q, size + 1, offset))
        elif type == "PLACES":
            items = list(await self.index.match_places(q, size + 1, offset))
        else:
            viewer = await self.viewer(user_id)
            hits = await self.index.match_posts(q, viewer.sees_private_of, sorted(viewer.blocked), want)
            hits.sort(key=lambda h: (-h.rank, -h.post_id))
            items = [h.post_id for h in hits[offset:want]]
        more = len(items) > size
        return Page(type, items[:size], encode_token(scope, o=offset + size) if more else "")

    # --- hashtags and places ---------------------------------------------------------------

    async def hashtag(self, name: str) -> Hashtag:
        name = hashtag_name(name)
        found = await self.index.hashtag(name)
        if found is None:
            raise NotFound(f"no posts with #{name}", reason="HASHTAG_NOT_FOUND")
        return found

    async def hashtag_posts(self, user_id: int, name: str, order: str, size: int, token: str) -> Page:
        name = hashtag_name(name)
        order = order or "RECENT"
        if order not in ORDERS:
            raise InvalidArgument("order", "order must be RECENT or TOP", reason="ORDER_INVALID")
        return await self._tagged(user_id, "p.hashtags @> ARRAY[%s]::text[]", name, f"hashtag:{name}:{order}", order == "TOP", size, token)

    async def place(self, place_id: int) -> Place:
        found = await self.index.place(place_id) if place_id > 0 else None
        if found is None:
            raise NotFound(f"no place {place_id}", reason="PLACE_NOT_FOUND")
        return found

    async def place_posts(self, user_id: int, place_id: int, size: int, token: str) -> Page:
        decode_token(token, f"place:{place_id}", k=_non_negative, i=positive_int64)  # a bad token: 400 before 404
        await self.place(place_id)
        return await self._tagged(user_id, "p.place_id = %s", place_id, f"place:{place_id}", False, size, token)

    async def _tagged(self, user_id: int, where: str, value: object, scope: str, top: bool, size: int,
                      token: str) -> Page:
        size = page_size(size, default=SEARCH_PAGE[0], maximum=SEARCH_PAGE[1])
        cursor = decode_token(token, scope, k=_non_negative, i=positive_int64)
        viewer = await self.viewer(user_id)
        rows = await self.index.tagged_posts(where, value, top, (cursor["k"], cursor["i"]) if cursor else None,
                                             viewer.sees_private_of, sorted(viewer.blocked), size + 1)
        page = rows[:size]
        more = len(rows) > size
        return Page("POSTS", [post_id for _, post_id in page],
                    encode_token(scope, k=page[-1][0], i=page[-1][1]) if more else "")

    # --- trending ----------------------------------------------------------------------------

    async def trending(self, window: str) -> list[Trend]:
        window = window or "1h"
        if window not in ("1h", "24h"):
            raise InvalidArgument("window", "window must be 1h or 24h", reason="WINDOW_INVALID")
        return await self.trends.top(window, time.time(), 20)

    # --- explore -----------------------------------------------------------------------------

    async def explore(self, user_id: int, size: int, token: str) -> Page:
        size = page_size(size, default=SEARCH_PAGE[0], maximum=SEARCH_PAGE[1])
        cursor = decode_token(token, "explore", c=_chain, o=positive_int64)
        if cursor:
            ranked = await self.explore_pages.load(user_id, cursor["c"])
            if ranked is None:
                raise invalid_page_token("it expired; start again without one")
            chain, offset = cursor["c"], cursor["o"]
        else:
            ranked = await self.rank_explore(user_id)
            chain, offset = await self.explore_pages.save(user_id, ranked), 0
        page = ranked[offset:offset + size]
        more = offset + size < len(ranked)
        return Page("POSTS", page, encode_token("explore", c=chain, o=offset + size) if more else "")

    async def rank_explore(self, user_id: int) -> list[int]:
        viewer, liked, popular = await asyncio.gather(self.viewer(user_id), self.index.liked_by(user_id, 500),
                                                      self.index.popular(EXPLORE_DEPTH))
        neighbors = await self.index.neighbors(liked[:EXPLORE_SEEDS]) if liked else []
        candidates = {n for _, n, _ in neighbors} | {p for p, _ in popular}
        docs = await self.index.post_docs(sorted(candidates))
        excluded_authors = {user_id} | viewer.following | viewer.muted | viewer.blocked
        return explore_rank(liked[:EXPLORE_SEEDS], neighbors, dict(popular), docs, set(liked), excluded_authors,
                            datetime.now(UTC))

    # --- people --------------------------------------------------------------------------------

    async def suggestions(self, user_id: int, size: int) -> list[tuple[UserDoc, int]]:
        size = page_size(size, default=SUGGESTIONS[0], maximum=SUGGESTIONS[1])
        following = set(await self.index.following(user_id))
        ranked = [(u, n) for u, n in await self.index.followed_by_any(sorted(following), 200)
                  if u != user_id and u not in following]
        if not ranked:
            # Nobody to go by (a newcomer, or follows that lead nowhere): the most followed accounts.
            ranked = [(u, 0) for u in await self.index.most_followed(200) if u != user_id and u not in following]
        gone = await self.relations.unavailable(user_id, [u for u, _ in ranked]) if ranked else set()
        ranked = [(u, n) for u, n in ranked if u not in gone][:size]
        users = await self.index.users([u for u, _ in ranked])
        return [(users[u], n) for u, n in ranked if u in users]

    async def mutual_followers(self, user_id: int, target_id: int, size: int) -> tuple[list[UserDoc], int]:
        size = page_size(size, default=MUTUALS[0], maximum=MUTUALS[1])
        if target_id <= 0 or target_id not in await self.index.users([target_id]) or (
                target_id != user_id and await self.relations.blocked(user_id, target_id)):
            raise NotFound(f"no user {target_id}", reason="USER_NOT_FOUND")
        following = await self.index.following(user_id)
        mutual = await self.index.followers_among(target_id, following) if following else []
        users = await self.index.users([u for u, _ in mutual[:size]])
        return [users[u] for u, _ in mutual[:size] if u in users], len(mutual)


def _non_negative(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ValueError("not a non-negative int64")
    return value


def _chain(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{16}", value):
        raise ValueError("not a chain id")
    return value
