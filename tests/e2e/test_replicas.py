"""PICTOR_REPLICAS=2 on a private stack: two processes of every service and worker, Envoy and the
services balancing over them, ids unique across all of them, and a replica killed mid-run losing
nothing that was acknowledged."""

from __future__ import annotations

import hashlib
import math
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from array import array
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from hotpath.ids import decode, worker_of
from services.common.clients import AccountsClient, MeshChannels
from services.common.config import REPO_ROOT
from services.common.registry import SERVICES, WORKERS
from services.mesh.launcher import Stack, replica_name, wait_serving
from tests.conftest import private_stack
from tests.e2e.http import Gateway, UserClient, eventually
from tests.e2e.media_files import small_jpeg

pytestmark = pytest.mark.e2e

REPLICAS = 2
# The journey's services: each of their replicas must have served some of it.
JOURNEY = ("accounts", "media", "posts", "feed", "engagement")


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with private_stack(tmp_path_factory.mktemp("replicas"), PICTOR_REPLICAS=str(REPLICAS)) as running:
        yield running


@pytest.fixture(scope="module")
def gateway(replicated: Stack) -> Gateway:
    return Gateway(replicated.settings.gateway_port)


def sign_up(gateway: Gateway, name: str) -> UserClient:
    r = gateway.post("/v1/accounts", {"username": name, "email": f"{name}@example.com", "password": "correct horse"})
    assert r.status == 200, r.body
    return UserClient(gateway, r.json)


def envoy_requests(stack: Stack) -> dict[str, int]:
    """Envoy's requests per upstream endpoint, "cluster::host:port" -> rq_total."""
    url = f"http://127.0.0.1:{stack.settings.envoy_admin_port}/clusters"
    with urllib.request.urlopen(url, timeout=2) as r:
        lines = r.read().decode().splitlines()
    return {line.rsplit("::rq_total::", 1)[0]: int(line.rsplit("::", 1)[1]) for line in lines if "::rq_total::" in line}


def test_every_service_and_worker_runs_two_processes(replicated: Stack) -> None:
    settings = replicated.settings
    for spec in SERVICES:
        ports = settings.replica_ports[spec.name]
        assert len(set(ports)) == REPLICAS
        for replica, port in enumerate(ports):
            assert replicated.child(replica_name(spec.name, replica)).running
            wait_serving(settings, spec, 10, port=port)
    for worker in WORKERS:
        assert all(replicated.child(f"{worker.name}-{n}").running for n in range(1, REPLICAS + 1))


def test_envoy_lists_every_replica_of_every_service_as_a_healthy_endpoint(replicated: Stack) -> None:
    url = f"http://127.0.0.1:{replicated.settings.envoy_admin_port}/clusters"
    with urllib.request.urlopen(url, timeout=2) as r:
        healthy = {line.rsplit("::health_flags::", 1)[0] for line in r.read().decode().splitlines()
                   if line.endswith("::health_flags::healthy")}
    assert healthy >= {f"{s.name}::{a}" for s in SERVICES for a in replicated.settings.replica_addresses(s)}


def test_a_journey_through_envoy_is_served_by_both_replicas_of_each_service(replicated: Stack,
                                                                           gateway: Gateway) -> None:
    before = envoy_requests(replicated)
    author, fan = sign_up(gateway, "journeyauthor"), sign_up(gateway, "journeyfan")
    assert fan.post(f"/v1/users/{author.id}/follow").status == 200
    posted = []
    for n in range(6):
        media = author.upload(small_jpeg(), "image/jpeg")
        assert media.status == 200, media.body
        r = author.post("/v1/posts", {"media_ids": [media.json["id"]], "caption": f"round {n}"})
        assert r.status == 200, r.body
        posted.append(r.json["id"])
        assert fan.post(f"/v1/posts/{r.json['id']}/like").status == 200
        assert fan.get("/v1/feed").status == 200
        assert author.get("/v1/users/me").status == 200
    feed_ids = eventually(lambda: sorted(p["id"] for p in fan.get("/v1/feed?page_size=50").json["posts"]),
                          sorted(posted), timeout_s=15)
    assert feed_ids == sorted(posted)
    served = envoy_requests(replicated)
    for name in JOURNEY:
        for address in replicated.settings.replica_addresses(next(s for s in SERVICES if s.name == name)):
            key = f"{name}::{address}"
            assert served.get(key, 0) > before.get(key, 0), f"{key} served none of the journey"


def test_streams_are_shared_by_both_realtime_replicas_and_each_gets_its_users_likes(replicated: Stack,
                                                                                    gateway: Gateway) -> None:
    from contextlib import ExitStack

    from tests.e2e.test_realtime_http import open_stream

    authors = [sign_up(gateway, f"streamer{n}") for n in range(8)]
    fan = sign_up(gateway, "streamfan")
    posts = []
    for author in authors:
        media = author.upload(small_jpeg(), "image/jpeg")
        r = author.post("/v1/posts", {"media_ids": [media.json["id"]]})
        assert r.status == 200, r.body
        posts.append(r.json["id"])
    before = envoy_requests(replicated)
    with ExitStack() as open_streams:
        streams = [open_streams.enter_context(open_stream(gateway, author)) for author in authors]
        served = envoy_requests(replicated)
        realtime = next(s for s in SERVICES if s.name == "realtime")
        for address in replicated.settings.replica_addresses(realtime):
            key = f"realtime::{address}"
            assert served.get(key, 0) > before.get(key, 0), f"{key} holds none of the {len(authors)} streams"
        for post in posts:
            assert fan.post(f"/v1/posts/{post}/like").status == 200
        for author, s in zip(authors, streams, strict=True):
            event = s.events_until(1)[0]
            assert event.event == "notification", (author.username, event)
            assert [a["id"] for a in event.json["group"]["actors"]] == [fan.id]


async def test_a_service_calls_every_replica_of_another(replicated: Stack) -> None:
    # feed's channel to accounts: round_robin opens a connection to each replica and spreads the calls.
    channels = MeshChannels(replicated.settings, identity="feed")
    try:
        for _ in range(20):
            await AccountsClient(channels).get_users([1])
        ports = {c.raddr.port for c in psutil.Process().net_connections(kind="tcp")
                 if c.raddr and c.status == psutil.CONN_ESTABLISHED}
        assert set(replicated.settings.replica_ports["accounts"]) <= ports
    finally:
        await channels.close()


def test_an_upload_sent_and_completed_through_both_media_replicas_at_once_makes_one_media(
        replicated: Stack, gateway: Gateway) -> None:
    user = sign_up(gateway, "racinguploader")
    data = small_jpeg(640, 480)
    created = user.post("/v1/uploads", {"content_type": "image/jpeg", "size_bytes": str(len(data)),
                                        "sha256": hashlib.sha256(data).hexdigest()})
    assert created.status == 200, created.body
    upload_id = created.json["upload_id"]

    def at_once(call, times: int = 4) -> list:
        with ThreadPoolExecutor(times) as pool:
            return list(pool.map(lambda _: call(), range(times)))

    # The same chunk sent four times at once (round robin: to both replicas): one write, the rest see it.
    puts = at_once(lambda: gateway.request("PUT", f"/v1/uploads/{upload_id}?offset=0", raw=data, token=user.token,
                                           headers={"content-type": "application/octet-stream"}))
    assert [p.status for p in puts] == [200] * 4 and {p.json["received_bytes"] for p in puts} == {str(len(data))}
    completions = at_once(lambda: user.post(f"/v1/uploads/{upload_id}:complete", {}))
    assert [c.status for c in completions] == [200] * 4, [c.body for c in completions]
    assert len({c.json["id"] for c in completions}) == 1


def test_killing_a_replica_mid_run_loses_nothing_acknowledged(replicated: Stack, gateway: Gateway) -> None:
    author, fan = sign_up(gateway, "killauthor"), sign_up(gateway, "killfan")
    assert fan.post(f"/v1/users/{author.id}/follow").status == 200
    acknowledged: list[str] = []
    liked: list[str] = []
    failures: list[int] = []
    done = threading.Event()

    def write() -> None:
        # A client that posts and likes in a loop; what came back 200 is acknowledged, what did not is
        # tried again (its status kept: never a 500).
        image = small_jpeg()
        while not done.is_set():
            media = author.upload(image, "image/jpeg")
            if media.status != 200:
                failures.append(media.status)
                continue
            r = author.post("/v1/posts", {"media_ids": [media.json["id"]], "caption": "kill"})
            if r.status != 200:
                failures.append(r.status)
                continue
            acknowledged.append(r.json["id"])
            like = fan.post(f"/v1/posts/{r.json['id']}/like")
            if like.status == 200:
                liked.append(r.json["id"])
            else:
                failures.append(like.status)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        eventually(lambda: len(acknowledged) >= 3, True, timeout_s=60)
        for name in ("posts-2", "media-2", "engagement-2", "accounts-2"):
            os.kill(replicated.child(name).proc.pid, signal.SIGKILL)
        mark = len(acknowledged)
        eventually(lambda: len(acknowledged) >= mark + 5, True, timeout_s=60)
    finally:
        done.set()
        writer.join(60)
    assert 500 not in failures
    for post_id in acknowledged:
        assert author.get(f"/v1/posts/{post_id}").status == 200, post_id
    for post_id in liked:
        assert fan.get(f"/v1/posts/{post_id}").json.get("liked_by_me") is True, post_id
    eventually(lambda: set(acknowledged) <= {p["id"] for p in fan.get("/v1/feed?page_size=100").json["posts"]},
               True, timeout_s=30)


def test_a_million_ids_minted_by_two_replicas_of_every_service_are_unique(replicated: Stack, tmp_path: Path) -> None:
    per_process = math.ceil(1_000_000 / (REPLICAS * len(SERVICES)))
    go = tmp_path / "go"
    minters = []
    for spec in SERVICES:
        for replica in range(REPLICAS):
            name = f"{spec.name}-mint-{replica + 1}"
            env = {**os.environ, "PICTOR_MESH_IDENTITY": spec.name, "PICTOR_REPLICA_NAME": name}
            minters.append((tmp_path / f"{name}.ids", subprocess.Popen(
                [sys.executable, "-m", "tests.e2e.mint_ids", str(tmp_path / f"{name}.ids"), str(per_process), str(go)],
                cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    # All at once: each holds its number (a .ready file) before any mints.
    deadline = time.monotonic() + 240
    while not all(out.with_suffix(".ready").exists() for out, _ in minters):
        assert all(p.poll() is None for _, p in minters), [p.communicate()[0] for _, p in minters if p.poll()]
        assert time.monotonic() < deadline, "the minters did not all get a worker number"
        time.sleep(0.1)
    go.touch()
    minted = []
    for out, process in minters:
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output
        minted.append(array("q", out.read_bytes()))
    every = [post_id for one in minted for post_id in one]
    assert len(every) >= 1_000_000
    assert len(set(every)) == len(every)
    # Each process its own worker number, and its ids in one shard in the order it minted them.
    assert len({worker_of(one[0]) for one in minted}) == len(minters)
    for one in minted:
        last: dict[int, int] = {}
        for post_id in one:
            shard = decode(post_id).shard
            assert post_id > last.get(shard, -1)
            last[shard] = post_id
