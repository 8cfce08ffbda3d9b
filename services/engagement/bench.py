"""Like throughput through Envoy: ``python -m services.engagement.bench``.

Against a running stack (``make run`` in another terminal, or the tests'
stack: the PICTOR_* settings say where the gateway, the database and the
signing key are). Setup, not timed: an author registers, uploads an image and
makes ``--posts`` posts through the gateway; ``--users`` likers are written
straight into PostgreSQL with access tokens signed by the stack's key
(registering through accounts spends ~50 ms of argon2 each, and this measures
likes). Timed: every liker likes every post, from ``--concurrency`` threads,
each with its own keep-alive connection to the gateway. Then it polls the
posts until every like_count equals the likes given, which is how long the
counts take to settle. Prints one JSON line::

    {"op": "engagement.like", "likes": N, "concurrency": C, "likes_per_s": N, "p50_ms": N, "p99_ms": N,
     "errors": 0, "settled_ms": N, ...}
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import queue
import statistics
import threading
import time
from collections import defaultdict
from dataclasses import dataclass

import psycopg

from services.common.auth import TokenSigner
from services.common.config import Settings, load_settings
from services.common.db import GLOBAL_SCHEMA, shard_schema
from services.common.ids import IdAllocator, shard_of
from services.common.stats import percentile


@dataclass(frozen=True)
class SeededUser:
    id: int
    username: str
    token: str


def seed_users(settings: Settings, count: int, prefix: str = "bench") -> list[SeededUser]:
    """Insert `count` users straight into PostgreSQL, each with a signed access token.

    They cannot sign in (no usable password); they exist for the services
    that look users up, and their tokens pass Envoy and every service.
    """
    ids = IdAllocator(settings.logical_shards)
    signer = TokenSigner.from_files(settings.jwt_private_key_file, settings.jwt_issuer, settings.access_token_ttl_s)
    users = []
    for _ in range(count):
        user_id = ids.new_id_in_random_shard()
        users.append(SeededUser(user_id, f"{prefix}{user_id}", signer.sign(user_id)))
    by_shard: dict[int, list[SeededUser]] = defaultdict(list)
    for user in users:
        by_shard[shard_of(user.id)].append(user)
    with psycopg.connect(settings.database_url) as conn, conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {GLOBAL_SCHEMA}.usernames (username, user_id) VALUES (%s, %s)",
                        [(u.username, u.id) for u in users])
        cur.executemany(f"INSERT INTO {GLOBAL_SCHEMA}.emails (email, user_id) VALUES (%s, %s)",
                        [(f"{u.username}@example.com", u.id) for u in users])
    for shard, members in by_shard.items():
        with psycopg.connect(settings.database_for_shard(shard)) as conn, conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {shard_schema(shard)}.users (id, username, email, password_hash, display_name) "
                "VALUES (%s, %s, %s, '!', %s)",
                [(u.id, u.username, f"{u.username}@example.com", u.username) for u in members])
            # The graph's record of them (what registration tells it through SetAccountPrivacy).
            cur.executemany(f"INSERT INTO {shard_schema(shard)}.members (user_id, is_private) VALUES (%s, false)",
                            [(u.id,) for u in members])
    return users


class Client:
    """One keep-alive connection to the gateway (one per thread)."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, token: str | None = None, body: bytes | None = None,
             content_type: str = "application/json") -> tuple[int, bytes]:
        headers = {"content-type": content_type}
        if token:
            headers["authorization"] = f"Bearer {token}"
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            return response.status, response.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()  # reconnects on the next request
            raise


def _ok(status: int, body: bytes) -> dict:
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
    return json.loads(body)


def make_posts(settings: Settings, count: int) -> list[str]:
    """An author with `count` posts, all made through the gateway."""
    from PIL import Image

    client = Client(settings.gateway_port)
    name = f"author{os.getpid()}{int(time.time())}"
    session = _ok(*client.call("POST", "/v1/accounts", body=json.dumps(
        {"username": name, "email": f"{name}@example.com", "password": "correct horse"}).encode()))
    token = session["access_token"]
    image = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(image, "JPEG")
    media_id = _ok(*client.call("POST", "/v1/media", token, image.getvalue(), "image/jpeg"))["id"]
    return [_ok(*client.call("POST", "/v1/posts", token, json.dumps(
        {"media_ids": [media_id], "caption": f"bench {n}"}).encode()))["id"] for n in range(count)]


def like_all(port: int, jobs: list[tuple[str, str]], concurrency: int) -> tuple[list[float], int, float]:
    """POST /v1/posts/{id}/like for every (token, post id); returns (latencies in ms, errors, seconds)."""
    work: queue.SimpleQueue[tuple[str, str] | None] = queue.SimpleQueue()
    for job in jobs:
        work.put(job)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def worker() -> None:
        client = Client(port)
        mine: list[float] = []
        failed = 0
        while (job := work.get()) is not None:
            token, post_id = job
            started = time.perf_counter()
            try:
                status, _ = client.call("POST", f"/v1/posts/{post_id}/like", token, b"{}")
            except (http.client.HTTPException, OSError):
                status = 0
            mine.append((time.perf_counter() - started) * 1000)
            failed += status != 200
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for _ in threads:
        work.put(None)
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors[0], time.perf_counter() - started


def wait_settled(port: int, post_ids: list[str], expected: int, timeout_s: float = 30) -> float:
    """Seconds until every post's like_count reads `expected`."""
    client = Client(port)
    started = time.perf_counter()
    waiting = list(post_ids)
    while waiting:
        if time.perf_counter() - started > timeout_s:
            raise TimeoutError(f"like_count did not reach {expected} within {timeout_s}s")
        waiting = [p for p in waiting
                   if int(_ok(*client.call("GET", f"/v1/posts/{p}"))["like_count"]) != expected]
        if waiting:
            time.sleep(0.02)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--posts", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    settings = load_settings()
    post_ids = make_posts(settings, args.posts)
    users = seed_users(settings, args.users)
    # Likers take turns over the posts, so every post sees concurrent likes (the viral case) at once.
    jobs = [(u.token, p) for u in users for p in post_ids]
    latencies, errors, seconds = like_all(settings.gateway_port, jobs, args.concurrency)
    settled = wait_settled(settings.gateway_port, post_ids, args.users)
    latencies.sort()
    print(json.dumps({
        "op": "engagement.like", "route": "POST /v1/posts/[id]/like", "likes": len(jobs), "users": args.users,
        "posts": args.posts, "concurrency": args.concurrency, "cpus": len(os.sched_getaffinity(0)),
        "seconds": round(seconds, 2), "likes_per_s": round(len(jobs) / seconds, 1),
        "p50_ms": round(statistics.median(latencies), 1), "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(latencies[-1], 1), "errors": errors, "settled_ms": round(settled * 1000),
    }), flush=True)


if __name__ == "__main__":
    main()
