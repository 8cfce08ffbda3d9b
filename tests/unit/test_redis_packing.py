"""The mesh's Redis connections pack commands with hiredis: the same bytes redis-py's asyncio packer
writes, for every kind of argument, and the same refusals."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
import redis.exceptions

from services.common.dependencies import _Connection, connect_redis

ARGUMENTS = [
    ("GET", "k"),
    ("SET", "clé é", b"\x00\xff raw", "EX", 30),
    ("HSET", b"h", "f", 1.5, "g", 0.1, "n", -0.0, "big", 10**30, "inf", float("inf")),
    ("CONFIG GET", "maxmemory"),
    (b"CLIENT SETNAME", "pictor"),
    ("SET", "v", memoryview(b"a view")),
    ("MGET", *[f"feat:{n}" for n in range(120)]),
    ("SET", "big", b"x" * 100_000),
]


@pytest.mark.parametrize("args", ARGUMENTS, ids=lambda args: str(args[0]))
def test_hiredis_packs_each_command_as_redis_py_does(args):
    ours, theirs = _Connection(), aioredis.Connection()
    assert b"".join(ours.pack_command(*args)) == b"".join(bytes(c) for c in theirs.pack_command(*args))


@pytest.mark.parametrize("bad", [True, None, [1], object()])
def test_what_redis_py_refuses_is_refused(bad):
    with pytest.raises(redis.exceptions.DataError):
        _Connection().pack_command("SET", "k", bad)


def test_another_encoding_goes_through_redis_pys_encoder():
    ours, theirs = _Connection(encoding="latin-1"), aioredis.Connection(encoding="latin-1")
    assert b"".join(ours.pack_command("SET", "k", "é")) == b"".join(theirs.pack_command("SET", "k", "é"))
    assert b"\xe9" in b"".join(ours.pack_command("SET", "k", "é"))


def test_the_mesh_clients_connect_with_it_to_one_redis_and_to_every_node_of_a_cluster():
    assert connect_redis("redis://127.0.0.1:1").connection_pool.connection_class is _Connection
    cluster = connect_redis("redis://127.0.0.1:1/0?cluster=yes")
    assert cluster.nodes_manager.connection_kwargs["connection_class"] is _Connection  # nodes found later
    assert [node.connection_class for node in cluster.nodes_manager.startup_nodes.values()] == [_Connection]
