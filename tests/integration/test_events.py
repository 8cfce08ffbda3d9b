"""The Redis Streams event bus against the stack's real Redis."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from services.common.events import DEAD_LETTER, Consumer, Event, EventPublisher, Postpone, stream

# What post events carry for search's index, empty here (fields 4-8 of PostRef).
NO_INDEX_FIELDS = {"caption": "", "hashtags": [], "location_name": "", "location_lat": 0.0, "location_lng": 0.0}


@pytest.fixture
def topic() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


async def test_published_events_are_handled_once_and_acknowledged(client, topic):
    seen: list[Event] = []

    async def handle(event: Event) -> None:
        seen.append(event)

    consumer = Consumer(client, "g", [topic], handle, name="c1", block_ms=10)
    await consumer.ensure_groups()
    await EventPublisher(client).publish(topic, "post.created", post_id=7, author_id=3)
    assert await consumer.poll_once() == 1
    assert [(e.type, e.data) for e in seen] == [("post.created", {"post_id": 7, "author_id": 3, "mentions": [], **NO_INDEX_FIELDS})]
    assert (await client.xpending(stream(topic), "g"))["pending"] == 0
    assert await consumer.poll_once() == 0


async def test_a_dead_consumers_pending_message_is_reclaimed_by_another(client, topic):
    async def crash(event: Event) -> None:
        raise RuntimeError("worker died mid-way")

    handled: list[Event] = []

    async def handle(event: Event) -> None:
        handled.append(event)

    await EventPublisher(client).publish(topic, "follow", follower_id=1, target_id=2)
    dead = Consumer(client, "g", [topic], crash, name="dead", block_ms=10)
    await dead.ensure_groups()
    await dead.poll_once()
    survivor = Consumer(client, "g", [topic], handle, name="alive", block_ms=10, claim_idle_ms=0)
    await survivor.poll_once()
    assert [e.data for e in handled] == [{"follower_id": 1, "target_id": 2, "approved": False}]
    assert (await client.xpending(stream(topic), "g"))["pending"] == 0


async def test_a_message_that_keeps_failing_goes_to_the_dead_letter_stream(client, topic):
    async def always_fail(event: Event) -> None:
        raise ValueError("bad event")

    before = await client.xlen(DEAD_LETTER)
    consumer = Consumer(client, "g", [topic], always_fail, name="c", block_ms=10, claim_idle_ms=0, max_deliveries=2)
    await consumer.ensure_groups()
    message_id = await EventPublisher(client).publish(topic, "post.created", post_id=1, author_id=2)
    for _ in range(4):
        await consumer.poll_once()
    assert await client.xlen(DEAD_LETTER) == before + 1
    last = (await client.xrevrange(DEAD_LETTER, count=1))[0][1]
    assert last[b"message_id"].decode() == message_id and last[b"topic"].decode() == topic
    assert (await client.xpending(stream(topic), "g"))["pending"] == 0


@pytest.mark.parametrize("outage", [psycopg.OperationalError("the database is down"), Postpone()])
async def test_tries_during_an_outage_or_postponed_do_not_count_towards_the_dead_letter(client, topic, outage):
    handled: list[Event] = []
    tries = 0

    async def flaky(event: Event) -> None:
        nonlocal tries
        tries += 1
        if tries <= 6:  # three times max_deliveries
            raise outage
        handled.append(event)

    before = await client.xlen(DEAD_LETTER)
    consumer = Consumer(client, "g", [topic], flaky, name="c", block_ms=10, claim_idle_ms=0, max_deliveries=2)
    await consumer.ensure_groups()
    await EventPublisher(client).publish(topic, "post.created", post_id=1, author_id=2)
    for _ in range(8):
        await consumer.poll_once()
    assert [e.data["post_id"] for e in handled] == [1]
    assert await client.xlen(DEAD_LETTER) == before
    assert (await client.xpending(stream(topic), "g"))["pending"] == 0


async def test_consumer_recreates_its_group_after_redis_is_flushed(client, topic):
    import asyncio

    handled: list[Event] = []

    async def handle(event: Event) -> None:
        handled.append(event)

    consumer = Consumer(client, "g", [topic], handle, name="c", block_ms=10)
    await consumer.ensure_groups()
    await client.delete(stream(topic))  # what FLUSHALL does to the stream and its groups
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await asyncio.sleep(0.1)
    await EventPublisher(client).publish(topic, "post.updated", post_id=1, author_id=2)
    for _ in range(100):
        if handled:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await task
    assert [e.type for e in handled] == ["post.updated"]


async def test_events_in_lanes_keep_their_order_per_key_and_overlap_across_keys(client, topic):
    import asyncio

    log: list[str] = []
    running: set[int] = set()
    overlapped: list[bool] = []

    async def handle(event: Event) -> None:
        post = event.data["post_id"]
        overlapped.append(bool(running))
        running.add(post)
        log.append(f"start {post}")
        await asyncio.sleep(0.05 if post in (1, 3) else 0.01)
        log.append(f"end {post}")
        running.discard(post)

    # Key: the author; author 0 is a barrier (everything before it ends first, nothing after starts sooner).
    def lanes(event: Event):
        return None if event.data["author_id"] == 0 else {event.data["author_id"]}

    consumer = Consumer(client, "g", [topic], handle, name="c", block_ms=10, lanes=lanes, concurrency=4)
    await consumer.ensure_groups()
    publisher = EventPublisher(client)
    for post, author in ((1, 7), (2, 8), (3, 7), (4, 0), (5, 8), (6, 9)):
        await publisher.publish(topic, "post.updated", post_id=post, author_id=author)
    assert await consumer.poll_once() == 6
    at = {line: n for n, line in enumerate(log)}
    assert at["start 2"] < at["end 1"]  # another author's event did not wait for the slow one
    assert at["end 1"] < at["start 3"]  # the same author's came after it, in stream order
    assert max(at["end 1"], at["end 2"], at["end 3"]) < at["start 4"] < at["end 4"] < min(at["start 5"], at["start 6"])
    assert any(overlapped)
    assert (await client.xpending(stream(topic), "g"))["pending"] == 0


async def test_without_lanes_events_are_handled_one_at_a_time_in_order(client, topic):
    import asyncio

    log: list[int] = []

    async def handle(event: Event) -> None:
        log.append(event.data["post_id"])
        await asyncio.sleep(0.01 if event.data["post_id"] == 1 else 0)
        log.append(-event.data["post_id"])

    consumer = Consumer(client, "g", [topic], handle, name="c", block_ms=10, concurrency=4)
    await consumer.ensure_groups()
    for post in (1, 2, 3):
        await EventPublisher(client).publish(topic, "post.updated", post_id=post, author_id=post)
    assert await consumer.poll_once() == 3
    assert log == [1, -1, 2, -2, 3, -3]
