"""Offline evaluation of explore: `python -m services.search.evaluate` (`make search-eval`).

On a seeded stack whose index is built (`make seed`, then `python -m
services.search.rebuild`): each user with at least MIN_LIKES likes has a
random HOLD_OUT share of them held out; explore's model (services.search.model)
is trained on the rest, and for each user (at most --users of them) the
ranker (services.search.service.explore_rank, as GET /v1/explore ranks) and a
popularity-only baseline each name 20 posts the user has not liked in
training. recall@20 is the share of held-out likes among them, averaged
over users. Each phase (loading, training, ranking) prints its progress and an
estimate of what is left on stderr; the result is one JSON line on stdout; exits
1 when the ranker does not beat the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime

from services.common.config import load_settings
from services.common.db import Database
from services.common.progress import Progress
from services.search import model
from services.search.repository import PostgresSearchIndex
from services.search.service import explore_rank

K = 20
MIN_LIKES = 5
HOLD_OUT = 0.2


def split(likes: list[tuple[int, int, datetime]], rng: random.Random
          ) -> tuple[list[tuple[int, int, datetime]], dict[int, set[int]]]:
    """(training likes, held-out posts by user)."""
    by_user: dict[int, list[tuple[int, int, datetime]]] = defaultdict(list)
    for like in likes:
        by_user[like[0]].append(like)
    train: list[tuple[int, int, datetime]] = []
    held: dict[int, set[int]] = {}
    for user, mine in by_user.items():
        if len(mine) < MIN_LIKES:
            train += mine
            continue
        rng.shuffle(mine)
        n = max(1, int(len(mine) * HOLD_OUT))
        held[user] = {post for _, post, _ in mine[:n]}
        train += mine[n:]
    return train, held


def evaluate(likes: list[tuple[int, int, datetime]], docs: dict[int, tuple[int, int, datetime, bool]],
             users: int, seed: int = 7) -> dict:
    rng = random.Random(seed)
    train, held = split(likes, rng)
    started = time.monotonic()
    progress = Progress("training", 1)
    neighbors = model.co_engagement(train, progress=lambda share: progress.advance(0, partial=share))
    progress.advance(len(neighbors), units=1)
    progress.done()
    trained_s = time.monotonic() - started
    by_post: dict[int, list[tuple[int, int, float]]] = defaultdict(list)
    for row in neighbors:
        by_post[row[0]].append(row)
    counts: dict[int, int] = defaultdict(int)
    liked_by: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for user, post, at in train:
        counts[post] += 1
        liked_by[user].append((at, post))
    # As of training: like counts from the training likes only.
    train_docs = {p: (d[0], counts.get(p, 0), d[2], d[3]) for p, d in docs.items()}
    now = max((at for _, _, at in likes), default=datetime.now(UTC))
    popular = model.popular_posts(((p, d[0], d[1], d[2]) for p, d in train_docs.items() if not d[3] and d[1]), now)
    popular_scores = {p: score for p, _, score, _ in popular}
    evaluated = sorted(held)
    rng.shuffle(evaluated)
    evaluated = evaluated[:users]
    ranker, baseline = [], []
    progress = Progress("ranking", len(evaluated))
    for user in evaluated:
        progress.advance(1, units=1)
        seen = {p for _, p in liked_by[user]}
        seeds = [p for _, p in sorted(liked_by[user], reverse=True)][:50]
        rows = [row for p in seeds for row in by_post.get(p, ())]
        ranked = explore_rank(seeds, rows, popular_scores, train_docs, seen, {user}, now, depth=K)
        popular_only = [p for p, author, _, _ in popular if p not in seen and author != user][:K]
        ranker.append(len(held[user] & set(ranked)) / len(held[user]))
        baseline.append(len(held[user] & set(popular_only)) / len(held[user]))
    progress.done()
    recall = sum(ranker) / len(ranker) if ranker else 0.0
    base = sum(baseline) / len(baseline) if baseline else 0.0
    return {"op": "explore.offline_recall_at_20", "likes": len(likes), "train_likes": len(train),
            "users_evaluated": len(evaluated), "neighbour_rows": len(neighbors), "train_s": round(trained_s, 1),
            "recall_at_20_ranker": round(recall, 4), "recall_at_20_popularity": round(base, 4),
            "lift": round(recall / base, 2) if base else None, "ranker_beats_baseline": recall > base}


async def load(db: Database) -> tuple[list[tuple[int, int, datetime]], dict[int, tuple[int, int, datetime, bool]]]:
    index = PostgresSearchIndex(db)
    progress = Progress("loading likes", 1)
    likes = await index.recent_likes(datetime(2000, 1, 1, tzinfo=UTC))
    progress.advance(len(likes), units=1)
    progress.done()
    posts = sorted({p for _, p, _ in likes})
    docs: dict[int, tuple[int, int, datetime, bool]] = {}
    progress = Progress("loading posts", len(posts))
    for start in range(0, len(posts), 20_000):
        docs.update(await index.post_docs(posts[start:start + 20_000]))
        progress.advance(len(posts[start:start + 20_000]), units=len(posts[start:start + 20_000]))
    progress.done()
    return [like for like in likes if like[1] in docs], docs


async def run(users: int) -> dict:
    db = Database(load_settings(), max_size=2)
    await db.open()
    try:
        likes, docs = await load(db)
    finally:
        await db.close()
    return evaluate(likes, docs, users)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000, help="users evaluated (a random sample)")
    report = asyncio.run(run(parser.parse_args().users))
    print(json.dumps(report), flush=True)
    if not report["ranker_beats_baseline"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
