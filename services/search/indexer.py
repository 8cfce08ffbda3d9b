"""From the event bus to the search index: the indexer worker's rules (consumer group "search-indexer").

- user.created / user.updated / user.deleted (accounts): the user's document,
  then autocomplete's prefix index (services.search.prefixes) from what the
  document became;
- post.created / post.updated (their caption, hashtags and location) and
  post.deleted (posts): the post's document, then its hashtags' and place's
  counts; a new public post counts its author for its hashtags' trends;
- follow / unfollow (graph): the follow edges (a block ends a follow with an
  unfollow; the graph's exclusions are asked at query time), and the target's
  follower count in the prefix index when the edge changed;
- like / unlike (engagement): the like edges and the post's like count;
- moderation.content_hidden of a post and moderation.account_suspended
  (moderation): out of the index as a deleted post or user would be (the
  suspended user's posts are hidden by posts, which search asks at query time).

Every write is idempotent or versioned by the event's occurred_at (see
services.search.repository), so redelivered and reordered events are harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from hotpath.ids import decode
from services.common.events import Event, published_at
from services.search.repository import PostgresSearchIndex
from services.search.service import PostDoc, UserDoc, place_id

GROUP = "search-indexer"
TOPICS = ["accounts", "posts", "graph", "engagement", "moderation"]


class TrendCounter(Protocol):
    async def count(self, tags: list[str], author_id: int, at: float) -> None: ...


class Prefixes(Protocol):
    async def put(self, user_id: int, username: str, display_name: str, follower_count: int) -> None: ...
    async def remove(self, user_id: int) -> None: ...
    async def rescore(self, user_id: int, follower_count: int) -> None: ...


def created_at(post_id: int) -> datetime:
    """A post's creation time, from its id."""
    return datetime.fromtimestamp(decode(post_id).timestamp_ms / 1000, UTC)


def post_doc(d: dict) -> tuple[PostDoc, dict[int, tuple[str, float, float]]]:
    """The document of a post.created / post.updated payload, and its place (id -> name, lat, lng)."""
    places = {}
    place = None
    if d.get("location_name"):
        place = place_id(d["location_name"], d["location_lat"], d["location_lng"])
        places[place] = (d["location_name"], d["location_lat"], d["location_lng"])
    return PostDoc(d["post_id"], d["author_id"], d.get("caption", ""), list(d.get("hashtags", [])), place,
                   created_at(d["post_id"])), places


@dataclass
class Indexer:
    index: PostgresSearchIndex
    trends: TrendCounter
    prefixes: Prefixes

    async def handle(self, event: Event) -> None:
        d = event.data
        at = published_at(event)
        version = datetime.fromtimestamp(at, UTC)
        match event.type:
            case "user.created" | "user.updated":
                if self.index.holds(d["user_id"]):
                    followers = await self.index.put_user(UserDoc(d["user_id"], d["username"], d["display_name"],
                                                                  d["is_private"]), version)
                    if followers is not None:
                        await self.prefixes.put(d["user_id"], d["username"], d["display_name"], followers)
            case "user.deleted" | "moderation.account_suspended":
                if self.index.holds(d["user_id"]):
                    await self.index.delete_user(d["user_id"], version)
                    await self.prefixes.remove(d["user_id"])
            case "post.created" | "post.updated":
                await self.post(event.type, d, version, at)
            case "post.deleted":
                await self.delete_post(d["post_id"], d["author_id"], version)
            case "moderation.content_hidden" if d["target_type"] == "post":
                await self.delete_post(d["target_id"], d["owner_id"], version)
            case "follow":
                if self.index.holds(d["follower_id"]) and self.index.holds(d["target_id"]):
                    await self.rescore(d["target_id"], await self.index.follow(d["follower_id"], d["target_id"]))
            case "unfollow":
                if self.index.holds(d["follower_id"]) and self.index.holds(d["target_id"]):
                    await self.rescore(d["target_id"], await self.index.unfollow(d["follower_id"], d["target_id"]))
            case "like":
                if self.index.holds(d["post_id"]):
                    await self.index.like(d["post_id"], d["user_id"], version)
            case "unlike":
                if self.index.holds(d["post_id"]):
                    await self.index.unlike(d["post_id"], d["user_id"])

    async def rescore(self, user_id: int, followers: int | None) -> None:
        if followers is not None:
            await self.prefixes.rescore(user_id, followers)

    async def delete_post(self, post_id: int, author_id: int, version: datetime) -> None:
        if self.index.holds(post_id):
            tags, places = await self.index.delete_post(post_id, author_id, version)
            await self.index.recount(tags, places)

    async def post(self, type: str, d: dict, version: datetime, at: float) -> None:
        if not self.index.holds(d["post_id"]):
            return
        doc, places = post_doc(d)
        moved = await self.index.put_post(doc, version)
        if moved is None:
            return
        tags, place_ids = moved
        await self.index.recount(tags, place_ids, places)
        if type == "post.created" and doc.hashtags:
            author = (await self.index.users([doc.author_id])).get(doc.author_id)
            if author is not None and not author.is_private:
                await self.trends.count(doc.hashtags, doc.author_id, at)
