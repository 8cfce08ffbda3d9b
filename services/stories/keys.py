"""The stories service's Redis keys: the one module that spells them.

  {st}:live           ZSET    the authors with active stories: member the author id, score the
                              newest expires_at (ms) of their stories, either audience (a deleted
                              story may leave it too high: the tray checks {st}:a and {st}:c behind
                              it; expired members are pruned on writes)
  {st}:a:<author>     ZSET    the author's active EVERYONE stories: member the story id,
                              score its expires_at in ms (expired members are pruned on writes
                              and never counted: a read counts scores above now)
  {st}:c:<author>     ZSET    the same for the author's CLOSE_FRIENDS stories
  {st}:cf:<author>    SET     the author's close friends (ids)
  {st}:m:<viewer>     SET     the authors whose stories the viewer muted
  {st}:seen:<viewer>  HASH    author -> the newest story id of theirs the viewer viewed
  {st}:built          STRING  set once the structures above were rebuilt from PostgreSQL
                              (a Redis that lost them has none: the next tray rebuilds)
  {st}:building       STRING  the lock of that rebuild

All of them are derived from PostgreSQL (stories, close_friends, story_mutes,
story_views), the source of truth, except {st}:seen, whose loss only shows seen
stories as unseen in the tray.

Every key carries the hash tag {st}: on a Redis Cluster they all share one slot, so
the tray's script, which reads the keys of every account the viewer follows, runs
there. NOTE: the whole index is then on one node; its reads could go to that
node's replicas. (Before the tag the keys were st:...; a Redis holding those rebuilds
once, and the old seen markers are lost.)
"""

from __future__ import annotations

BUILT = "{st}:built"
LIVE = "{st}:live"
BUILDING = "{st}:building"
# Prefixes, for the tray's script (services.stories.index), which builds the keys of many authors.
ACTIVE, ACTIVE_CLOSE_FRIENDS, CLOSE_FRIENDS = "{st}:a:", "{st}:c:", "{st}:cf:"


def active_key(author_id: int, close_friends: bool) -> str:
    return f"{ACTIVE_CLOSE_FRIENDS if close_friends else ACTIVE}{author_id}"


def close_friends_key(author_id: int) -> str:
    return f"{CLOSE_FRIENDS}{author_id}"


def muted_key(viewer_id: int) -> str:
    return f"{{st}}:m:{viewer_id}"


def seen_key(viewer_id: int) -> str:
    return f"{{st}}:seen:{viewer_id}"
