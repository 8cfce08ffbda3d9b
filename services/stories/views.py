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

from dataclasses import dataclass, field

from services.common.batching import Batcher
from services.common.ids import shard_of
from services.stories.service import Story

MAX_BATCH = 1000


@dataclass
class ViewBatcher:
    repo: object  # PostgresStoryRepository.add_views
    max_batch: int = MAX_BATCH
    linger_s: float = 0.0
    _batcher: Batcher[int, tuple[int, int], bool] = field(init=False)

    def __post_init__(self) -> None:
        self._batcher = Batcher(self._add, self.max_batch, self.linger_s)

    async def record(self, story: Story, viewer_id: int) -> bool:
        """Record the view; True when it is new. Returns once it is committed."""
        return await self._batcher.submit(shard_of(story.author_id), (story.id, viewer_id))

    async def _add(self, shard: int, views: list[tuple[int, int]]) -> list[bool]:
        new = await self.repo.add_views(shard, [story for story, _ in views], [viewer for _, viewer in views])
        answers = []
        for view in views:
            answers.append(view in new)
            new.discard(view)  # a second view of the pair in one batch is not new
        return answers

    async def close(self) -> None:
        await self._batcher.close()
