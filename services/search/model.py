"""Explore's model: item-item co-engagement from likes, and the popular recent posts.

Two posts are neighbours when the same people liked both: for each user, their
PER_USER newest likes in the last LIKES_DAYS days form pairs; a pair's score is
its count over sqrt(likes of one * likes of the other) (cosine on binary
vectors), and each post keeps its NEIGHBORS best. Popular posts are the most
liked public posts of the last POPULAR_DAYS days, by log(1 + likes) decayed
with their age. Written whole (one transaction) by the explore_model worker,
at least hourly; the offline evaluation (services.search.evaluate) trains the
same code on a split of the likes.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

PER_USER = 30
NEIGHBORS = 30
LIKES_DAYS = 30
POPULAR_DAYS = 7
POPULAR = 500
POPULAR_HALF_LIFE_DAYS = 2.0


def co_engagement(likes: Iterable[tuple[int, int, datetime]], per_user: int = PER_USER,
                  neighbors: int = NEIGHBORS, progress: Callable[[float], None] | None = None
                  ) -> list[tuple[int, int, float]]:
    """(post, neighbour, score) rows from (user, post, liked_at) likes; `progress` is told the share
    done (0..1) every percent or so: pairing the users' likes is the first half, scoring the second."""
    by_user: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for user, post, at in likes:
        by_user[user].append((at, post))
    item_count: dict[int, int] = defaultdict(int)
    pairs: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    step = max(1, len(by_user) // 100)
    for n, liked in enumerate(by_user.values()):
        if progress is not None and n % step == 0:
            progress(0.5 * n / len(by_user))
        posts = [p for _, p in heapq.nlargest(per_user, liked)]
        for p in posts:
            item_count[p] += 1
        for i, a in enumerate(posts):
            row = pairs[a]
            for b in posts[i + 1:]:
                row[b] += 1
                pairs[b][a] += 1
    rows = []
    step = max(1, len(pairs) // 100)
    for n, (a, row) in enumerate(pairs.items()):
        if progress is not None and n % step == 0:
            progress(0.5 + 0.5 * n / len(pairs))
        best = heapq.nlargest(neighbors, ((n / math.sqrt(item_count[a] * item_count[b]), b) for b, n in row.items()))
        rows += [(a, b, round(score, 5)) for score, b in best]
    return rows


def popular_posts(posts: Iterable[tuple[int, int, int, datetime]], now: datetime, limit: int = POPULAR
                  ) -> list[tuple[int, int, float, datetime]]:
    """(post, author, score, created_at) of the best of (post, author, likes, created_at), by likes decayed with age."""
    scored = []
    for post, author, likes, created_at in posts:
        age_days = max((now - created_at).total_seconds(), 0) / 86_400
        scored.append((post, author, round(math.log1p(likes) * 0.5 ** (age_days / POPULAR_HALF_LIFE_DAYS), 5),
                       created_at))
    scored.sort(key=lambda row: (-row[2], -row[0]))
    return scored[:limit]


def since(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)
