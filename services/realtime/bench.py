"""The live stream under load: ``python -m services.realtime.bench`` (``make bench-realtime``).

Starts a private stack (its own data folder and free ports; realtime's defaults:
a heartbeat every 15 s), then, as gRPC clients of the gateway (Envoy), opens
``BENCH_IDLE_STREAMS`` Subscribe streams of as many users and measures:
  - memory: the realtime process's RSS before and with the streams open, per stream;
  - delivery: with them open, ``BENCH_EVENTS`` notification.changed events are put
    on the bus (topic "notifications", as the relay puts them) at ``BENCH_RATE`` per
    second for users among the first ``BENCH_STREAMS`` streams; each is timed from
    its occurred_at (set when published) to its arrival on the user's stream:
    bus → dispatch worker → replay buffer → pub/sub → stream → Envoy → client.
Prints one JSON line per figure.

``python -m services.realtime.bench --likes`` measures real likes instead, against a running,
seeded stack (``make seed``, then ``make run`` with the write limits raised, and the Locust mix
running beside it: ``make loadtest``): ``BENCH_STREAMS`` (1,000) streams open through Envoy,
``BENCH_AUTHORS`` (50) of them seeded public accounts that each post a photo first; then
``BENCH_LIKES`` (300) times, at ``BENCH_LIKE_RATE`` (5) a second, a seeded account that has not
liked it likes an author's new post through the gateway (JSON), timed from the request until the
author's stream brings the notification: like → engagement's outbox → relay → notifier →
notifications' outbox → relay → dispatch → stream → Envoy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import grpc
import psutil
import psycopg
from pictor.realtime.v1 import realtime_service_pb2 as pb
from pictor.realtime.v1 import realtime_service_pb2_grpc

from services.common.auth import TokenSigner
from services.common.config import Settings, env_int, load_settings
from services.common.db import shard_schema
from services.common.dependencies import async_redis
from services.common.events import decode, envelope, fields, stream
from services.common.ids import IdAllocator
from services.common.mesh_tls import gateway_channel
from services.common.stats import percentile
from services.mesh.relay_bench import Gateway, jpeg

# Streams per client connection. Real clients hold one each; many on one connection let Envoy's
# queue of frames for a client that reads slowly (one Python process reading thousands of streams)
# pass its flood limit (10,000 frames), and Envoy then closes the connection with all its streams.
STREAMS_PER_CHANNEL = 25


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


class Streams:
    """Subscribe streams of many users, each read by a task that records when events arrive."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ids = IdAllocator(settings.logical_shards)
        self.signer = TokenSigner.from_files(settings.jwt_private_key_file, settings.jwt_issuer, 3600)
        self.channels: list[grpc.aio.Channel] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.ready = 0
        self.open_rate = env_int("BENCH_OPEN_RATE", 200)
        # status code -> streams that ended with it
        self.failed: dict[str, int] = {}
        self.users: list[int] = []
        # event group_key -> arrival time (time.time())
        self.arrivals: dict[str, float] = {}
        # user id -> when notification events came on their stream (time.time()), with their actors' ids
        self.notified: dict[int, list[tuple[float, set[str]]]] = {}

    async def open(self, count: int, users: list[int] = ()) -> None:
        """`count` streams: of `users` first, then of made-up ids (a token is all a stream asks for)."""
        for n in range(count):
            if n % STREAMS_PER_CHANNEL == 0:
                # A connection of its own (not the process-wide shared one), as separate clients have.
                self.channels.append(gateway_channel(self.settings, options=[("grpc.use_local_subchannel_pool", 1)]))
            user_id = users[n] if n < len(users) else self.ids.new_id_in_random_shard()
            self.users.append(user_id)
            stub = realtime_service_pb2_grpc.RealtimeServiceStub(self.channels[-1])
            self.tasks.append(asyncio.create_task(self._read(stub, user_id)))
            if n % 50 == 49:
                await asyncio.sleep(50 / self.open_rate)  # a steady ramp

    async def _read(self, stub: realtime_service_pb2_grpc.RealtimeServiceStub, user_id: int) -> None:
        metadata = [("authorization", f"Bearer {self.signer.sign(user_id)}")]
        first = True
        try:
            async for event in stub.Subscribe(pb.SubscribeRequest(), metadata=metadata):
                if first:
                    self.ready += 1
                    first = False
                if event.type == "notification":
                    self.arrivals[event.notification.group_key] = time.time()
                    actors = event.notification.group.fields["actors"].list_value.values
                    self.notified.setdefault(user_id, []).append(
                        (time.time(), {a.struct_value.fields["id"].string_value for a in actors}))
        except grpc.aio.AioRpcError as error:
            self.failed[error.code().name] = self.failed.get(error.code().name, 0) + 1

    async def wait_ready(self, count: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.ready + sum(self.failed.values()) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.5)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for channel in self.channels:
            await channel.close()


async def run(settings: Settings, pid: int) -> None:
    idle_streams = env_int("BENCH_IDLE_STREAMS", 5000)
    active_streams = min(idle_streams, env_int("BENCH_STREAMS", 1000))
    events = env_int("BENCH_EVENTS", 2000)
    rate = env_int("BENCH_RATE", 200)
    await asyncio.sleep(2)
    before = rss_mb(pid)
    streams = Streams(settings)
    began = time.monotonic()
    await streams.open(idle_streams)
    # A stream's first message is a heartbeat, sent once it is set up.
    await streams.wait_ready(idle_streams, timeout_s=idle_streams / streams.open_rate + 60)
    opened_s = time.monotonic() - began
    await asyncio.sleep(3)
    with_streams = rss_mb(pid)
    print(json.dumps({"op": "realtime.idle_streams", "streams": idle_streams, "ready": streams.ready,
                      "failed": streams.failed, "open_rate_per_s": streams.open_rate,
                      "open_s": round(opened_s, 1), "rss_before_mb": round(before, 1),
                      "rss_with_streams_mb": round(with_streams, 1),
                      "kb_per_stream": round((with_streams - before) * 1024 / max(1, streams.ready), 1)}), flush=True)

    bus = async_redis(settings.redis_url)
    sent: dict[str, float] = {}
    targets = streams.users[:active_streams]
    for n in range(events):
        user_id = random.choice(targets)
        key = f"bench:{n}"
        occurred = time.time()
        message = envelope("notification.changed", {"user_id": user_id, "group_key": key,
                                                     "group_json": json.dumps({"group_key": key}), "unread_count": n},
                           occurred_at=occurred)
        await bus.xadd(stream("notifications"), fields(message.SerializeToString(), message.type))
        sent[key] = occurred
        await asyncio.sleep(max(0.0, occurred + 1 / rate - time.time()))
    deadline = time.monotonic() + 10
    while len(streams.arrivals) < len(sent) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    latencies = [(streams.arrivals[k] - t) * 1000 for k, t in sent.items() if k in streams.arrivals]
    print(json.dumps({"op": "realtime.delivery", "streams": idle_streams, "targets": active_streams,
                      "events": events, "rate_per_s": rate, "received": len(latencies),
                      "p50_ms": round(statistics.median(latencies), 1),
                      "p90_ms": round(percentile(latencies, 90), 1), "p99_ms": round(percentile(latencies, 99), 1),
                      "max_ms": round(max(latencies), 1), "rss_mb": round(rss_mb(pid), 1)}), flush=True)
    await bus.aclose()
    await streams.close()


def seeded_accounts(settings: Settings, authors: int, fans: int) -> tuple[list[int], list[int]]:
    """Public, active seeded accounts to post (`authors`), and others to like (`fans`), from every shard."""
    with psycopg.connect(settings.database_url) as conn:
        rows = []
        for shard in range(settings.logical_shards):
            rows += conn.execute(f"SELECT id, is_private FROM {shard_schema(shard)}.users "
                                 "WHERE suspended_at IS NULL ORDER BY random() LIMIT %s",
                                 ((authors + fans) // settings.logical_shards + authors,)).fetchall()
    random.shuffle(rows)
    chosen = [user_id for user_id, private in rows if not private][:authors]
    others = [user_id for user_id, _ in rows if user_id not in set(chosen)][:fans]
    if len(chosen) < authors or len(others) < fans:
        raise SystemExit(f"the stack has too few accounts: seed it first (make seed); {len(rows)} found")
    return chosen, others


async def likes(settings: Settings) -> None:
    count, authors_n = env_int("BENCH_STREAMS", 1000), env_int("BENCH_AUTHORS", 50)
    samples, rate = env_int("BENCH_LIKES", 300), env_int("BENCH_LIKE_RATE", 5)
    authors, fans = seeded_accounts(settings, authors_n, samples)
    streams = Streams(settings)
    gw = Gateway(settings.gateway_port)
    image = jpeg()
    posts = {}
    for n, author in enumerate(authors):
        token = streams.signer.sign(author)
        media = gw.call("POST", "/v1/media", token, raw=image, content_type="image/jpeg")["id"]
        posts[author] = gw.call("POST", "/v1/posts", token, body={"media_ids": [media], "caption": "bench"})["id"]
        print(f"\rposted {n + 1}/{len(authors)}", end="", flush=True)
    print(flush=True)
    began = time.monotonic()
    await streams.open(count, authors)
    await streams.wait_ready(count, timeout_s=count / streams.open_rate + 60)
    print(json.dumps({"op": "realtime.likes.streams", "streams": count, "ready": streams.ready,
                      "failed": streams.failed, "open_s": round(time.monotonic() - began, 1)}), flush=True)
    await asyncio.sleep(5)  # the posts' own events (fan-out, search) pass first
    sent: list[tuple[int, int, float]] = []
    errors: dict[str, int] = {}
    started = time.monotonic()
    for n, fan in enumerate(fans):
        author = authors[n % len(authors)]
        at = time.time()
        try:
            await asyncio.to_thread(gw.call, "POST", f"/v1/posts/{posts[author]}/like", streams.signer.sign(fan))
            sent.append((author, fan, at))
        except Exception as error:  # noqa: BLE001 - counted and shown, the run goes on
            name = type(error).__name__
            errors[name] = errors.get(name, 0) + 1
        if n % 20 == 19:
            left = (len(fans) - n - 1) / rate
            print(f"\rliked {n + 1}/{len(fans)}, about {left:.0f} s left", end="", flush=True)
        await asyncio.sleep(max(0.0, started + (n + 1) / rate - time.monotonic()))
    print(flush=True)
    await asyncio.sleep(5)

    def delivered(author: int, fan: int, at: float) -> float | None:
        """When the author's stream first showed the fan among the group's actors (the Locust mix's
        own likes of the same post notify the author too)."""
        seen = [t for t, actors in streams.notified.get(author, []) if t >= at and str(fan) in actors]
        return (min(seen) - at) * 1000 if seen else None

    latencies = [ms for author, fan, at in sent if (ms := delivered(author, fan, at)) is not None]
    print(json.dumps({"op": "realtime.like_to_stream", "streams": streams.ready, "likes": len(sent),
                      "rate_per_s": rate, "received": len(latencies), "like_errors": errors, **spread(latencies),
                      "goal": "p99 <= 500 ms", "load_average": [round(x, 1) for x in os.getloadavg()]}), flush=True)
    await streams.close()
    # Where the time went, after the fact: a Redis stream entry's id is the millisecond it was added.
    bus = async_redis(settings.redis_url)
    since = f"{int(min(at for _, _, at in sent) * 1000)}-0"
    liked: dict[tuple[int, int], float] = {}
    for message_id, raw in await bus.xrange(stream("engagement"), min=since):
        event = decode("engagement", message_id, raw)
        if event.type == "like":
            liked.setdefault((event.data.get("post_id"), event.data.get("user_id")), entry_ms(message_id))
    changed: dict[tuple[int, str], float] = {}
    for message_id, raw in await bus.xrange(stream("notifications"), min=since):
        event = decode("notifications", message_id, raw)
        if event.type == "notification.changed" and event.data.get("group_json"):
            for actor in json.loads(event.data["group_json"]).get("actors", []):
                changed.setdefault((event.data.get("user_id"), str(actor.get("id"))), entry_ms(message_id))
    await bus.aclose()
    hops: dict[str, list[float]] = {"like -> engagement event": [], "engagement event -> notifications event": [],
                                    "notifications event -> stream": []}
    for author, fan, at in sent:
        relayed, notified = liked.get((int(posts[author]), fan)), changed.get((author, str(fan)))
        seen = delivered(author, fan, at)
        if relayed is None or notified is None or seen is None:
            continue
        hops["like -> engagement event"].append(relayed - at * 1000)
        hops["engagement event -> notifications event"].append(notified - relayed)
        hops["notifications event -> stream"].append(at * 1000 + seen - notified)
    for hop, times in hops.items():
        print(json.dumps({"op": "realtime.like_to_stream.hop", "hop": hop, "samples": len(times), **spread(times)}),
              flush=True)


def entry_ms(message_id: bytes | str) -> float:
    return float((message_id.decode() if isinstance(message_id, bytes) else message_id).split("-")[0])


def spread(times: list[float]) -> dict[str, float]:
    if not times:
        return {}
    return {"p50_ms": round(statistics.median(times), 1), "p90_ms": round(percentile(times, 90), 1),
            "p99_ms": round(percentile(times, 99), 1), "max_ms": round(max(times), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--likes", action="store_true",
                        help="real likes to authors' open streams, against a running seeded stack")
    if parser.parse_args().likes:
        asyncio.run(likes(load_settings()))
        return
    from services.mesh.launcher import Stack
    from services.mesh.private_stack import private_environment

    with tempfile.TemporaryDirectory(prefix="pictor-bench-realtime-") as data_dir:
        for name in ("PICTOR_DATABASE_URL", "PICTOR_REDIS_URL", "PICTOR_SHARD_MAP"):
            os.environ.pop(name, None)
        os.environ.update(private_environment(Path(data_dir)))
        stack = Stack(load_settings())
        print(f"bench-realtime: starting a private stack in {data_dir}", flush=True)
        stack.start()
        try:
            asyncio.run(run(stack.settings, stack.child("realtime").proc.pid))
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
