"""The feed service's Redis keys: the one module that spells them.

Written by the feed service and its fan-out worker only; read by them only.

  feed:{user}        ZSET    posts pushed to the user, at most PICTOR_FEED_MAX_ITEMS, in
                             the shared post-list format (services.common.timelines)
  fol:{user}         SET     whom the user follows (for pulling celebrity timelines)
  excl:{user}        SET     authors the user muted or is blocked with
  celebrities        SET     authors whose posts are pulled at read time, not pushed
  aff:{viewer}       HASH    author_id -> the viewer's affinity for that author, 0..1
  feat:{post}        HASH    likes, comments: the post's engagement as the feed has
                             counted it from engagement's events (the ranker's input)
  feat:seen:{event}  STRING  an engagement event already counted (redelivery guard)

Every feed SET and ZSET holds a sentinel, so an existing key means "built"
even when empty, and a missing one means "rebuild" (services.feed.store).
The authors' timelines the feed reads are the posts service's keys
(services.posts.keys).
"""

from __future__ import annotations

CELEBRITIES = "celebrities"


def feed_key(user_id: int) -> str:
    return f"feed:{user_id}"


def following_key(user_id: int) -> str:
    return f"fol:{user_id}"


def excluded_key(user_id: int) -> str:
    return f"excl:{user_id}"


# Every viewer's affinities (an erasure takes the deleted author out of each).
AFFINITY_PATTERN = "aff:*"


def affinity_key(viewer_id: int) -> str:
    return f"aff:{viewer_id}"


def features_key(post_id: int) -> str:
    return f"feat:{post_id}"


def seen_key(topic: str, event_id: str) -> str:
    return f"feat:seen:{topic}:{event_id}"
