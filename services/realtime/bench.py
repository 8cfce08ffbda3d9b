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
"""

from __future__ import annotations

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
import redis.asyncio as aioredis
from pictor.realtime.v1 import realtime_service_pb2 as pb
from pictor.realtime.v1 import realtime_service_pb2_grpc

from services.common.auth import TokenSigner
from services.common.config import Settings, env_int, load_settings
from services.common.events import envelope, fields, stream
from services.common.ids import IdAllocator
from services.common.mesh_tls import gateway_channel
from services.common.stats import percentile

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

    async def open(self, count: int) -> None:
        for n in range(count):
            if n % STREAMS_PER_CHANNEL == 0:
                # A connection of its own (not the process-wide shared one), as separate clients have.
                self.channels.append(gateway_channel(self.settings, options=[("grpc.use_local_subchannel_pool", 1)]))
            user_id = self.ids.new_id_in_random_shard()
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

    bus = aioredis.from_url(settings.redis_url)
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


def main() -> None:
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
