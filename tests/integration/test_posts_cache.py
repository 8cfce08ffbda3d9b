"""Posts' shape cache against the real Redis: eviction after a media change never undoes a delete; stale
shapes (URLs near expiry) are not served, and re-signing one never undoes an edit or a delete."""

from __future__ import annotations

import time

from pictor.media.v1 import media_pb2
from pictor.posts.v1 import posts_pb2

from services.common.events import Event
from services.posts.cache import CACHE_TTL_S, MediaChanges, PostCache
from services.posts.keys import cached_post_key


async def test_media_updated_evicts_cached_posts_but_keeps_tombstones(client, ids):
    cache = PostCache(client)
    cached, deleted = ids.new_id(1), ids.new_id(1)
    await cache.fill([posts_pb2.Post(id=cached, caption="hi")])
    await cache.forget(deleted)
    await MediaChanges(cache).handle(Event("media", "media.updated", {"media_id": 1, "owner_id": 2,
                                                                      "post_ids": [cached, deleted]}))
    assert await cache.get([cached, deleted]) == {deleted: None}


def _with_url(post_id: int, exp: int) -> posts_pb2.Post:
    return posts_pb2.Post(id=post_id, media=[media_pb2.Media(id=1, url_template=f"/v1/media/1/{{variant}}?exp={exp}&sig=s")])


async def test_a_shape_whose_urls_near_expiry_is_read_as_stale_and_refreshed_in_place(client, ids):
    cache = PostCache(client)
    now = time.time()
    post_id = ids.new_id(1)
    await cache.fill([_with_url(post_id, int(now) + 60)])
    assert await client.ttl(cached_post_key(post_id)) > CACHE_TTL_S - 5  # the shape outlives its URLs
    found = await cache.read([post_id], now)
    assert found.fresh == {} and list(found.stale) == [post_id]
    assert await cache.get([post_id]) == {}  # never served stale
    await client.expire(cached_post_key(post_id), 100)
    await cache.refresh({post_id: found.stale[post_id][1]}, [_with_url(post_id, int(now) + 300)])
    assert (await cache.get([post_id]))[post_id] == _with_url(post_id, int(now) + 300)
    assert 90 < await client.ttl(cached_post_key(post_id)) <= 100  # its time to live kept


async def test_a_refresh_never_undoes_an_edit_or_a_delete_made_after_the_read(client, ids):
    cache = PostCache(client)
    now = time.time()
    edited, deleted = ids.new_id(1), ids.new_id(1)
    await cache.fill([_with_url(edited, int(now)), _with_url(deleted, int(now))])
    found = await cache.read([edited, deleted], now)
    await cache.replace(posts_pb2.Post(id=edited, caption="edited"))
    await cache.forget(deleted)
    await cache.refresh({i: raw for i, (_, raw) in found.stale.items()},
                        [_with_url(edited, int(now) + 300), _with_url(deleted, int(now) + 300)])
    assert await cache.get([edited, deleted]) == {edited: posts_pb2.Post(id=edited, caption="edited"), deleted: None}
