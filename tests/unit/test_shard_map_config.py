"""PICTOR_POSTGRES_SERVERS: several embedded PostgreSQL servers and the shard map split between them
(services.common.config)."""

from __future__ import annotations

import pytest

from services.common.config import (
    ShardRange,
    embedded_postgres_ports,
    embedded_redis_ports,
    format_shard_map,
    load_settings,
    parse_shard_map,
    split_shards,
    with_placements,
)


def test_shards_split_evenly_in_contiguous_ranges() -> None:
    assert split_shards(8, ["a", "b"]) == (ShardRange(0, 3, "a"), ShardRange(4, 7, "b"))
    assert split_shards(8, ["a", "b", "c"]) == (ShardRange(0, 1, "a"), ShardRange(2, 4, "b"), ShardRange(5, 7, "c"))


def test_more_servers_than_shards_leaves_the_extra_servers_without_shards() -> None:
    assert split_shards(2, ["a", "b", "c"]) == (ShardRange(0, 0, "b"), ShardRange(1, 1, "c"))


def test_moved_shards_go_to_their_new_homes_in_as_few_ranges_as_that_leaves() -> None:
    base = (ShardRange(0, 3, "a"), ShardRange(4, 7, "b"))
    assert with_placements(base, {}) == base
    assert with_placements(base, {4: "c", 5: "c", 6: "c", 7: "c"}) == (ShardRange(0, 3, "a"), ShardRange(4, 7, "c"))
    assert with_placements(base, {2: "b", 3: "b", 5: "a"}) == (
        ShardRange(0, 1, "a"), ShardRange(2, 4, "b"), ShardRange(5, 5, "a"), ShardRange(6, 7, "b"))
    assert with_placements(base, {4: "a", 5: "a", 6: "a", 7: "a"}) == (ShardRange(0, 7, "a"),)  # back together


def test_a_formatted_map_parses_back_to_itself() -> None:
    ranges = split_shards(8, ["postgresql://x:1/pictor", "postgresql://x:2/pictor"])
    assert parse_shard_map(format_shard_map(ranges), 8, "unused") == ranges


def test_servers_take_the_ports_after_the_first_unless_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PICTOR_POSTGRES_PORTS", raising=False)  # a private stack of this session may have set it
    monkeypatch.setenv("PICTOR_POSTGRES_SERVERS", "3")
    assert embedded_postgres_ports(15432) == (15432, 15433, 15434)
    monkeypatch.setenv("PICTOR_POSTGRES_PORTS", "7001,7005,7003")
    assert embedded_postgres_ports(15432) == (7001, 7005, 7003)


@pytest.mark.parametrize(("servers", "ports", "problem"), [("0", "", "between 1 and 64"),
                                                          ("2", "7001", "names 1 ports for 2"),
                                                          ("2", "7001,x", "comma-separated list")])
@pytest.mark.parametrize(("ports_of", "kind"), [(embedded_postgres_ports, "POSTGRES_SERVERS"),
                                                (embedded_redis_ports, "REDIS_NODES")])
def test_bad_server_settings_stop_with_a_message(monkeypatch: pytest.MonkeyPatch, servers: str, ports: str,
                                                 problem: str, ports_of, kind: str) -> None:
    """PICTOR_POSTGRES_SERVERS with PICTOR_POSTGRES_PORTS, PICTOR_REDIS_NODES with PICTOR_REDIS_PORTS."""
    monkeypatch.setenv(f"PICTOR_{kind}", servers)
    monkeypatch.setenv(f"PICTOR_{kind.split('_')[0]}_PORTS", ports)
    with pytest.raises(SystemExit, match=problem):
        ports_of(7000)


def test_two_embedded_servers_split_the_shards_unless_a_map_or_a_database_is_given(
        monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for name in ("PICTOR_SHARD_MAP", "PICTOR_DATABASE_URL", "PICTOR_POSTGRES_PORTS", "PICTOR_LOGICAL_SHARDS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PICTOR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PICTOR_POSTGRES_PORT", "7000")
    monkeypatch.setenv("PICTOR_POSTGRES_SERVERS", "2")
    settings = load_settings()
    assert [(r.first, r.last) for r in settings.shard_map] == [(0, 3), (4, 7)]
    assert settings.database_for_shard(2) == settings.database_url
    assert ":7001/" in settings.database_for_shard(5)
    assert settings.database_urls == [settings.database_url, settings.database_for_shard(5)]
    monkeypatch.setenv("PICTOR_DATABASE_URL", "postgresql://elsewhere/pictor")
    assert {r.url for r in load_settings().shard_map} == {"postgresql://elsewhere/pictor"}
