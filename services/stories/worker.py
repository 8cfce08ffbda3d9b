"""Stories' worker: `python -m services.stories.worker` (WorkerSpec "story_cleanup").

A member of the consumer group "story-cleanup" over the stories topic
(services.stories.cleanup). SIGTERM finishes the event in hand, then exits.
"""

from __future__ import annotations

import asyncio

from services.common.clients import MediaClient
from services.common.config import events_claim_idle_ms
from services.common.events import Consumer
from services.common.server import Resources, run_worker
from services.stories.cleanup import GROUP, TOPICS, StoryCleanup


async def work(resources: Resources, stop: asyncio.Event) -> None:
    cleanup = StoryCleanup(resources.redis(), MediaClient(resources.channels()))
    await Consumer(resources.redis(), GROUP, TOPICS, cleanup.handle, claim_idle_ms=events_claim_idle_ms()).run(stop)


def main() -> None:
    run_worker("story_cleanup", work)


if __name__ == "__main__":
    main()
