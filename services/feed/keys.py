"""The feed service's Redis keys: the one module that spells them.

Written by the feed service and its fan-out worker only; read by them only.

  feed:{<user>}      ZSET    posts pushed to the user, at most PICTOR_FEED_MAX_ITEMS, in
                             the shared post-list format (services.common.timelines)
  fol:{<user>}       SET     whom the user follows (for pulling celebrity timelines)
  excl:{<user>}      SET     authors the user muted or is blocked with
  celebrities        SET     authors whose posts are pulled at read time, not pushed: marked
                             at each post by the fan-out, read by a rebuild to push the rest
  aff:<viewer>       HASH    author_id -> the viewer's affinity for that author, 0..1
  feat:<post>        STRING  "<likes>:<comments>": the post's engagement as the feed has
                             counted it from engagement's events (the ranker's input; a
                             HASH of the two before, services.feed.features converts it)
  features:format    STRING  "string" once no features hash is left
  {feat:<post>}:seen:<event>, {aff:<viewer>}:seen:<event>
                     STRING  an engagement event already counted in that key (redelivery guard)

The braces are Redis Cluster hash tags: a user's three feed keys share a slot
(a build writes them in one transaction), and each seen marker shares the slot
of the key it guards (one script writes both).

Every feed SET and ZSET holds a sentinel, so an existing key means "built"
even when empty, and a missing one means "rebuild" (services.feed.store).
The authors' timelines the feed reads are the posts service's keys
(services.posts.keys).
"""

from __future__ import annotations

CELEBRITIES = "celebrities"


def feed_key(user_id: int) -> str:
    return f"feed:{{{user_id}}}"


# Every built feed (tools: the feed bench picks readers from them).
FEED_PATTERN = "feed:{*}"


def user_of_feed_key(key: bytes | str) -> int:
    text = key.decode() if isinstance(key, bytes) else key
    return int(text.removeprefix("feed:{").removesuffix("}"))


def following_key(user_id: int) -> str:
    return f"fol:{{{user_id}}}"


def excluded_key(user_id: int) -> str:
    return f"excl:{{{user_id}}}"


# Every viewer's affinities and the markers of the events counted in them (an erasure takes the
# deleted author out of each affinity, and the deleted viewer's markers away).
AFFINITY_PATTERN = "*aff:*"
AFFINITY_PREFIX = "aff:"


def affinity_key(viewer_id: int) -> str:
    return f"{AFFINITY_PREFIX}{viewer_id}"


def affinity_markers_prefix(viewer_id: int) -> str:
    return seen_key(affinity_key(viewer_id), "", "").removesuffix(":")


FEATURES_PREFIX = "feat:"
FEATURES_PATTERN = "feat:*"
FEATURES_FORMAT_KEY = "features:format"


def features_key(post_id: int) -> str:
    return f"{FEATURES_PREFIX}{post_id}"


def features_keys(post_ids: list[int]) -> list[str]:
    """features_key of each post (a ranked window's worth at a time: no call per post)."""
    return [f"{FEATURES_PREFIX}{post_id}" for post_id in post_ids]


def seen_key(counted_in: str, topic: str, event_id: str) -> str:
    """The marker of an event counted in `counted_in` (a features or an affinity key)."""
    return f"{{{counted_in}}}:seen:{topic}:{event_id}"
