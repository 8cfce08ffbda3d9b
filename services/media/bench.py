"""Processing speed of a phone photo: ``python -m services.media.bench``.

Makes a realistic 12-megapixel JPEG (4000x3000, colour gradients under
photographic-grade noise at quality 90: about 6 MB, which does not compress
away like a flat test card) and times the whole pipeline on it (header
checks, shrink-on-load decode, eight variants, placeholder). Prints one JSON
line per configuration and way of running it::

    {"op": "media.process", "input": "jpeg 4000x3000", "vips_concurrency": 1, "cpus": 1, "p50_ms": N, ...}
    {"op": "media.process.sandboxed", ...}

"media.process" calls the pipeline in the benchmark's own process;
"media.process.sandboxed" goes through the service's ImageProcessor, one
decoder process (services.media.sandbox), as uploads do: the difference is
the price of the box (sending the bytes over, the answer back as JSON).

The one-core line runs in a child process pinned to one CPU with
VIPS_CONCURRENCY=1 (libvips reads it when it starts); the other with libvips'
default concurrency on every CPU. libvips' operation cache is off, so no run
is served from an earlier one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.media.pipeline import ProcessedImage

WIDTH, HEIGHT = 4000, 3000
WARMUP, RUNS = 2, 15


def make_photo(width: int = WIDTH, height: int = HEIGHT) -> bytes:
    import pyvips

    xy = pyvips.Image.xyz(width, height)
    base = (xy[0] * (255 / width)).bandjoin([xy[1] * (255 / height), (xy[0] + xy[1]) * (255 / (width + height))])
    # Luma noise shared by the bands (grain) plus a little per-band chroma noise.
    grain = pyvips.Image.gaussnoise(width, height, sigma=15, seed=1)
    chroma = pyvips.Image.gaussnoise(width, height, sigma=6, seed=2)
    photo = (base + grain.bandjoin([grain, grain]) + chroma.bandjoin([chroma * -1, chroma * 0.5])).cast("uchar")
    return photo.copy(interpretation="srgb").jpegsave_buffer(Q=90)


def timed(run: Callable[[], ProcessedImage]) -> tuple[list[float], ProcessedImage]:
    for _ in range(WARMUP):
        run()
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        result = run()
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times), result


def measure() -> list[dict]:
    import pyvips

    from services.media import pipeline
    from services.media.sandbox import ImageProcessor, SandboxConfig

    pyvips.cache_set_max(0)
    photo = make_photo()
    lines = [summary("media.process", photo, *timed(lambda: pipeline.process(photo)))]
    loop = asyncio.new_event_loop()
    processor = ImageProcessor(pipeline.DEFAULT_LIMITS, SandboxConfig(jobs=1, memory_bytes=2048 << 20,
                                                                      queue_timeout_s=60))
    loop.run_until_complete(processor.start())
    try:
        lines.append(summary("media.process.sandboxed", photo,
                             *timed(lambda: loop.run_until_complete(processor.process(photo, "body")))))
    finally:
        loop.run_until_complete(processor.close())
        loop.close()
    return lines


def summary(op: str, photo: bytes, times: list[float], result: ProcessedImage) -> dict:
    import pyvips

    return {
        "op": op,
        "input": f"jpeg {WIDTH}x{HEIGHT}",
        "input_bytes": len(photo),
        "output_bytes": sum(len(v.data) for v in result.variants),
        "vips_concurrency": pyvips.concurrency_get(),
        "cpus": len(os.sched_getaffinity(0)),
        "runs": RUNS,
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[min(len(times) - 1, round(0.95 * (len(times) - 1)))], 1),
        "max_ms": round(times[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        for line in measure():
            print(json.dumps(line), flush=True)
        return
    one_core = {**os.environ, "VIPS_CONCURRENCY": "1"}
    default = {k: v for k, v in os.environ.items() if k != "VIPS_CONCURRENCY"}
    first_cpu = min(os.sched_getaffinity(0))
    for env, cpus in ((one_core, {first_cpu}), (default, None)):
        subprocess.run([sys.executable, "-m", "services.media.bench", "--child"], env=env, check=True,
                       preexec_fn=(lambda c=cpus: os.sched_setaffinity(0, c)) if cpus else None)


if __name__ == "__main__":
    main()
