"""The tray and the view write path under load: ``python -m services.stories.bench`` (``make bench-stories``).

Starts a private stack (its own data folder and free ports), or uses a running one given
``BENCH_GATEWAY_PORT`` and ``BENCH_STORIES_PORT``, then:
  - registers ``BENCH_FOLLOWING`` (1,000) accounts and a viewer who follows them all;
    ``BENCH_WITH_STORIES`` (200) of them post a story;
  - the tray: ``BENCH_TRAY_CALLS`` (300) sequential GetTray calls, first at the stories
    service (gRPC on its port), then through Envoy (GET /v1/stories/tray, JSON): p50/p99;
  - the same after each of those accounts posted ``BENCH_EXTRA_STORIES`` (4) more, to show
    the tray does not grow with the number of stories;
  - the celebrity: every registered account views one public story at once, from
    ``BENCH_VIEW_CONCURRENCY`` (100) concurrent clients through Envoy; the rate of
    acknowledged views, and whether the author's view_count is exact.
Prints one JSON line per figure.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import tempfile
import time
from pathlib import Path

import grpc
from google.api import httpbody_pb2
from pictor.accounts.v1 import accounts_service_pb2 as accounts_pb
from pictor.accounts.v1 import accounts_service_pb2_grpc
from pictor.graph.v1 import graph_service_pb2 as graph_pb
from pictor.graph.v1 import graph_service_pb2_grpc
from pictor.media.v1 import media_service_pb2 as media_pb
from pictor.media.v1 import media_service_pb2_grpc
from pictor.stories.v1 import stories_service_pb2 as pb
from pictor.stories.v1 import stories_service_pb2_grpc

from services.common.config import Settings, env_int, load_settings
from services.common.mesh_tls import gateway_channel, service_channel
from services.common.stats import percentile


def emit(**figure: object) -> None:
    print(json.dumps(figure), flush=True)


def small_jpeg() -> bytes:
    import io

    from PIL import Image
    buffer = io.BytesIO()
    Image.new("RGB", (90, 160), (200, 120, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


def auth(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


RETRIED = {"unavailable": 0}


async def retrying(call):
    """await call() until it is not UNAVAILABLE (a pool or a store busy on a loaded machine)."""
    for _ in range(30):
        try:
            return await call()
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            RETRIED["unavailable"] += 1
            await asyncio.sleep(1)
    return await call()


async def gather_limited(limit: int, calls) -> list:
    """Run the calls (functions returning awaitables) at most `limit` at a time, each retried while UNAVAILABLE."""
    gate = asyncio.Semaphore(limit)

    async def one(call):
        async with gate:
            return await retrying(call)

    return await asyncio.gather(*(one(c) for c in calls))


def tray_http(conn: http.client.HTTPConnection, token: str) -> float:
    """One GET /v1/stories/tray through Envoy, JSON, on a kept-alive connection: ms."""
    started = time.perf_counter()
    conn.request("GET", "/v1/stories/tray", headers={"authorization": f"Bearer {token}"})
    response = conn.getresponse()
    response_body = response.read()
    assert response.status == 200, response_body[:200]
    return (time.perf_counter() - started) * 1000


async def run(settings: Settings, gateway_port: int, stories_port: int) -> None:
    following = env_int("BENCH_FOLLOWING", 1000)
    with_stories = env_int("BENCH_WITH_STORIES", 200)
    calls = env_int("BENCH_TRAY_CALLS", 300)
    extra = env_int("BENCH_EXTRA_STORIES", 4)
    concurrency = env_int("BENCH_VIEW_CONCURRENCY", 100)
    gateway = gateway_channel(settings, port=gateway_port)
    direct = service_channel(settings, "stories", port=stories_port)
    accounts = accounts_service_pb2_grpc.AccountsServiceStub(gateway)
    graph = graph_service_pb2_grpc.GraphServiceStub(gateway)
    media = media_service_pb2_grpc.MediaServiceStub(gateway)
    stories = stories_service_pb2_grpc.StoriesServiceStub(gateway)
    stories_direct = stories_service_pb2_grpc.StoriesServiceStub(direct)
    tag = f"{os.getpid()}{int(time.time()) % 100000}"

    def register(n: str):
        return lambda: accounts.CreateAccount(accounts_pb.CreateAccountRequest(
            username=f"b{tag}_{n}", email=f"b{tag}_{n}@example.com", password="bench-stories"), timeout=60)

    started = time.monotonic()
    viewer = await retrying(register("viewer"))
    people = await gather_limited(8, [register(str(i)) for i in range(following)])
    await gather_limited(8, [lambda p=p: graph.Follow(graph_pb.FollowRequest(user_id=p.user.id),
                                                      metadata=auth(viewer.access_token), timeout=30) for p in people])
    jpeg = small_jpeg()

    async def post(person, media_id: int | None = None) -> tuple[int, int]:
        if media_id is None:
            item = await media.UploadMedia(media_pb.UploadMediaRequest(
                body=httpbody_pb2.HttpBody(content_type="image/jpeg", data=jpeg)),
                metadata=auth(person.access_token), timeout=60)
            media_id = item.id
        story = await stories.CreateStory(pb.CreateStoryRequest(media_id=media_id), metadata=auth(person.access_token),
                                          timeout=30)
        return story.id, media_id

    posted = await gather_limited(8, [lambda p=p: post(p) for p in people[:with_stories]])
    emit(what="setup", accounts=following + 1, follows=following, stories=with_stories,
         seconds=round(time.monotonic() - started, 1))

    async def measure(label: str) -> None:
        entries = (await stories_direct.GetTray(pb.GetTrayRequest(), metadata=auth(viewer.access_token),
                                                timeout=30)).entries
        assert len(entries) == with_stories, len(entries)
        conn = http.client.HTTPConnection("127.0.0.1", gateway_port, timeout=30)
        for where in ("service", "envoy"):
            times = []
            for _ in range(calls):
                if where == "service":
                    t = time.perf_counter()
                    await stories_direct.GetTray(pb.GetTrayRequest(), metadata=auth(viewer.access_token), timeout=30)
                    times.append((time.perf_counter() - t) * 1000)
                else:
                    times.append(tray_http(conn, viewer.access_token))
            emit(what=f"tray at the {where}", stories=label, following=following, with_stories=len(entries),
                 calls=calls, p50_ms=round(percentile(times, 50), 2), p99_ms=round(percentile(times, 99), 2))
        conn.close()

    await measure(f"{with_stories} x 1")
    if extra:
        await gather_limited(8, [lambda p=p, m=media_id: post(p, m)
                                 for p, (_, media_id) in zip(people[:with_stories], posted, strict=True)
                                 for _ in range(extra)])
        await measure(f"{with_stories} x {1 + extra}")

    celebrity = people[0]
    story_id = posted[0][0]
    viewers = people[1:] + [viewer]
    RETRIED["unavailable"] = 0
    t = time.perf_counter()
    await gather_limited(concurrency, [lambda p=p: stories.ViewStory(pb.ViewStoryRequest(story_id=story_id),
                                                                     metadata=auth(p.access_token), timeout=60)
                                       for p in viewers])
    elapsed = time.perf_counter() - t
    listed = await stories.ListStoryViewers(pb.ListStoryViewersRequest(story_id=story_id, page_size=1),
                                            metadata=auth(celebrity.access_token), timeout=30)
    emit(what="celebrity views through Envoy", views=len(viewers), concurrency=concurrency,
         views_per_s=round(len(viewers) / elapsed, 1), view_count=listed.view_count,
         exact=listed.view_count == len(viewers), retried_unavailable=RETRIED["unavailable"])
    await gateway.close()
    await direct.close()


def main() -> None:
    if os.environ.get("BENCH_GATEWAY_PORT"):
        asyncio.run(run(load_settings(), int(os.environ["BENCH_GATEWAY_PORT"]), int(os.environ["BENCH_STORIES_PORT"])))
        return
    from services.mesh.launcher import Stack
    from services.mesh.private_stack import private_environment

    with tempfile.TemporaryDirectory(prefix="pictor-bench-stories-") as data_dir:
        for name in ("PICTOR_DATABASE_URL", "PICTOR_REDIS_URL", "PICTOR_SHARD_MAP"):
            os.environ.pop(name, None)
        os.environ.update(private_environment(Path(data_dir)))
        os.environ.setdefault("PICTOR_GATEWAY_RATE_LIMIT", "100000")
        os.environ.setdefault("PICTOR_ACCESS_TOKEN_TTL", "7200")
        stack = Stack(load_settings())
        print(f"bench-stories: starting a private stack in {data_dir}", flush=True)
        stack.start()
        try:
            settings = stack.settings
            from services.common.registry import by_name
            asyncio.run(run(settings, settings.gateway_port, settings.service_port(by_name("stories"))))
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
