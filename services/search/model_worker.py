"""Explore's model worker: `python -m services.search.model_worker` (WorkerSpec "explore_model").

Every PICTOR_EXPLORE_MODEL_EVERY_S (default 3600) it recomputes explore's
item-item co-engagement and popular posts from the index's likes and posts
(services.search.model) and swaps them in, in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from services.common.config import env_int
from services.common.server import Resources, every, run_worker
from services.search import model
from services.search.repository import PostgresSearchIndex

log = logging.getLogger(__name__)


async def refresh(index: PostgresSearchIndex, progress: Callable[[float], None] | None = None) -> tuple[int, int]:
    """Recompute and store the model; (likes used, neighbour rows). `progress`: see model.co_engagement."""
    started = time.monotonic()
    now = datetime.now(UTC)
    likes = await index.recent_likes(model.since(now, model.LIKES_DAYS))
    neighbors = await asyncio.to_thread(model.co_engagement, likes, progress=progress)
    popular = model.popular_posts(await index.popular_candidates(model.since(now, model.POPULAR_DAYS), 2000), now)
    await index.replace_model(neighbors, popular, len(likes), time.monotonic() - started)
    log.info("explore model: %d likes, %d neighbour rows, %d popular posts in %.1f s", len(likes), len(neighbors),
             len(popular), time.monotonic() - started)
    return len(likes), len(neighbors)


async def work(resources: Resources, stop: asyncio.Event) -> None:
    # One connection holds the refresh's turn (PostgresSearchIndex.model_turn), the others do it.
    index = PostgresSearchIndex(await resources.database(max_size=3))
    every_s = env_int("PICTOR_EXPLORE_MODEL_EVERY_S", 3600)

    async def refresh_or_log() -> None:
        try:
            async with index.model_turn(every_s) as mine:
                if mine:
                    await refresh(index)
                else:
                    log.info("explore model: another replica refreshed it or is refreshing it; not this time")
        except Exception:
            log.exception("explore model: refresh failed; the last model stays")

    await refresh_or_log()
    await every(every_s, refresh_or_log, stop)


def main() -> None:
    run_worker("explore_model", work)


if __name__ == "__main__":
    main()
