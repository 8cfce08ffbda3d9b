"""The tray and the view write path under load: ``python -m services.stories.bench`` (``make bench-stories``).

Starts a private stack (its own data folder and free ports), or uses a running one given
``BENCH_GATEWAY_PORT`` and ``BENCH_STORIES_PORT``, then:
  - registers ``BENCH_FOLLOWING`` (1,000) accounts and a viewer who follows them all;
    ``BENCH_WITH_STORIES`` (200) of them post a story;
  - the tray: once the stack is quiet again (media renders each story photo's 9:16 variant in
    the background: timed while it works, the tray measured that work, up to 30 ms at p99),
    ``BENCH_TRAY_CALLS`` (300) sequential GetTray calls, first at the stories
    service (gRPC on its port), then through Envoy (GET /v1/stories/tray, JSON): p50/p99;
  - the same after each of those accounts posted ``BENCH_EXTRA_STORIES`` (4) more, to show
    the tray does not grow with the number of stories;
  - the view write path alone: ``BENCH_WRITE_VIEWS`` (20,000) views of one story handed to the
    service's own ViewBatcher (group commits into the stack's PostgreSQL) from this process, by
    ``BENCH_VIEW_CONCURRENCY`` (200) concurrent writers: views/s and whether view_count is exact;
  - the celebrity: posts ``BENCH_CELEBRITY_STORIES`` (3) stories and every registered account views
    each of them, ``BENCH_VIEW_CONCURRENCY`` views in flight: first at the stories service (gRPC
    on its port), then through Envoy; views/s, whether each view_count is exact, and graph's
    FilterViewers calls per view (from graph's /metrics: how well the visibility checks batched).
With ``BENCH_PROFILE_DIR``, py-spy records the stories and graph processes during the tray at the
service and the celebrity's views at the service (raw folded stacks, one file per process and phase).
Prints one JSON line per figure, with the load average when it was measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
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
from services.common.proc_times import proc_times
from services.common.stats import percentile


def emit(**figure: object) -> None:
    figure["load_average"] = [round(x, 1) for x in os.getloadavg()]
    print(json.dumps(figure), flush=True)


PIDS: dict[str, int] = {}  # the stack's processes by name, when this bench started the stack


def cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by each process of the stack (PIDS), its descendants (PostgreSQL's
    backends) and the children it reaped included; {} without PIDS. What a call costs in CPU does not
    depend on how many others share the cores, so it is printed next to the times."""
    if not PIDS:
        return {}
    parent, used = {}, {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or (times := proc_times(int(entry.name))) is None:  # None: gone meanwhile
            continue
        parent[int(entry.name)] = times.parent
        used[int(entry.name)] = times.cpu_s + times.children_cpu_s
    names = {pid: name for name, pid in PIDS.items()}
    totals: dict[str, float] = {}
    for pid, seconds in used.items():
        ancestor = pid
        while ancestor not in names and ancestor > 1:
            ancestor = parent.get(ancestor, 1)
        if ancestor in names:
            totals[names[ancestor]] = totals.get(names[ancestor], 0.0) + seconds
    totals["bench client"] = sum(os.times()[:2])
    return totals


async def settled(limit_s: float = 120.0, busy: float = 0.25) -> float:
    """Wait until the stack uses less than `busy` of a core over a second (the work a setup left
    behind, such as the 9:16 renditions of its story photos, made in the background, is done);
    returns the seconds waited. Without PIDS (a stack this bench did not start) it cannot tell."""
    started = time.monotonic()
    while PIDS and time.monotonic() - started < limit_s:
        before = cpu_seconds()
        await asyncio.sleep(1.0)
        after = cpu_seconds()
        if sum(after[n] - before.get(n, 0.0) for n in after if n != "bench client") < busy:
            break
    return round(time.monotonic() - started, 1)


def cpu_ms_per_call(before: dict[str, float], calls: int, shown: int = 6) -> dict[str, float]:
    """CPU milliseconds per call since `before`: the `shown` busiest processes, then the rest together (the
    idle services' own polling, mostly)."""
    after = cpu_seconds()
    spent = sorted(((name, (after[name] - before.get(name, 0.0)) * 1000 / calls) for name in after),
                   key=lambda kv: -kv[1])
    figures = {name: round(ms, 2) for name, ms in spent[:shown]}
    if spent[shown:]:
        figures["the rest"] = round(sum(ms for _, ms in spent[shown:]), 2)
    return figures


def served(settings: Settings, service: str, method: str) -> float | None:
    """How many calls of `method` the service answered so far, from its /metrics (None: not exported)."""
    port = settings.metrics_ports.get(service)
    if not port:
        return None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
    except OSError:
        return None
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("grpc_server_handled_total{") and f'grpc_method="{method}"' in line)


@contextlib.contextmanager
def profiled(phase: str) -> Iterator[None]:
    """py-spy records the stories and graph processes while the block runs (BENCH_PROFILE_DIR)."""
    folder = os.environ.get("BENCH_PROFILE_DIR")
    if not folder or not PIDS:
        yield
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    spies = [subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(PIDS[name]),
                               "--format", "raw", "--rate", "200", "--nonblocking",
                               "--output", f"{folder}/{phase}-{name}.txt"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for name in ("stories", "graph") if name in PIDS]
    time.sleep(1)  # attached before the first call
    try:
        yield
    finally:
        for spy in spies:
            spy.send_signal(2)  # SIGINT: py-spy writes what it recorded
        for spy in spies:
            spy.wait(60)


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


async def write_path(settings: Settings, story_id: int, views: int, concurrency: int) -> None:
    """The group commit alone: `views` views of one story (made-up viewer ids) through the service's
    ViewBatcher into the stack's PostgreSQL, `concurrency` at a time, as ViewStory hands them over."""
    from services.common.db import Database
    from services.stories.repository import PostgresStoryRepository
    from services.stories.views import ViewBatcher

    db = Database(settings)
    await db.open()
    repo = PostgresStoryRepository(db)
    story = await repo.get(story_id)
    counted = story.view_count
    batches: list[int] = []

    class Counted:  # the repository, counting the batches
        async def add_views(self, shard: int, story_ids: list[int], viewer_ids: list[int]) -> set[tuple[int, int]]:
            batches.append(len(story_ids))
            return await repo.add_views(shard, story_ids, viewer_ids)

    batcher = ViewBatcher(Counted())
    gate = asyncio.Semaphore(concurrency)

    async def one(viewer_id: int) -> bool:
        async with gate:
            return await batcher.record(story, viewer_id)

    before = cpu_seconds()
    t = time.perf_counter()
    new = await asyncio.gather(*(one(10**15 + i) for i in range(views)))
    elapsed = time.perf_counter() - t
    after = (await repo.get(story_id)).view_count
    await batcher.close()
    await db.close()
    emit(what="view write path alone (ViewBatcher into PostgreSQL)", views=views, concurrency=concurrency,
         views_per_s=round(views / elapsed, 1), transactions=len(batches),
         mean_batch=round(sum(batches) / len(batches), 1), max_batch=max(batches),
         exact=after - counted == sum(new) == views, cpu_ms_per_view=cpu_ms_per_call(before, views))


async def run(settings: Settings, gateway_port: int, stories_port: int) -> None:
    following = env_int("BENCH_FOLLOWING", 1000)
    with_stories = env_int("BENCH_WITH_STORIES", 200)
    calls = env_int("BENCH_TRAY_CALLS", 300)
    extra = env_int("BENCH_EXTRA_STORIES", 4)
    concurrency = env_int("BENCH_VIEW_CONCURRENCY", 200)
    gateway = gateway_channel(settings, port=gateway_port)
    direct = service_channel(settings, "stories", port=stories_port)
    accounts = accounts_service_pb2_grpc.AccountsServiceStub(gateway)
    graph = graph_service_pb2_grpc.GraphServiceStub(gateway)
    media = media_service_pb2_grpc.MediaServiceStub(gateway)
    stories = stories_service_pb2_grpc.StoriesServiceStub(gateway)
    stories_direct = stories_service_pb2_grpc.StoriesServiceStub(direct)
    tag = f"{os.getpid()}{int(time.time()) % 100000}"

    def register(n: str):
        async def call():
            username = f"b{tag}_{n}"
            try:
                return await accounts.CreateAccount(accounts_pb.CreateAccountRequest(
                    username=username, email=f"{username}@example.com", password="bench-stories"), timeout=60)
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.ALREADY_EXISTS:
                    raise
                # A retry after an UNAVAILABLE whose account was made after all: sign in instead.
                return await accounts.CreateSession(accounts_pb.CreateSessionRequest(
                    username=username, password="bench-stories"), timeout=60)
        return call

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
        emit(what="settled", before=f"tray {label}", seconds=await settled())
        entries = (await stories_direct.GetTray(pb.GetTrayRequest(), metadata=auth(viewer.access_token),
                                                timeout=30)).entries
        assert len(entries) == with_stories, len(entries)
        conn = http.client.HTTPConnection("127.0.0.1", gateway_port, timeout=30)
        for where in ("service", "envoy"):
            times = []
            before = cpu_seconds()
            with profiled(f"tray-{label.replace(' ', '')}") if where == "service" else contextlib.nullcontext():
                for _ in range(calls):
                    if where == "service":
                        t = time.perf_counter()
                        await stories_direct.GetTray(pb.GetTrayRequest(), metadata=auth(viewer.access_token),
                                                     timeout=30)
                        times.append((time.perf_counter() - t) * 1000)
                    else:
                        times.append(tray_http(conn, viewer.access_token))
            emit(what=f"tray at the {where}", stories=label, following=following, with_stories=len(entries),
                 calls=calls, p50_ms=round(percentile(times, 50), 2), p99_ms=round(percentile(times, 99), 2),
                 cpu_ms_per_call=cpu_ms_per_call(before, calls))
        conn.close()

    await measure(f"{with_stories} x 1")
    if extra:
        await gather_limited(8, [lambda p=p, m=media_id: post(p, m)
                                 for p, (_, media_id) in zip(people[:with_stories], posted, strict=True)
                                 for _ in range(extra)])
        await measure(f"{with_stories} x {1 + extra}")

    await write_path(settings, posted[1][0], env_int("BENCH_WRITE_VIEWS", 20_000), concurrency)

    celebrity = people[0]
    viewers = people[1:] + [viewer]
    celebrity_stories = env_int("BENCH_CELEBRITY_STORIES", 3)
    for where, stub in (("the service", stories_direct), ("Envoy", stories)):
        story_ids = [(await post(celebrity, posted[0][1]))[0] for _ in range(celebrity_stories)]
        RETRIED["unavailable"] = 0
        checks_before = served(settings, "graph", "FilterViewers")
        before = cpu_seconds()
        with profiled(f"views-at-{where.split()[-1].lower()}"):
            t = time.perf_counter()
            await gather_limited(concurrency, [
                lambda p=p, s=s, stub=stub: stub.ViewStory(pb.ViewStoryRequest(story_id=s), metadata=auth(p.access_token),
                                                timeout=120)
                for s in story_ids for p in viewers])
            elapsed = time.perf_counter() - t
        checks = served(settings, "graph", "FilterViewers")
        counts = [(await stories.ListStoryViewers(pb.ListStoryViewersRequest(story_id=s, page_size=1),
                                                  metadata=auth(celebrity.access_token), timeout=30)).view_count
                  for s in story_ids]
        emit(what=f"celebrity views at {where}", stories=celebrity_stories, viewers=len(viewers),
             views=len(viewers) * celebrity_stories, concurrency=concurrency,
             views_per_s=round(len(viewers) * celebrity_stories / elapsed, 1), view_counts=counts,
             exact=all(c == len(viewers) for c in counts), retried_unavailable=RETRIED["unavailable"],
             # How well the visibility checks batched: graph calls per view (1.0: none shared a call).
             graph_calls_per_view=None if checks is None or checks_before is None
             else round((checks - checks_before) / (len(viewers) * celebrity_stories), 3),
             cpu_ms_per_view=cpu_ms_per_call(before, len(viewers) * celebrity_stories))
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
        PIDS.update((child.name, child.proc.pid) for child in stack.children)
        try:
            settings = stack.settings
            from services.common.registry import by_name
            asyncio.run(run(settings, settings.gateway_port, settings.service_port(by_name("stories"))))
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
