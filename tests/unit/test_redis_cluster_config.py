"""PICTOR_REDIS_NODES and `?cluster=yes`: the embedded Redis as a Redis Cluster, and clients that follow
the URL (services.common.config, services.common.dependencies)."""

from __future__ import annotations

import pytest
import redis
import redis.asyncio as aioredis

from services.common.config import embedded_redis_ports, load_settings
from services.common.dependencies import async_redis, connect_redis, split_cluster_url, sync_redis


@pytest.mark.parametrize(("url", "expected"), [
    ("redis://:pw@10.0.0.1:7000/0?cluster=yes", ("redis://:pw@10.0.0.1:7000/0", True)),
    ("redis://:pw@10.0.0.1:7000/0?cluster=no", ("redis://:pw@10.0.0.1:7000/0", False)),
    ("redis://h:1/0?cluster=true&health_check_interval=5", ("redis://h:1/0?health_check_interval=5", True)),
    ("redis://h:1/0", ("redis://h:1/0", False)),
])
def test_the_cluster_parameter_is_read_and_taken_out_of_the_url(url: str, expected: tuple[str, bool]) -> None:
    assert split_cluster_url(url) == expected


def test_a_cluster_parameter_that_is_not_yes_or_no_names_itself() -> None:
    with pytest.raises(ValueError, match="cluster must be yes or no, got 'maybe'"):
        split_cluster_url("redis://h:1/0?cluster=maybe")


def test_every_kind_of_client_is_a_cluster_client_when_the_url_says_so() -> None:
    # The asyncio clients connect at their first command; the blocking one asks for the slots at once.
    assert isinstance(connect_redis("redis://127.0.0.1:1/0?cluster=yes"), aioredis.RedisCluster)
    assert isinstance(async_redis("redis://127.0.0.1:1/0?cluster=yes"), aioredis.RedisCluster)
    with pytest.raises(redis.exceptions.RedisClusterException, match="Redis Cluster cannot be connected"):
        sync_redis("redis://127.0.0.1:1/0?cluster=yes")
    assert not isinstance(connect_redis("redis://127.0.0.1:1/0"), aioredis.RedisCluster)
    assert not isinstance(sync_redis("redis://127.0.0.1:1/0"), redis.RedisCluster)


def test_several_embedded_nodes_make_a_cluster_url(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for name in ("PICTOR_REDIS_URL", "PICTOR_REDIS_PORTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PICTOR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PICTOR_REDIS_PORT", "7100")
    monkeypatch.setenv("PICTOR_REDIS_NODES", "3")
    settings = load_settings()
    assert settings.redis_ports == (7100, 7101, 7102)
    assert settings.redis_url.endswith("@127.0.0.1:7100/0?cluster=yes")
    monkeypatch.setenv("PICTOR_REDIS_NODES", "1")
    assert "cluster" not in load_settings().redis_url


def test_a_cluster_without_ports_given_leaves_room_for_each_nodes_bus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PICTOR_REDIS_PORTS", raising=False)
    monkeypatch.setenv("PICTOR_REDIS_NODES", "3")
    assert embedded_redis_ports(None) == (17000, 17001, 17002)  # not after 63799: the bus is at port + 10,000
    with pytest.raises(SystemExit, match="leave room for its bus at port \\+ 10000: 60002 is too high"):
        embedded_redis_ports(60000)
