"""The search service's Redis keys: the one module that spells them.

Written and read by the search service and its indexer worker only.

  tr:5m:{<tag>}:<bucket> HLL     authors of public posts with the tag in a 5-minute bucket (26 h)
  tr:1h:{<tag>}:<hour>   HLL     the same per hour (8 days)
  tr:1d:{<tag>}:<day>    HLL     the same per day (9 days): the 24h window's baseline
  tr:tags:<hour>         SET     tags used in that hour (8 days): the candidates
  tr:top:<window>        STRING  the last answer for the window, JSON (a few seconds)
  sx:<viewer>:<chain>    STRING  one explore token chain's ranked post ids, int64 little-endian (1 h)
  {ac}:p:<prefix>        ZSET    autocomplete: users whose words start with prefix, by follower count
                                 (the most followed 64; services.search.prefixes)
  {ac}:doc               HASH    autocomplete: user id -> what a suggestion shows and its prefixes, JSON
  {ac}:ready             STRING  autocomplete: the index is whole (a rebuild finished, or it began empty)

Buckets count from the Unix epoch: bucket = t // 300, hour = t // 3600, day = t // 86400.
Braces are Redis Cluster hash tags: one tag's buckets share a slot, so that one
PFCOUNT counts the distinct authors across a window's buckets.
"""

from __future__ import annotations

FIVE_MINUTES_TTL_S = 26 * 3600
HOUR_TTL_S = 8 * 86_400 + 3600
DAY_TTL_S = 9 * 86_400
TOP_TTL_S = 5
EXPLORE_TTL_S = 3600



def autocomplete_keys(tag: str = "ac") -> tuple[str, str, str, str]:
    """The autocomplete index's (key pattern, prefix set stem, documents, ready flag): one hash tag,
    one slot, as its scripts read the sets a query names. Another tag is another index (tests)."""
    base = f"{{{tag}}}:"
    return base + "*", base + "p:", base + "doc", base + "ready"


def trend_5m_key(bucket: int, tag: str) -> str:
    return f"tr:5m:{{{tag}}}:{bucket}"


def trend_hour_key(hour: int, tag: str) -> str:
    return f"tr:1h:{{{tag}}}:{hour}"


def trend_day_key(day: int, tag: str) -> str:
    return f"tr:1d:{{{tag}}}:{day}"


def trend_tags_key(hour: int) -> str:
    return f"tr:tags:{hour}"


def trend_top_key(window: str) -> str:
    return f"tr:top:{window}"


def explore_key(viewer_id: int, chain: str) -> str:
    return f"sx:{viewer_id}:{chain}"
