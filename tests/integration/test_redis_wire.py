"""services.common.redis_wire against the stack's Redis: redis-py's answers and errors, pipelines of
concurrent callers kept apart on one connection, timeouts, cancellations and lost connections. On a
Redis Cluster (PICTOR_REDIS_NODES) there is no WireRedis: the feed keeps redis-py."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.exceptions

from services.common.cluster import is_cluster
from services.common.dependencies import connect_redis, split_cluster_url
from services.common.redis_wire import wire_for

SCRIPT = "return {KEYS[1], tonumber(ARGV[1]) + 1, redis.call('MGET', KEYS[1], KEYS[2]), false}"


@pytest.fixture
async def clients(settings):
    client = connect_redis(settings.redis_url)
    wire = wire_for(client)
    if wire is None:
        assert is_cluster(client)
        await client.aclose()
        pytest.skip("no WireRedis on a Redis Cluster")
    yield client, wire
    await wire.aclose()
    await client.aclose()


def keys(n: int) -> list[str]:
    tag = uuid.uuid4().hex
    return [f"test-wire:{tag}:{i}" for i in range(n)]


async def test_there_is_none_on_a_cluster_and_one_on_one_server(settings):
    client = connect_redis(settings.redis_url)
    try:
        assert (wire_for(client) is None) == is_cluster(client)
    finally:
        await client.aclose()


async def test_a_pipeline_answers_as_redis_pys(clients):
    client, wire = clients
    k = keys(3)
    await client.set(k[0], b"\x00bytes\xff")
    await client.hset(k[2], mapping={"a": "1", "b": "two"})

    def queue(pipe):
        pipe.mget(k[:2])
        pipe.mget(k[0], k[1])
        pipe.hmget(k[2], ["a", "missing", "b"])
        pipe.eval(SCRIPT, 2, k[0], k[1], 41)

    async with client.pipeline(transaction=False) as pipe:
        queue(pipe)
        expected = await pipe.execute()
    async with wire.pipeline() as pipe:
        queue(pipe)
        assert await pipe.execute() == expected
    assert expected[3] == [k[0].encode(), 42, [b"\x00bytes\xff", None], None]


async def test_an_error_reply_raises_as_redis_py_raises_it_and_the_connection_stays_in_step(clients):
    client, wire = clients
    k = keys(2)
    await client.set(k[0], "1")
    await client.set(k[1], "a string")
    async with wire.pipeline() as pipe:
        pipe.mget(k[0])
        pipe.hmget(k[1], ["f"])  # WRONGTYPE
        with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
            await pipe.execute()
    with pytest.raises(redis.exceptions.NoScriptError):
        await wire.execute([("EVALSHA", "0" * 40, 0)])
    assert await wire.execute([("MGET", k[0])]) == [[b"1"]]  # the next answer is its own


async def test_concurrent_callers_each_get_their_own_answers(clients):
    client, wire = clients
    k = keys(200)
    await client.mset({key: str(i) for i, key in enumerate(k)})

    async def read(i: int) -> list:
        async with wire.pipeline() as pipe:
            pipe.mget([k[i]])
            pipe.mget([k[(i + 1) % len(k)], k[i]])
            return await pipe.execute()

    answers = await asyncio.gather(*(read(i) for i in range(len(k))))
    assert answers == [[[str(i).encode()], [str((i + 1) % len(k)).encode(), str(i).encode()]] for i in range(len(k))]


async def test_a_caller_that_stops_waiting_leaves_the_others_their_answers(clients):
    client, wire = clients
    k = keys(50)
    await client.mset({key: str(i) for i, key in enumerate(k)})
    tasks = [asyncio.create_task(wire.execute([("MGET", key)])) for key in k]
    await asyncio.sleep(0)
    for task in tasks[::3]:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for i, result in enumerate(results):
        if i % 3 == 0:
            assert isinstance(result, asyncio.CancelledError) or result == [[str(i).encode()]]
        else:
            assert result == [[str(i).encode()]]
    assert await wire.execute([("MGET", k[7])]) == [[b"7"]]


async def test_a_reply_that_does_not_come_in_time_is_a_timeout_and_the_next_call_is_answered(clients, monkeypatch):
    client, wire = clients
    k = keys(1)
    await client.set(k[0], "v")
    monkeypatch.setattr(wire, "timeout_s", 0.2)
    waiting = asyncio.create_task(wire.execute([("MGET", k[0])]))
    with pytest.raises(redis.exceptions.TimeoutError):
        await wire.execute([("BLPOP", f"{k[0]}:empty", 1)])  # answers after 1 s
    # A call that shared the connection either had its answer or fails with it; none gets another's.
    assert await asyncio.gather(waiting, return_exceptions=True) in ([[[b"v"]]], [waiting.exception()])
    assert await wire.execute([("MGET", k[0])]) == [[b"v"]]


async def test_a_connection_the_server_closed_is_opened_again_for_the_next_call(clients):
    client, wire = clients
    k = keys(1)
    await client.set(k[0], "v")
    assert await wire.execute([("MGET", k[0])]) == [[b"v"]]
    (me,) = await wire.execute([("CLIENT", "ID")])
    assert await client.client_kill_filter(_id=me) == 1
    await asyncio.sleep(0.05)
    assert await wire.execute([("MGET", k[0])]) == [[b"v"]]
    (again,) = await wire.execute([("CLIENT", "ID")])
    assert again != me


async def test_a_wrong_password_is_refused_as_redis_py_refuses_it(clients):
    _, wire = clients
    wrong = type(wire)(wire.host, wire.port, password="not-the-password")
    try:
        with pytest.raises(redis.exceptions.AuthenticationError):
            await wrong.execute([("PING",)])
    finally:
        await wrong.aclose()


def test_the_bench_prints_both_clients_three_rounds_each_and_leaves_no_key(settings):
    import json
    import subprocess
    import sys

    import redis as sync_redis

    from services.common.config import REPO_ROOT

    result = subprocess.run([sys.executable, "-m", "loadtest.wire_bench", "--pages", "20", "--url", settings.redis_url],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
    if split_cluster_url(settings.redis_url)[1]:
        assert result.returncode != 0 and "needs one Redis server over TCP" in result.stderr
        return
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(line["client"], line["round"]) for line in lines] == [
        (client, n) for n in (1, 2, 3) for client in ("redis-py", "wire")]
    assert all(line["op"] == "redis_wire.page" and line["cpu_us"] > 0 and line["wall_us"] > 0 for line in lines)
    with sync_redis.Redis.from_url(settings.redis_url) as client:
        assert not client.keys("wire:bench:*")
