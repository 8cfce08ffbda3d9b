"""One replica's minting for tests/e2e/test_replicas.py: `python -m tests.e2e.mint_ids OUT COUNT GO`.

Takes ids as a service's process does (services.common.server.Resources.ids: a leased worker
number), touches OUT.ready, waits until the file GO exists so that every minter starts at once, mints COUNT ids in
random logical shards and writes them to OUT (int64, native order).
"""

from __future__ import annotations

import asyncio
import sys
import time
from array import array
from pathlib import Path

from services.common.config import load_settings
from services.common.server import Resources


async def mint(out: Path, count: int, go: Path) -> None:
    resources = Resources(load_settings())
    try:
        ids = await resources.ids()
        assert ids.lease is not None
        await asyncio.wait_for(ids.lease.acquired.wait(), 60)
        out.with_suffix(".ready").touch()
        while not go.exists():
            await asyncio.sleep(0.01)
        minted = array("q", (ids.new_id_in_random_shard() for _ in range(count)))
        out.write_bytes(minted.tobytes())
        print(f"worker {ids.lease.current().worker} minted {count} at {time.time():.3f}", flush=True)
    finally:
        await resources.close()


if __name__ == "__main__":
    asyncio.run(mint(Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])))
