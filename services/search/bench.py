"""Search's benchmark on a seeded stack: `python -m services.search.bench` (`make bench-search`).

Against a running stack whose index is built (`make seed`, then `python -m
services.search.rebuild`). Latencies are measured at the service (gRPC on its
own port, as the issue's "p99 at the service" asks), signed-in as random
seeded users (tokens signed with the stack's key), one call at a time:
  - autocomplete: prefixes of seeded usernames and display names (2-8
    characters), typos of them, hashtag and place prefixes; answered by the
    prefix index, then the same queries by PostgreSQL (the index marked not
    whole for that while: its ready flag is put back at the end);
  - search: POSTS with words, phrases, exclusions and `or`; USERS;
  - explore: a first page (ranking included) and a next page;
and index lag through the gateway: a new post (and a new user) until search
finds it (the stack's sign-up, upload and write limits raised: see the message
printed when they are not). `--ops` picks some of them. Prints one JSON line per measure:

    {"op": "search.autocomplete", "samples": N, "p50_ms": N, "p90_ms": N, "p99_ms": N, "max_ms": N}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import sys
import time
from typing import Self

import grpc
import psycopg
from pictor.search.v1 import search_service_pb2 as pb
from pictor.search.v1 import search_service_pb2_grpc

from services.common.auth import TokenSigner
from services.common.config import load_settings
from services.common.db import shard_schema
from services.common.dependencies import async_redis
from services.common.mesh_tls import service_channel
from services.common.stats import percentiles
from services.mesh.relay_bench import Gateway, GatewayError, jpeg
from services.search.prefixes import READY_TTL_S, RedisPrefixIndex

WORDS = ["sunset", "beach", "coffee", "city", "night", "friends", "food", "travel", "mountain", "river"]


def figures(op: str, samples: list[float]) -> dict:
    return {"op": op, "samples": len(samples), **percentiles(samples, (50, 90, 99))}


def typo(word: str, rng: random.Random) -> str:
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


def seeded_users(settings, n: int) -> list[tuple[int, str, str]]:
    with psycopg.connect(settings.database_url) as conn:
        rows = []
        for shard in range(settings.logical_shards):
            rows += conn.execute(f"SELECT user_id, username, display_name FROM {shard_schema(shard)}.search_users "
                                 "WHERE NOT deleted ORDER BY random() LIMIT %s", (n,)).fetchall()
    return rows


def autocomplete_queries(users: list[tuple[int, str, str]], rng: random.Random, n: int) -> list[str]:
    queries = []
    for _ in range(n):
        _, username, display = rng.choice(users)
        kind = rng.random()
        if kind < 0.4:
            queries.append(username[:rng.randint(2, 8)])
        elif kind < 0.6:
            queries.append(display[:rng.randint(3, 8)])
        elif kind < 0.8:
            queries.append(typo(username[:rng.randint(5, 9)], rng))
        elif kind < 0.9:
            queries.append(f"tag{rng.randrange(100)}"[:rng.randint(2, 5)])
        else:
            queries.append(rng.choice(["zur", "sao", "cafe", "central", "krak", "reyk"]))
    return queries


def post_queries(rng: random.Random, n: int) -> list[str]:
    forms = [lambda: rng.choice(WORDS), lambda: f'"{rng.choice(WORDS)} {rng.choice(WORDS)}"',
             lambda: f"{rng.choice(WORDS)} -{rng.choice(WORDS)}", lambda: f"{rng.choice(WORDS)} or {rng.choice(WORDS)}",
             lambda: f"#tag{rng.randrange(50)}"]
    return [rng.choice(forms)() for _ in range(n)]


FAILURES: dict[str, int] = {}


class Emitted(list):
    """The measures, each printed as soon as it is taken (a later failure loses none)."""

    def append(self, line: dict) -> None:
        print(json.dumps(line), flush=True)
        super().append(line)

    def __iadd__(self, lines: list[dict]) -> Self:
        for line in lines:
            self.append(line)
        return self


async def timed(call, request, token: str) -> tuple[float, object]:
    """(ms, reply); a failed call counts in FAILURES by its status and takes its time, with an empty reply."""
    start = time.perf_counter()
    try:
        reply = await call(request, metadata=(("authorization", f"Bearer {token}"),), timeout=10)
    except grpc.aio.AioRpcError as error:
        FAILURES[error.code().name] = FAILURES.get(error.code().name, 0) + 1
        reply = None
    return (time.perf_counter() - start) * 1000, reply


OPS = ("autocomplete", "posts", "users", "explore", "lag")


async def measure(samples: int, seed: int, ops: tuple[str, ...] = OPS) -> list[dict]:
    settings = load_settings()
    rng = random.Random(seed)
    users = seeded_users(settings, max(50, samples // settings.logical_shards))
    signer = TokenSigner.from_files(settings.jwt_private_key_file, settings.jwt_issuer, 3600)
    tokens = [signer.sign(u[0]) for u in rng.sample(users, min(200, len(users)))]
    channel = service_channel(settings, "search")
    stub = search_service_pb2_grpc.SearchServiceStub(channel)
    results = Emitted()
    try:
        if "autocomplete" in ops:
            for q in autocomplete_queries(users, rng, 20):  # warm up
                await timed(stub.Autocomplete, pb.AutocompleteRequest(q=q), rng.choice(tokens))
            queries = autocomplete_queries(users, rng, samples)

            async def autocomplete() -> list[float]:
                return [(await timed(stub.Autocomplete, pb.AutocompleteRequest(q=q), rng.choice(tokens)))[0]
                        for q in queries]

            results.append(figures("search.autocomplete", await autocomplete()))
            # The same queries answered by PostgreSQL, as while the prefix index is not whole.
            prefixes = RedisPrefixIndex(async_redis(settings.redis_url))
            try:
                if await prefixes.ready():
                    await prefixes.client.delete(prefixes.ready_key)
                    try:
                        await asyncio.sleep(READY_TTL_S + 0.5)
                        results.append(figures("search.autocomplete_postgresql", await autocomplete()))
                    finally:
                        await prefixes.mark_ready()
            finally:
                await prefixes.client.aclose()
        if "posts" in ops:
            times = [(await timed(stub.Search, pb.SearchRequest(q=q, type="POSTS"), rng.choice(tokens)))[0]
                     for q in post_queries(rng, samples // 2)]
            results.append(figures("search.posts", times))
        if "users" in ops:
            times = [(await timed(stub.Search, pb.SearchRequest(q=q, type="USERS"), rng.choice(tokens)))[0]
                     for q in autocomplete_queries(users, rng, samples // 2)]
            results.append(figures("search.users", times))
        if "explore" in ops:
            first, second = [], []
            for token in tokens[:min(len(tokens), samples // 5)]:
                ms, reply = await timed(stub.GetExplore, pb.GetExploreRequest(page_size=20), token)
                first.append(ms)
                if reply is not None and reply.next_page_token:
                    second.append((await timed(stub.GetExplore, pb.GetExploreRequest(
                        page_size=20, page_token=reply.next_page_token), token))[0])
            results.append(figures("search.explore_first_page", first))
            if second:
                results.append(figures("search.explore_next_page", second))
        try:
            if "lag" in ops:
                results += await index_lag(settings, stub, max(10, samples // 50))
        except GatewayError as error:
            if error.status != 429:
                raise
            # A stack with the default limits takes 5 sign-ups an hour from one address.
            print(f"index lag not measured: {error}\nstart the stack with PICTOR_RATE_LIMIT_SIGN_UP_ADDRESS="
                  "100000/1 PICTOR_RATE_LIMIT_UPLOADS_USER=100000/1 PICTOR_RATE_LIMIT_WRITES_USER=100000/1",
                  file=sys.stderr)
    finally:
        await channel.close()
    return results


async def index_lag(settings, stub, samples: int) -> list[dict]:
    """From the write's answer until search finds it: a post by a caption word, a user by name."""
    gw = Gateway(settings.gateway_port)
    author = gw.register()
    token = author["access_token"]
    image = jpeg()
    posts, people = [], []
    for _ in range(samples):
        word = "lag" + secrets.token_hex(5)
        media = gw.call("POST", "/v1/media", token, raw=image, content_type="image/jpeg")["id"]
        gw.call("POST", "/v1/posts", token, body={"media_ids": [media], "caption": f"bench {word}"})
        start = time.perf_counter()
        while not (await stub.Search(pb.SearchRequest(q=word, type="POSTS"), timeout=10,
                                     metadata=(("authorization", f"Bearer {token}"),))).posts:
            await asyncio.sleep(0.01)
        posts.append((time.perf_counter() - start) * 1000)
        name = "lag" + secrets.token_hex(5)
        gw.call("POST", "/v1/accounts", body={"username": name, "email": f"{name}@example.com",
                                             "password": "correct horse"})
        start = time.perf_counter()
        while name not in [s.user.username for s in (await stub.Autocomplete(
                pb.AutocompleteRequest(q=name), timeout=10,
                metadata=(("authorization", f"Bearer {token}"),))).suggestions]:
            await asyncio.sleep(0.01)
        people.append((time.perf_counter() - start) * 1000)
    return [figures("search.index_lag_new_post", posts), figures("search.index_lag_new_user", people)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ops", default=",".join(OPS), help=f"what to measure, of {','.join(OPS)}")
    args = parser.parse_args()
    ops = tuple(op.strip() for op in args.ops.split(",") if op.strip())
    if unknown := set(ops) - set(OPS):
        parser.error(f"unknown --ops {','.join(sorted(unknown))}: choose from {','.join(OPS)}")
    asyncio.run(measure(args.samples, args.seed, ops))
    print(json.dumps({"op": "search.failed_calls", "by_status": FAILURES}), flush=True)


if __name__ == "__main__":
    main()
