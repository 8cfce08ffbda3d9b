"""The view write path: every view durable before its answer, in batches (group commit).

A celebrity's story viewed by a thousand people a second is a thousand
inserts a second into one story's rows. Each ViewStory hands its view to the
batcher of the story's shard and waits; while one batch's transaction is in
flight, the views that arrive queue up, and the next transaction takes them
all (up to MAX_BATCH): one multi-row INSERT ... ON CONFLICT DO NOTHING, which
also moves each story's view_count by the rows that were new, in the same
statement. So the count is exact (it is the number of rows, under the rows'
own unique key: a repeated view counts once) and a view acknowledged is a
view committed; the number of transactions falls as the rate rises, instead
of the hot row's lock taking turns with every view.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from services.common.ids import shard_of
from services.stories.service import Story

MAX_BATCH = 1000


@dataclass
class _Pending:
    story_id: int
    viewer_id: int
    done: asyncio.Future[bool]


@dataclass
class ViewBatcher:
    repo: object  # PostgresStoryRepository.add_views
    max_batch: int = MAX_BATCH
    _queues: dict[int, list[_Pending]] = field(default_factory=dict)
    _flushing: set[int] = field(default_factory=set)
    _tasks: set[asyncio.Task] = field(default_factory=set)

    async def record(self, story: Story, viewer_id: int) -> bool:
        """Record the view; True when it is new. Returns once it is committed."""
        shard = shard_of(story.author_id)
        pending = _Pending(story.id, viewer_id, asyncio.get_running_loop().create_future())
        self._queues.setdefault(shard, []).append(pending)
        if shard not in self._flushing:
            self._flushing.add(shard)
            task = asyncio.create_task(self._flush(shard))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # A caller that gives up (its deadline) leaves its view to the batch, which commits it anyway.
        return await asyncio.shield(pending.done)

    async def _flush(self, shard: int) -> None:
        try:
            while queue := self._queues.get(shard):
                batch, self._queues[shard] = queue[:self.max_batch], queue[self.max_batch:]
                try:
                    new = await self.repo.add_views(shard, [p.story_id for p in batch], [p.viewer_id for p in batch])
                except Exception as error:  # noqa: BLE001 (every waiter gets it: the batch is theirs)
                    for p in batch:
                        if not p.done.done():
                            p.done.set_exception(error)
                    continue
                for p in batch:
                    if not p.done.done():
                        p.done.set_result((p.story_id, p.viewer_id) in new)
                        new.discard((p.story_id, p.viewer_id))  # a second view of the pair in one batch is not new
        finally:
            self._flushing.discard(shard)
            if not self._queues.get(shard):
                self._queues.pop(shard, None)

    async def close(self) -> None:
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task
