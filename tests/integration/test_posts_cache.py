"""Posts' shape cache against the real Redis: eviction after a media change never undoes a delete."""

from __future__ import annotations

from pictor.posts.v1 import posts_pb2

from services.common.events import Event
from services.posts.cache import MediaChanges, PostCache


async def test_media_updated_evicts_cached_posts_but_keeps_tombstones(client, ids):
    cache = PostCache(client)
    cached, deleted = ids.new_id(1), ids.new_id(1)
    await cache.fill([posts_pb2.Post(id=cached, caption="hi")])
    await cache.forget(deleted)
    await MediaChanges(cache).handle(Event("media", "media.updated", {"media_id": 1, "owner_id": 2,
                                                                      "post_ids": [cached, deleted]}))
    assert await cache.get([cached, deleted]) == {deleted: None}
