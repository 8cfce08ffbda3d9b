"""How long events take to show their effect: ``python -m services.mesh.relay_bench``.

Against a running stack (``make run`` in another terminal; PICTOR_GATEWAY_PORT
says where). Through the gateway, ``--samples`` times each:
  - Bob posts; Alice (who follows him, with a built feed) polls her feed
    until the post is there: outbox → relay → stream → fan-out → feed;
  - a new user follows Bob; Bob's profile is polled until follower_count
    moved: outbox → relay → stream → accounts' profile counts.
Prints one JSON line per journey, times from the write's request::

    {"op": "events.post_in_follower_feed", "samples": N, "ack_p50_ms": N, "p50_ms": N, "p99_ms": N, "max_ms": N}
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import secrets
import statistics
import time

from services.common.config import load_settings


class GatewayError(RuntimeError):
    """A reply that was not 200, with its status."""

    def __init__(self, method: str, path: str, status: int, body: bytes) -> None:
        super().__init__(f"{method} {path}: {status} {body[:200]!r}")
        self.status = status


class Gateway:
    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, token: str = "", body: object = None, raw: bytes | None = None,
             content_type: str = "application/json") -> dict:
        headers = {"content-type": content_type, **({"authorization": f"Bearer {token}"} if token else {})}
        self.conn.request(method, path, body=raw if raw is not None else json.dumps(body or {}).encode(),
                          headers=headers)
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise GatewayError(method, path, r.status, data)
        return json.loads(data)

    def register(self) -> dict:
        name = f"bench{secrets.token_hex(5)}"
        return self.call("POST", "/v1/accounts", body={"username": name, "email": f"{name}@example.com",
                                                       "password": "correct horse"})


def jpeg() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 120, 40)).save(out, "JPEG")
    return out.getvalue()


def wait_until(check, timeout_s: float = 10.0) -> float:
    """Poll `check()` until true; returns when (perf_counter)."""
    deadline = time.perf_counter() + timeout_s
    while not check():
        if time.perf_counter() > deadline:
            raise TimeoutError("the effect never showed")
        time.sleep(0.002)
    return time.perf_counter()


def summary(op: str, acks: list[float], seen: list[float]) -> dict:
    ordered = sorted(seen)
    return {"op": op, "samples": len(seen), "ack_p50_ms": round(statistics.median(acks), 1),
            "p50_ms": round(statistics.median(ordered), 1),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
            "max_ms": round(ordered[-1], 1)}


def post_in_feed(gw: Gateway, samples: int) -> dict:
    alice, bob = gw.register(), gw.register()
    gw.call("POST", f"/v1/users/{bob['user']['id']}/follow", alice["access_token"])
    gw.call("GET", "/v1/feed?page_size=1", alice["access_token"])  # build Alice's feed
    image = jpeg()
    acks, seen = [], []
    for _ in range(samples):
        media = gw.call("POST", "/v1/media", bob["access_token"], raw=image, content_type="image/jpeg")["id"]
        started = time.perf_counter()
        post = gw.call("POST", "/v1/posts", bob["access_token"], body={"media_ids": [media]})["id"]
        acks.append((time.perf_counter() - started) * 1000)
        done = wait_until(lambda post=post: any(
            p["id"] == post
            for p in gw.call("GET", "/v1/feed?mode=CHRONOLOGICAL&page_size=1", alice["access_token"])["posts"]))
        seen.append((done - started) * 1000)
    return summary("events.post_in_follower_feed", acks, seen)


def follow_counted(gw: Gateway, samples: int) -> dict:
    bob = gw.register()
    bob_id, token = bob["user"]["id"], bob["access_token"]
    acks, seen = [], []
    for n in range(samples):
        fan = gw.register()
        started = time.perf_counter()
        gw.call("POST", f"/v1/users/{bob_id}/follow", fan["access_token"])
        acks.append((time.perf_counter() - started) * 1000)
        done = wait_until(lambda n=n: gw.call("GET", f"/v1/users/{bob_id}", token)["follower_count"] == str(n + 1))
        seen.append((done - started) * 1000)
    return summary("events.follow_counted", acks, seen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args()
    gw = Gateway(load_settings().gateway_port)
    print(json.dumps(post_in_feed(gw, args.samples)), flush=True)
    print(json.dumps(follow_counted(gw, args.samples)), flush=True)


if __name__ == "__main__":
    main()
