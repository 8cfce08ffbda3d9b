"""Fixtures shared by the suite: the real embedded stack on free ports.

The session's stack is the same code as `make run` (services.mesh.launcher),
under a temporary PICTOR_DATA_DIR, so the tests never touch a running
`make run` and never use fakes for PostgreSQL, Redis or Envoy.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from services.common.config import Settings, load_settings
from services.mesh.launcher import Stack
from services.mesh.private_stack import private_environment


def stack_environment(data_dir: Path, replicas: str = "") -> dict[str, str]:
    """A private stack's variables (its own folder and free ports; `replicas` as PICTOR_REPLICAS), tuned for tests."""
    env = private_environment(data_dir, replicas)
    # Low, so that every test exercises both the push and the pull paths of the feed.
    env["PICTOR_FEED_CELEBRITY_THRESHOLD"] = "3"
    # Short, so that tests see a deleted post's cleanup (and the sweep) within a second or two.
    env["PICTOR_CLEANUP_DELAY_MS"] = "200"
    env["PICTOR_CLEANUP_SWEEP_MS"] = "1000"
    # Media: the decoders act out a hang, a memory bomb or a crash for marked inputs
    # (services/media/decoder.py), a hang is cut short (though not so short that a busy machine
    # cuts a real photo short too), and the collector runs every second.
    env["PICTOR_MEDIA_TEST_HOOKS"] = "1"
    env["PICTOR_MEDIA_PROCESS_TIMEOUT"] = "10"
    env["PICTOR_MEDIA_COLLECT_INTERVAL_MS"] = "1000"
    # A transcoder killed mid-job gives its job up this soon (tests/e2e/test_video_http.py).
    env["PICTOR_VIDEO_LEASE_MS"] = "4000"
    env["PICTOR_VIDEO_POLL_MS"] = "200"
    # Video limits small enough for short test clips to pass them (the defaults: 90 s, 60 s, 4K).
    env["PICTOR_VIDEO_MAX_SECONDS"] = "8"
    env["PICTOR_VIDEO_MAX_STORY_SECONDS"] = "4"
    env["PICTOR_VIDEO_MAX_LONG_EDGE"] = "1920"
    env["PICTOR_VIDEO_MAX_SHORT_EDGE"] = "1080"
    # Long: on a busy machine the password pool must not shed the sign-ups of tests about something
    # else; the storm tests set a small pool and a short wait of their own.
    env["PICTOR_PASSWORD_QUEUE_TIMEOUT_MS"] = "30000"
    # Realtime: heartbeats, idleness, ticket expiry and the sweeps in seconds, not minutes.
    env["PICTOR_REALTIME_HEARTBEAT_MS"] = "1000"
    env["PICTOR_REALTIME_IDLE_MS"] = "4000"
    env["PICTOR_REALTIME_TICKET_TTL"] = "3"
    env["PICTOR_REALTIME_PRESENCE_SWEEP_MS"] = "500"
    env["PICTOR_CLASSIFIER_SWEEP_MS"] = "1000"
    env["PICTOR_USERNAME_GRACE_DAYS"] = str(GRACE_DAYS)
    # Graph logs every call as slow (with its trace id): tests/e2e/test_tracing_http.py reads them.
    env["PICTOR_GRAPH_SLOW_CALL_MS"] = "0"
    return env


# A deleted account's username is free again after this many days (about 4 s).
GRACE_DAYS = 0.00005

STORE_URLS = ("PICTOR_DATABASE_URL", "PICTOR_REDIS_URL", "PICTOR_SHARD_MAP")


@contextmanager
def private_stack(data_dir: Path, **overrides: str) -> Iterator[Stack]:
    """A stack of its own (embedded stores, free ports, under `data_dir`), supervised as `make run`'s
    is: for the tests and tools that break things. The environment is restored afterwards."""
    env = {**stack_environment(data_dir, overrides.get("PICTOR_REPLICAS", "")), **overrides}
    saved = {name: os.environ.get(name) for name in (*env, *STORE_URLS)}
    for name in STORE_URLS:
        os.environ.pop(name, None)
    os.environ.update(env)
    running = Stack(load_settings())
    try:
        running.start()
        running.supervise()
        yield running
    finally:
        running.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def consumers_caught_up(client, group: str, topics: list[str]) -> bool:
    """Whether consumer group `group` (a synchronous redis client's view) has handled and
    acknowledged every event of `topics` published so far."""
    for topic in topics:
        name = f"events:{topic}"
        if not client.exists(name):
            continue
        last = client.xinfo_stream(name)["last-generated-id"]
        groups = {g["name"].decode(): g for g in client.xinfo_groups(name)}
        found = groups.get(group)
        if found is None or found["last-delivered-id"] != last or found["pending"]:
            return False
    return True


def outbox_rows(settings) -> int:
    """Events written to the shards' outboxes and not relayed yet."""
    import psycopg

    from services.common.db import shard_schema

    total = 0
    for r in settings.shard_map:
        with psycopg.connect(r.url, autocommit=True, connect_timeout=2) as conn:
            statement = " UNION ALL ".join(f"SELECT count(*) FROM {shard_schema(s)}.outbox"
                                           for s in range(r.first, r.last + 1))
            total += sum(row[0] for row in conn.execute(statement).fetchall())
    return total


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    for name in STORE_URLS:
        os.environ.pop(name, None)
    os.environ.update(stack_environment(tmp_path_factory.mktemp("pictor")))
    running = Stack(load_settings())
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def settings(stack) -> Settings:
    return stack.settings
