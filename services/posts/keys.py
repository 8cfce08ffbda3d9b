"""The posts service's Redis keys: the one module that spells them.

  tl:{author}  ZSET    the author's recent live posts, at most TIMELINE_MAX, in
                       the shared post-list format (services.common.timelines);
                       posts writes it as posts are created and deleted, and
                       rebuilds it when missing (RebuildTimelines); the feed
                       reads it (the author's own posts, celebrities' pulls)
  postv3:{id}  STRING  the cached viewer-independent Post, or a tombstone
                       (services.posts.cache); posts' own
"""

from __future__ import annotations

TIMELINE_MAX = 200


TIMELINE_PREFIX = "tl:"


def timeline_key(author_id: int) -> str:
    return f"{TIMELINE_PREFIX}{author_id}"


def cached_post_key(post_id: int) -> str:
    # v3: URLs signed with per-expiry keys (services.media.signing; v2's signatures no longer open);
    # v2: media without captured_at (v1 shapes carried it)
    return f"postv3:{post_id}"
