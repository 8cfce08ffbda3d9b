"""Direct messages under load: ``python -m services.messaging.bench`` (``make bench-messaging``).

Starts a private stack (its own data folder and free ports), then, as gRPC clients of the gateway:
  - delivery: opens ``BENCH_STREAMS`` Subscribe streams (idle users, plus the recipients of the
    ``BENCH_PAIRS`` one-to-one conversations of registered users), then sends ``BENCH_MESSAGES``
    messages at ``BENCH_RATE`` per second, each timed from just before SendMessage to its arrival
    on the recipient's stream: messaging (outbox) → relay → dispatch worker → replay buffer →
    pub/sub → realtime → Envoy → client;
  - listing: one conversation of ``BENCH_LONG`` (100,000) messages and one of 10 (rows written
    straight into the conversation's shard, with time-ordered ids as the service makes them), then
    ``BENCH_LIST_SAMPLES`` GET .../messages pages of ten of each through Envoy (JSON): the first
    page and a page from the middle (by its page token).
Prints one JSON line per figure.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import grpc
import psycopg
from pictor.accounts.v1 import accounts_service_pb2 as accounts_pb
from pictor.accounts.v1 import accounts_service_pb2_grpc
from pictor.messaging.v1 import messaging_service_pb2 as pb
from pictor.messaging.v1 import messaging_service_pb2_grpc
from pictor.realtime.v1 import realtime_service_pb2 as realtime_pb
from pictor.realtime.v1 import realtime_service_pb2_grpc

from services.common.config import Settings, env_int, load_settings
from services.common.db import shard_schema
from services.common.ids import IdAllocator, shard_of
from services.common.mesh_tls import gateway_channel
from services.common.pagination import encode_token
from services.common.stats import percentile
from services.realtime.bench import STREAMS_PER_CHANNEL, Streams


def summary(op: str, values_ms: list[float], **extra: object) -> str:
    return json.dumps({"op": op, **extra, "samples": len(values_ms), "p50_ms": round(statistics.median(values_ms), 1),
                       "p90_ms": round(percentile(values_ms, 90), 1), "p99_ms": round(percentile(values_ms, 99), 1),
                       "max_ms": round(max(values_ms), 1)})


async def register(channel: grpc.aio.Channel, count: int) -> list[tuple[int, str]]:
    """(user id, access token) of `count` new accounts."""
    stub = accounts_service_pb2_grpc.AccountsServiceStub(channel)
    users = []
    for _ in range(count):
        name = f"b{uuid.uuid4().hex[:12]}"
        session = await stub.CreateAccount(accounts_pb.CreateAccountRequest(
            username=name, email=f"{name}@example.com", password="bench password"), timeout=60)
        users.append((session.user.id, session.access_token))
    return users


def auth(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


class Recipients:
    """The recipients' streams: when each message (by client id) arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.ready = 0
        self.tasks: list[asyncio.Task[None]] = []

    def open(self, channel: grpc.aio.Channel, token: str) -> None:
        self.tasks.append(asyncio.create_task(self._read(channel, token)))

    async def _read(self, channel: grpc.aio.Channel, token: str) -> None:
        stub = realtime_service_pb2_grpc.RealtimeServiceStub(channel)
        first = True
        async for event in stub.Subscribe(realtime_pb.SubscribeRequest(), metadata=auth(token)):
            if first:
                self.ready, first = self.ready + 1, False
            if event.type == "message":
                self.arrivals[event.messaging.data.fields["client_message_id"].string_value] = time.time()

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def delivery(settings: Settings, gateway: grpc.aio.Channel) -> None:
    idle = env_int("BENCH_STREAMS", 1000)
    pairs, messages, rate = env_int("BENCH_PAIRS", 20), env_int("BENCH_MESSAGES", 1000), env_int("BENCH_RATE", 50)
    users = await register(gateway, 2 * pairs)
    messaging = messaging_service_pb2_grpc.MessagingServiceStub(gateway)
    conversations = []
    for (sender, token), (recipient, _) in zip(users[::2], users[1::2], strict=True):
        made = await messaging.CreateConversation(pb.CreateConversationRequest(member_ids=[recipient]),
                                                  metadata=auth(token), timeout=30)
        conversations.append((made.id, token))
    idle_streams = Streams(settings)
    await idle_streams.open(idle)
    await idle_streams.wait_ready(idle, timeout_s=idle / idle_streams.open_rate + 60)
    recipients = Recipients()
    channels = []
    for n, (_, token) in enumerate(users[1::2]):
        if n % STREAMS_PER_CHANNEL == 0:
            channels.append(gateway_channel(settings, options=[("grpc.use_local_subchannel_pool", 1)]))
        recipients.open(channels[-1], token)
    while recipients.ready < pairs:
        await asyncio.sleep(0.2)
    open_streams = idle_streams.ready + recipients.ready
    sent: dict[str, float] = {}
    acked: list[float] = []

    async def send(n: int) -> None:
        conversation_id, token = conversations[n % pairs]
        key = f"bench-{n}"
        started = time.time()
        sent[key] = started
        await messaging.SendMessage(pb.SendMessageRequest(conversation_id=conversation_id, client_message_id=key,
                                                          text=f"message {n}"), metadata=auth(token), timeout=30)
        acked.append((time.time() - started) * 1000)

    tasks, began = [], time.time()
    for n in range(messages):
        tasks.append(asyncio.create_task(send(n)))
        await asyncio.sleep(max(0.0, began + (n + 1) / rate - time.time()))
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    failed: dict[str, int] = {}
    for outcome in outcomes:
        if isinstance(outcome, grpc.aio.AioRpcError):
            failed[outcome.code().name] = failed.get(outcome.code().name, 0) + 1
    deadline = time.monotonic() + 15
    while len(recipients.arrivals) < len(sent) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    latencies = [(recipients.arrivals[k] - t) * 1000 for k, t in sent.items() if k in recipients.arrivals]
    print(summary("messaging.send_acknowledged", acked, rate_per_s=rate, failed=failed), flush=True)
    print(summary("messaging.send_to_stream", latencies, streams_open=open_streams,
                  streams_failed=idle_streams.failed, messages=messages, received=len(latencies), rate_per_s=rate),
          flush=True)
    await recipients.close()
    await idle_streams.close()
    for channel in channels:
        await channel.close()


def fill(settings: Settings, conversation_id: int, sender_id: int, count: int) -> int:
    """`count` text messages in the conversation's shard, ids time-ordered as the service makes them;
    the id of the middle one."""
    ids = IdAllocator(settings.logical_shards)
    shard = shard_of(conversation_id)
    s = shard_schema(shard)
    with psycopg.connect(settings.database_for_shard(shard)) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY {s}.messages (conversation_id, id, sender_id, client_message_id, kind, text) "
                      "FROM STDIN") as copy:
            middle = 0
            for n in range(count):
                message_id = ids.new_id(shard)
                middle = message_id if n == count // 2 else middle
                copy.write_row((conversation_id, message_id, sender_id, f"fill-{n}", "TEXT", f"message {n}"))
        cur.execute(f"UPDATE {s}.conversations SET last_message_id = (SELECT max(id) FROM {s}.messages "
                    "WHERE conversation_id = %s) WHERE id = %s", (conversation_id, conversation_id))
        cur.execute(f"ANALYZE {s}.messages")
    return middle


def get(port: int, path: str, token: str) -> tuple[float, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    started = time.perf_counter()
    conn.request("GET", path, headers={"authorization": f"Bearer {token}"})
    response = conn.getresponse()
    body = json.loads(response.read())
    elapsed = (time.perf_counter() - started) * 1000
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status} {body}")
    return elapsed, body


async def listing(settings: Settings, gateway: grpc.aio.Channel) -> None:
    long_count, samples = env_int("BENCH_LONG", 100_000), env_int("BENCH_LIST_SAMPLES", 200)
    (alice, token), (bob, _), (carol, _) = await register(gateway, 3)
    messaging = messaging_service_pb2_grpc.MessagingServiceStub(gateway)
    for other, count in ((bob, long_count), (carol, 10)):
        made = await messaging.CreateConversation(pb.CreateConversationRequest(member_ids=[other]),
                                                  metadata=auth(token), timeout=30)
        began = time.monotonic()
        middle = await asyncio.to_thread(fill, settings, made.id, alice, count)
        # Pages of ten from both, so that the two differ only in the conversation's length.
        path = f"/v1/conversations/{made.id}/messages?page_size=10"
        # The page a reader reaches after scrolling back through half of it (the token names where it is).
        deep_token = encode_token(f"messages:{made.id}", b=middle)
        first = [get(settings.gateway_port, path, token)[0] for _ in range(samples)]
        print(summary("messaging.list_first_page", first, messages=count,
                      filled_s=round(time.monotonic() - began, 1)), flush=True)
        if count > 60:
            deep = [get(settings.gateway_port, f"{path}&page_token={deep_token}", token)[0] for _ in range(samples)]
            print(summary("messaging.list_middle_page", deep, messages=count), flush=True)


async def run(settings: Settings) -> None:
    gateway = gateway_channel(settings)
    try:
        if os.environ.get("BENCH_PART", "all") in ("all", "delivery"):
            await delivery(settings, gateway)
        if os.environ.get("BENCH_PART", "all") in ("all", "list"):
            await listing(settings, gateway)
    finally:
        await gateway.close()


def main() -> None:
    from services.mesh.launcher import Stack
    from services.mesh.private_stack import private_environment

    with tempfile.TemporaryDirectory(prefix="pictor-bench-messaging-") as data_dir:
        for name in ("PICTOR_DATABASE_URL", "PICTOR_REDIS_URL", "PICTOR_SHARD_MAP"):
            os.environ.pop(name, None)
        os.environ.update(private_environment(Path(data_dir)))
        stack = Stack(load_settings())
        print(f"bench-messaging: starting a private stack in {data_dir}", flush=True)
        stack.start()
        try:
            asyncio.run(run(stack.settings))
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
