"""redis-py's pipelines against services.common.redis_wire's: the same reads, in the same run.

    python -m loadtest.wire_bench [--pages 3000] [--url redis://...]

A "page" is three pipelines shaped as a feed page's (a MGET of 20 keys, a HMGET of 20 fields and a MGET
of 120 keys each), on the running stack's Redis unless --url names another (one server over TCP: on a
cluster the feed keeps redis-py). Three rounds of each client, one JSON line per round: the CPU and
wall microseconds a page cost this process. Its keys (wire:bench:*) are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from services.common.config import load_settings
from services.common.dependencies import connect_redis
from services.common.redis_wire import wire_for

AFFINITY = "wire:bench:aff"


async def bench(url: str, pages: int) -> None:
    client = connect_redis(url)
    wire = wire_for(client)
    if wire is None:
        await client.aclose()
        raise SystemExit("wire_bench: needs one Redis server over TCP (not a cluster, TLS or a socket)")
    keys, fields = [f"wire:bench:{i}" for i in range(120)], [str(i) for i in range(20)]
    await client.mset(dict.fromkeys(keys, "3:4"))
    await client.hset(AFFINITY, mapping=dict.fromkeys(fields, "1.5"))

    async def page(reads: Any) -> None:
        for _ in range(3):
            async with reads.pipeline(transaction=False) as pipe:
                pipe.mget(keys[:20])
                pipe.hmget(AFFINITY, fields)
                pipe.mget(keys)
                await pipe.execute()

    try:
        for round_ in range(1, 4):
            for name, reads in (("redis-py", client), ("wire", wire)):
                for _ in range(max(1, pages // 10)):
                    await page(reads)
                cpu, wall = time.process_time(), time.perf_counter()
                for _ in range(pages):
                    await page(reads)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                print(json.dumps({"op": "redis_wire.page", "client": name, "round": round_, "pages": pages,
                                  "cpu_us": round(1e6 * cpu / pages, 1), "wall_us": round(1e6 * wall / pages, 1)}),
                      flush=True)
    finally:
        await client.delete(*keys, AFFINITY)
        await wire.aclose()
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=3000)
    parser.add_argument("--url", help="redis://[:password@]host:port/db (default: the stack's, PICTOR_* settings)")
    options = parser.parse_args()
    if options.pages < 1:
        parser.error("--pages must be at least 1")
    asyncio.run(bench(options.url or load_settings().redis_url, options.pages))


if __name__ == "__main__":
    main()
