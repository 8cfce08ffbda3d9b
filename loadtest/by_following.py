"""Feed latency by how many accounts the user follows: `python -m loadtest.by_following`.

Against a running, seeded stack. For each band of following_count it samples
users whose feeds are built and times GET /v1/feed through Envoy, one request
at a time (no other load), and prints one JSON line per band.
"""

from __future__ import annotations

import asyncio
import json

import psycopg

from loadtest.feed_bench import HttpClient
from services.common.auth import TokenSigner
from services.common.config import load_settings
from services.common.db import shard_schema
from services.common.dependencies import sync_redis
from services.common.stats import percentiles
from services.feed.keys import feed_key

BANDS = ((1, 50), (50, 150), (150, 300), (300, 600), (600, 100_000))


async def run() -> None:
    settings = load_settings()
    signer = TokenSigner.from_files(settings.jwt_private_key_file, settings.jwt_issuer, 3600)
    client = sync_redis(settings.redis_url)
    http = HttpClient("127.0.0.1", settings.gateway_port)
    with psycopg.connect(settings.database_url) as conn:
        for low, high in BANDS:
            users = [r[0] for r in conn.execute(
                " UNION ALL ".join(f"(SELECT id FROM {shard_schema(s)}.users WHERE following_count >= %(l)s AND "
                                   f"following_count < %(h)s LIMIT 400)" for s in range(settings.logical_shards)),
                {"l": low, "h": high})]
            built = [u for u in users if client.exists(feed_key(u))][:60]
            latencies = []
            for user in built:
                token = signer.sign(user)
                for _ in range(5):
                    started = asyncio.get_running_loop().time()
                    await http.get("/v1/feed?page_size=20", token)
                    latencies.append((asyncio.get_running_loop().time() - started) * 1000)
            if latencies:
                print(json.dumps({"op": "feed.by_following", "following": f"{low}-{high - 1}", "users": len(built),
                                  "requests": len(latencies), **percentiles(latencies)}), flush=True)
    await http.close()


if __name__ == "__main__":
    asyncio.run(run())
