"""PICTOR_REPLICAS and the replicas' ports and channel targets (services.common.config, clients)."""

from __future__ import annotations

import json

import pytest

from services.common.clients import balanced_config, balanced_target
from services.common.config import parse_replicas, replica_ports
from services.common.registry import by_name
from services.mesh.launcher import parse_replica_name, replica_name

DEFAULTS = {"feed": 1, "posts": 1, "fanout": 1}


def test_one_number_sets_every_service_and_worker() -> None:
    assert parse_replicas("2", DEFAULTS) == {"feed": 2, "posts": 2, "fanout": 2}


def test_per_name_counts_leave_the_others_at_their_default() -> None:
    assert parse_replicas("feed=3, posts=2", DEFAULTS) == {"feed": 3, "posts": 2, "fanout": 1}


def test_unset_is_the_defaults() -> None:
    assert parse_replicas("", DEFAULTS) == DEFAULTS


@pytest.mark.parametrize(("raw", "problem"), [("feeds=2", "not NAME=COUNT"), ("feed=two", "must be an integer"),
                                              ("0", "between 1 and 32"), ("feed", "must be an integer")])
def test_a_bad_value_stops_with_a_message_naming_it(raw: str, problem: str) -> None:
    with pytest.raises(SystemExit, match=problem):
        parse_replicas(raw, DEFAULTS)


def test_replicas_listen_every_hundred_ports_from_the_service_port(monkeypatch) -> None:
    monkeypatch.delenv("PICTOR_POSTS_PORTS", raising=False)
    assert replica_ports(by_name("posts"), 7053, 3) == (7053, 7153, 7253)


def test_listed_ports_win(monkeypatch) -> None:
    monkeypatch.setenv("PICTOR_POSTS_PORTS", "9001,9002,9003")
    assert replica_ports(by_name("posts"), 7053, 2) == (9001, 9002)


def test_replica_names_round_trip() -> None:
    assert [replica_name("story_cleanup", n) for n in range(2)] == ["story_cleanup", "story_cleanup-2"]
    assert [parse_replica_name(n) for n in ("posts", "posts-2")] == [("posts", 0), ("posts", 1)]


def test_channel_targets_list_loopback_replicas_and_resolve_names() -> None:
    assert balanced_target(["127.0.0.1:7053"]) == "127.0.0.1:7053"
    assert balanced_target(["127.0.0.1:7053", "127.0.0.1:7153"]) == "ipv4:127.0.0.1:7053,127.0.0.1:7153"
    assert balanced_target(["posts:7053"]) == "dns:///posts:7053"


def test_channels_round_robin_over_healthy_replicas() -> None:
    config = json.loads(balanced_config(by_name("posts")))
    assert config == {"loadBalancingConfig": [{"round_robin": {}}],
                      "healthCheckConfig": {"serviceName": "pictor.posts.v1.PostsService"}}
