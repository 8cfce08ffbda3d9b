"""Feed merge-ranking: K candidate lists of post ids into one page.

Input, as the kernels take it (cheap to build, no per-call copies):

- ``ids``: every candidate list concatenated into one int64 buffer (``array('q')``), each
  list newest first (descending id; ids are time-ordered, see ``hotpath.ids``). Lists may
  overlap: each post is served once.
- ``offsets``: K + 1 int64 entries; list k is ``ids[offsets[k]:offsets[k + 1]]``.
- ``excluded``: post ids never to serve (blocked or muted authors' posts, deleted, already
  seen), any order.
- Ranked mode only, feature columns aligned with ``ids`` (entry i describes ``ids[i]``):
  ``affinity`` (float64, the viewer's affinity for the author, 0..1), ``likes`` and
  ``comments`` (int64; negatives count as 0), ``interest`` (float64, 0..1). A post's age
  comes from its id's timestamp. Features must be finite. Where a post appears in several
  lists, the features at its first list's position are used.

Any int64/float64 buffer works (``array('q')``/``array('d')``, memoryview, ...); other
iterables are copied into arrays first. The lists must be sorted as described; unsorted
input is not detected and gives an unspecified (but memory-safe) page. ``pack_lists`` and
``pack_features`` build the buffers from plain lists and dicts, and ``chronological_feed``
and ``ranked_feed`` do it for you.

Chronological mode, ``chronological_page(ids, offsets, *, limit, before_id=None,
excluded=()) -> Page``: the k-way merge, newest first, duplicates removed, excluded ids
dropped, only ids strictly below ``before_id``, at most ``limit`` ids.
``Page.next_cursor`` is the last served id (the next page's ``before_id``) or None at
the end. The service encodes it into its page token.

Ranked mode, ``ranked_page(ids, offsets, affinity, likes, comments, interest, *, limit,
cursor=None, excluded=(), now_ms=None, weights=Weights(), window=100) -> Page``:

    score = w.interest * interest + w.recency * 2 ** (-age_ms / w.half_life_ms)
          + w.relationship * affinity + w.engagement * log1p(likes + comments)

with ties broken by the higher id. Ranking happens within bounded windows of the
chronological merge so that pages never repeat or skip a post: a window is the next
``window`` eligible candidates older than the previous window; a page serves the window's
posts in rank order and moves on to the next window when one is used up (a page may span
two windows). The ``RankedCursor`` records the window's id range, the clock used for the
decay (``ranked_at_ms``, pinned on the first page), and the rank key ``(score, id)`` of
the last served post. The next page re-reads the window by id range, ranks it the same
way and continues after that key.

NOTE: a key rather than an offset within the window: when the service adds the served
posts to ``excluded`` (seen) between pages, or a post is deleted, the remaining posts keep
their places; an offset would then skip posts. Posts that arrive later are newer than the
window and wait for the next refresh. A post whose likes change between pages can move
across the last served key (and be skipped or repeated once); that is the price of ranking
with live counts.

Candidates straight from Redis, ``newest_members(lists, *, limit, before_id=None,
excluded_authors=()) -> (post_ids, author_ids)``: ``lists`` are post lists' members as Redis
returns them (bytes ``b"<post>:<author>"``, ``services.common.timelines``; the sentinel
``b"0"`` skipped), in any order. The newest ``limit`` distinct posts strictly below
``before_id`` whose authors are not excluded, newest first, as two ``array('q')``: the ids
and each one's author (from the first member that names the post). A member that is not
bytes raises TypeError; one that is not two unsigned int64s in ASCII digits, ValueError.
It parses, merges and cuts the candidates in one pass, so the feed reads a page's
candidates without a Python object per member (the ranked window's ids, and the next
chronological page with ``limit + 1``).

``RankedCursor.encode()`` gives an opaque url-safe token and ``RankedCursor.decode(token)``
reads one back (ValueError when malformed). Both implementations return identical pages
and cursors, to the bit of the score.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from hotpath._merge_common import (
    DEFAULT_WEIGHTS,
    DEFAULT_WINDOW,
    Page,
    PostFeatures,
    RankedCursor,
    Weights,
    pack_features,
    pack_lists,
)
from hotpath._select import load

_implementation_module, IMPLEMENTATION = load("merge")

chronological_page = _implementation_module.chronological_page
ranked_page = _implementation_module.ranked_page
newest_members = _implementation_module.newest_members


def chronological_feed(
    lists: Iterable[Sequence[int]],
    *,
    limit: int,
    before_id: int | None = None,
    excluded: Iterable[int] = (),
) -> tuple[list[int], int | None]:
    """``chronological_page`` for plain lists: returns (post ids, next before_id)."""
    ids, offsets = pack_lists(lists)
    page = chronological_page(ids, offsets, limit=limit, before_id=before_id, excluded=excluded)
    return page.ids.tolist(), page.next_cursor


def ranked_feed(
    lists: Iterable[Sequence[int]],
    features: Mapping[int, PostFeatures],
    *,
    limit: int,
    cursor: RankedCursor | None = None,
    excluded: Iterable[int] = (),
    now_ms: int | None = None,
    weights: Weights = DEFAULT_WEIGHTS,
    window: int = DEFAULT_WINDOW,
) -> tuple[list[int], RankedCursor | None]:
    """``ranked_page`` for plain lists and a dict of features (a missing post scores
    zero features): returns (post ids, next cursor)."""
    ids, offsets = pack_lists(lists)
    page = ranked_page(
        ids,
        offsets,
        *pack_features(ids, features),
        limit=limit,
        cursor=cursor,
        excluded=excluded,
        now_ms=now_ms,
        weights=weights,
        window=window,
    )
    return page.ids.tolist(), page.next_cursor


__all__ = [
    "DEFAULT_WEIGHTS",
    "DEFAULT_WINDOW",
    "IMPLEMENTATION",
    "Page",
    "PostFeatures",
    "RankedCursor",
    "Weights",
    "chronological_feed",
    "chronological_page",
    "newest_members",
    "pack_features",
    "pack_lists",
    "ranked_feed",
    "ranked_page",
]
