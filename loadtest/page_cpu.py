"""A feed page's own CPU: FeedService.page in a loop in this one process, without gRPC or Envoy.

    python -m loadtest.page_cpu [--pages 8000] [--users 2000] [--concurrency 8] [--reads wire|redis-py]

Against a running, seeded stack (`make run`, `make seed`): the feed's service is built here by the
feed process's own `feed_service` (services.feed.server), on the stack's Redis, and asks the mesh (as `feed`)
only for what its caches lack. Every user's first RANKED page is read once to warm up, then
`--pages` pages are read, the users in turn, `--concurrency` at a time, each written as GET /v1/feed
sends it (its JSON, in a google.api.HttpBody: services.feed.pages.page_body), and one JSON line says
the CPU milliseconds this process spent a page (Redis's own time is not in it). One figure for A/B work
on a page's code: steadier than a throughput ratio, and free of the gateway's and gRPC's share, which
a fixed reply measures (docs/PERFORMANCE.md, "What a page costs beside its computation").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

from loadtest.feed_bench import pick_users
from services.common.clients import MeshChannels
from services.common.config import load_settings
from services.common.dependencies import connect_redis
from services.common.redis_wire import wire_for
from services.feed.pages import page_body
from services.feed.server import feed_service
from services.feed.service import RANKED


async def measure(pages: int, users: int, concurrency: int, reads: str = "wire") -> dict[str, object]:
    os.environ.setdefault("PICTOR_MESH_IDENTITY", "feed")  # what the caches lack is asked for as the feed
    settings = load_settings()
    readers = pick_users(settings, users)
    redis, channels = connect_redis(settings.redis_url), MeshChannels(settings)
    wire = wire_for(redis) if reads == "wire" else None
    try:
        service = feed_service(redis, channels, wire)

        async def read(count: int) -> None:
            async def reader(first: int) -> None:
                for n in range(first, count, concurrency):
                    page_body(*await service.page(readers[n % len(readers)], RANKED, 20, ""))
            await asyncio.gather(*(reader(k) for k in range(concurrency)))

        await read(len(readers))  # warm: each reader's first page once
        cpu, wall = time.process_time(), time.perf_counter()
        await read(pages)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        if wire is not None:
            await wire.aclose()
        await redis.aclose()
        await channels.close()
    return {"op": "feed.page_cpu", "reads": "wire" if wire is not None else "redis-py", "pages": pages,
            "readers": len(readers), "concurrency": concurrency,
            "cpu_ms_per_page": round(1000 * cpu / pages, 3), "pages_per_s": round(pages / wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=8000)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--reads", choices=("wire", "redis-py"), default="wire",
                        help="what a page's reads go through: services.common.redis_wire, as the feed process "
                             "on one Redis server, or redis-py, as on a cluster")
    options = parser.parse_args()
    if min(options.pages, options.users, options.concurrency) < 1:
        parser.error("--pages, --users and --concurrency must be at least 1")
    print(json.dumps(asyncio.run(measure(options.pages, options.users, options.concurrency, options.reads))),
          flush=True)


if __name__ == "__main__":
    main()
