"""A real three-master Redis Cluster on loopback (services.mesh.embedded.start_redis_cluster), and the
code that differs on one: the event bus read per stream, scripts and MGETs over many slots, and the
engagement counters split in partitions (with the session stack's PostgreSQL behind them)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis
from redis.asyncio.cluster import ClusterNode
from redis.cluster import key_slot

from services.common.cluster import call_each, execute_each, mget
from services.common.config import REDIS_CLUSTER_BUS_OFFSET, store_password
from services.common.dependencies import connect_redis
from services.common.events import Consumer, Event, EventPublisher, stream
from services.engagement.counters import PARTITIONS_ON_CLUSTER, RedisCounters
from services.engagement.flusher import Flusher
from services.engagement.keys import CounterKeys
from services.engagement.repository import PostgresCountStore, PostgresEngagementRepository
from services.engagement.service import COMMENTS, LIKES, Counts
from services.mesh import embedded
from services.mesh.private_stack import free_ports

NODES = 3


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[str]:
    """The cluster's URL (any node; the clients find the others)."""
    folder = tmp_path_factory.mktemp("redis-cluster")
    ports = tuple(free_ports(NODES, also_at=(REDIS_CLUSTER_BUS_OFFSET,)))  # each node's bus too
    children = embedded.start_redis_cluster(folder, ports, folder)
    try:
        yield f"redis://:{store_password(folder, 'redis')}@127.0.0.1:{ports[0]}/0?cluster=yes"
    finally:
        for child in children:
            child.stop()


@pytest.fixture
async def client(cluster):
    c = connect_redis(cluster)
    await c.initialize()  # the slots' nodes, for get_node_from_key before any command
    yield c
    await c.aclose()


def test_the_cluster_forms_with_every_slot_served_and_comes_back_whole_after_a_restart(tmp_path) -> None:
    ports = tuple(free_ports(NODES, also_at=(REDIS_CLUSTER_BUS_OFFSET,)))  # each node's bus too
    password = store_password(tmp_path, "redis")

    def slot_map() -> list[tuple[int, int, int]]:
        node = redis.Redis(port=ports[1], password=password)
        try:
            info = node.execute_command("CLUSTER", "INFO").decode()
            assert "cluster_state:ok" in info and "cluster_slots_assigned:16384" in info
            return sorted((first, last, found[0][1]) for first, last, *found in node.execute_command("CLUSTER", "SLOTS"))
        finally:
            node.close()

    children = embedded.start_redis_cluster(tmp_path, ports, tmp_path)
    try:
        formed = slot_map()
    finally:
        for child in children:
            child.stop()
    assert [port for *_, port in formed] == list(ports)  # an even share each, in port order
    children = embedded.start_redis_cluster(tmp_path, ports, tmp_path)
    try:
        assert slot_map() == formed
    finally:
        for child in children:
            child.stop()


async def test_a_consumer_reads_each_topics_stream_on_its_own_node(client) -> None:
    topics = [f"cl-{n}-{uuid.uuid4().hex[:6]}" for n in range(6)]
    nodes = {client.get_node_from_key(stream(t)).port for t in topics}
    assert len(nodes) > 1, "the streams should spread over the nodes"  # one XREADGROUP could not read them
    seen: list[tuple[str, int]] = []

    async def handle(event: Event) -> None:
        seen.append((event.topic, event.data["post_id"]))

    consumer = Consumer(client, "g", topics, handle, name="c1", block_ms=50)
    stop = asyncio.Event()
    running = asyncio.create_task(consumer.run(stop))
    publisher = EventPublisher(client)
    for n, topic in enumerate(topics):
        await publisher.publish(topic, "post.created", post_id=n, author_id=1)
    async with asyncio.timeout(10):
        while len(seen) < len(topics):
            await asyncio.sleep(0.02)
    stop.set()
    await running
    assert sorted(seen) == sorted((t, n) for n, t in enumerate(topics))
    assert not consumer._reads  # no read left waiting once it stopped
    for topic in topics:
        assert (await client.xpending(stream(topic), "g"))["pending"] == 0


async def test_scripts_and_commands_over_many_slots_answer_in_the_callers_order(client) -> None:
    keys = [f"cl:{uuid.uuid4().hex}" for _ in range(40)]
    assert len({key_slot(k.encode()) for k in keys}) > 1
    script = client.register_script("redis.call('SET', KEYS[1], ARGV[1]) return ARGV[1] * 2")
    assert await call_each(client, script, [([k], [n]) for n, k in enumerate(keys)]) == [2 * n for n in range(40)]
    assert await mget(client, keys) == [str(n).encode() for n in range(40)]
    # PFCOUNT, which a cluster's pipeline refuses: over one tag's keys at once, and one key each.
    tags = [uuid.uuid4().hex for _ in range(10)]
    for n, tag in enumerate(tags):
        await client.pfadd(f"cl:{{{tag}}}:a", *range(n))
        await client.pfadd(f"cl:{{{tag}}}:b", *range(n, 2 * n))
    assert await execute_each(client, [("PFCOUNT", f"cl:{{{tag}}}:a", f"cl:{{{tag}}}:b") for tag in tags]
                              + [("PFCOUNT", f"cl:{{{tag}}}:a") for tag in tags]) == [2 * n for n in range(10)] + list(range(10))


async def test_counters_split_in_partitions_count_and_flush_exactly(client, db, ids, settings) -> None:
    store = PostgresCountStore(db)
    counters = RedisCounters(client, store.counts, CounterKeys(f"test-{uuid.uuid4().hex[:8]}"))
    assert len(counters.partitions) == PARTITIONS_ON_CLUSTER
    # An id's low bits count within its millisecond, so ids drawn across a millisecond's turn can
    # share a few partitions: draw until they spread over more than four.
    posts: list[int] = []
    while len(posts) < 40 or len({counters.partition_of(p) for p in posts}) <= 4:
        posts.append(ids.new_id(len(posts) % settings.logical_shards))
    for n, post in enumerate(posts):
        for _ in range(n % 3 + 1):
            await counters.add(post, LIKES, +1)
        await counters.add(post, COMMENTS, +n)
    expected = {post: Counts(n % 3 + 1, n) for n, post in enumerate(posts)}
    assert await counters.current(posts, await store.counts(posts)) == expected
    flusher = Flusher(counters, store, logical_shards=settings.logical_shards)
    while await flusher.flush_once():
        pass
    assert (await PostgresEngagementRepository(db).counts(posts))[0] == expected
    assert await counters.current(posts) == expected  # from pc: now, every shard drained
    assert not await counters.drain(1000)


async def test_a_command_whose_connection_closed_under_it_is_tried_again(client, monkeypatch) -> None:
    # redis-py 8.1 lets that race out of asyncio's writer as AttributeError (redis/redis-py#4287).
    key = f"cl:{uuid.uuid4().hex}"
    await client.set(key, "1")
    real, failed = ClusterNode.execute_command, []

    async def closed_once(self, *args, **kwargs):
        if not failed:
            failed.append(args)
            raise AttributeError("'NoneType' object has no attribute 'writelines'")
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(ClusterNode, "execute_command", closed_once)
    assert await client.get(key) == b"1"
    assert failed


async def test_a_connection_the_server_closed_fails_only_the_command_that_was_on_it(cluster, client, monkeypatch) -> None:
    # On a connection error, redis-py 8.1 closed the node's idle connections while other commands were
    # taking them up: each of those failed too (as AttributeError, redis/redis-py#4287), and under load
    # some twice, past the one retry. Here forty callers keep one node busy while the server closes a
    # few of its connections, three times over.
    key = f"cl:{uuid.uuid4().hex}"
    await client.set(key, "1")
    failed: list[BaseException] = []
    real = ClusterNode.execute_command

    async def counted(self, *args, **kwargs):
        try:
            return await real(self, *args, **kwargs)
        except Exception as error:
            failed.append(error)
            raise

    monkeypatch.setattr(ClusterNode, "execute_command", counted)
    node = client.get_node_from_key(key)
    admin = redis.Redis(host=node.host, port=node.port, password=urlsplit(cluster).password)
    answers: list[object] = []
    closed = 0

    async def caller() -> None:
        for _ in range(30):
            answers.append(await client.get(key))

    async def closer(victims: list[str]) -> None:
        nonlocal closed
        for victim in victims:
            await asyncio.sleep(0.005)
            closed += admin.client_kill_filter(_id=victim)

    try:
        for _ in range(3):
            await asyncio.gather(*(client.get(key) for _ in range(60)))  # the node's connections, idle now
            ours = [c["id"] for c in admin.client_list() if c["id"] != str(admin.client_id())]
            await asyncio.gather(*(caller() for _ in range(40)), closer(ours[::6]))
    finally:
        admin.close()
    assert answers == [b"1"] * 3600
    assert not [e for e in failed if not isinstance(e, redis.exceptions.ConnectionError)], failed
    assert 0 < len(failed) <= closed  # one command a connection closed, at most
