"""Processing speed of a phone photo: ``python -m services.media.bench``.

Makes a realistic 12-megapixel JPEG (4000x3000, colour gradients under
photographic-grade noise at quality 90: about 6 MB, which does not compress
away like a flat test card) and times the whole pipeline on it (header
checks, shrink-on-load decode, eight variants, placeholder). Prints one JSON
line per configuration and way of running it::

    {"op": "media.process", "input": "jpeg 4000x3000", "vips_concurrency": 1, "cpus": 1, "p50_ms": N, ...}
    {"op": "media.process.sandboxed", ...}

Edits (`--edit` for only these): the same photo edited as POST
/v1/media/{id}:edit does it, from the original to all eight variants:
"media.edit" is a typical recipe (SQUARE, a filter, six adjustments; the
decoder may shrink on load), "media.edit.crop" a crop of a quarter of the
frame turned 90 degrees with the vignette filter and every adjustment (the
crop keeps full resolution, so no shrink on load: the worst case).

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
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.media.edits import Recipe
    from services.media.pipeline import ProcessedImage

WIDTH, HEIGHT = 4000, 3000
WARMUP, RUNS = 2, 20  # BENCH_RUNS overrides RUNS


def make_photo(width: int = WIDTH, height: int = HEIGHT) -> bytes:
    import pyvips

    xy = pyvips.Image.xyz(width, height)
    base = (xy[0] * (255 / width)).bandjoin([xy[1] * (255 / height), (xy[0] + xy[1]) * (255 / (width + height))])
    # Luma noise shared by the bands (grain) plus a little per-band chroma noise.
    grain = pyvips.Image.gaussnoise(width, height, sigma=15, seed=1)
    chroma = pyvips.Image.gaussnoise(width, height, sigma=6, seed=2)
    photo = (base + grain.bandjoin([grain, grain]) + chroma.bandjoin([chroma * -1, chroma * 0.5])).cast("uchar")
    return photo.copy(interpretation="srgb").jpegsave_buffer(Q=90)


def timed(run: Callable[[], ProcessedImage]) -> tuple[list[float], ProcessedImage, list[float]]:
    """Wall-clock times, the result, and this process's CPU times (all its threads) per run, in ms."""
    for _ in range(WARMUP):
        run()
    times, cpu = [], []
    for _ in range(int(os.environ.get("BENCH_RUNS", RUNS))):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = run()
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return sorted(times), result, sorted(cpu)


def edit_recipes() -> dict[str, Recipe]:
    from services.media.edits import Adjustments, Crop, Recipe

    return {
        "media.edit": Recipe(aspect="SQUARE", filter="clarendon",
                             adjustments=Adjustments(brightness=10, contrast=15, saturation=10, warmth=10,
                                                     vignette=20, sharpen=30)),
        "media.edit.crop": Recipe(crop=Crop(1000, 750, 2000, 1500), rotate=90, filter="toaster",
                                  adjustments=Adjustments(10, 15, 10, 10, 10, 20, 30)),
    }


def measure(only_edits: bool = False) -> Iterator[dict]:
    import pyvips

    from services.media import pipeline
    from services.media.config import Limits
    from services.media.sandbox import ImageProcessor, SandboxConfig

    pyvips.cache_set_max(0)
    photo = make_photo()
    jobs: dict[str, Recipe | None] = {} if only_edits else {"media.process": None}
    jobs.update(edit_recipes())
    # A generous deadline: on a starved machine a run may take many times its CPU time.
    limits = Limits(timeout_s=600)
    for op, recipe in jobs.items():
        yield summary(op, photo, *timed(lambda r=recipe: pipeline.process(photo, limits, r)))
    loop = asyncio.new_event_loop()
    processor = ImageProcessor(limits, SandboxConfig(jobs=1, memory_bytes=2048 << 20,
                                                                    queue_timeout_s=60))
    loop.run_until_complete(processor.start())
    try:
        for op, recipe in jobs.items():
            # The work is in the decoder process: this one's CPU time says nothing of it.
            times, result, _ = timed(lambda r=recipe: loop.run_until_complete(processor.process(photo, "body", r)))
            yield summary(f"{op}.sandboxed", photo, times, result)
    finally:
        loop.run_until_complete(processor.close())
        loop.close()


def summary(op: str, photo: bytes, times: list[float], result: ProcessedImage,
            cpu: list[float] | None = None) -> dict:
    import pyvips

    line = {
        "op": op,
        "input": f"jpeg {WIDTH}x{HEIGHT}",
        "input_bytes": len(photo),
        "output_bytes": sum(len(v.data) for v in result.variants),
        "vips_concurrency": pyvips.concurrency_get(),
        "cpus": len(os.sched_getaffinity(0)),
        "runs": len(times),
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[min(len(times) - 1, round(0.95 * (len(times) - 1)))], 1),
        "p99_ms": round(_p99(times), 1),
        "max_ms": round(times[-1], 1),
    }
    if cpu:
        # On a loaded machine wall-clock time counts the waits for a core; CPU time does not.
        line.update(cpu_p50_ms=round(statistics.median(cpu), 1), cpu_p99_ms=round(_p99(cpu), 1))
    return line


def _p99(times: list[float]) -> float:
    # Of 20 runs the 99th percentile is interpolated between the slowest two: read it as "about the max".
    return statistics.quantiles(times, n=100, method="inclusive")[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--edit", action="store_true", help="only the photo edits (POST /v1/media/{id}:edit)")
    parser.add_argument("--one-core", action="store_true", help="only the one-core configuration")
    args = parser.parse_args()
    if args.child:
        for line in measure(args.edit):
            print(json.dumps(line), flush=True)
        return
    one_core = {**os.environ, "VIPS_CONCURRENCY": "1"}
    default = {k: v for k, v in os.environ.items() if k != "VIPS_CONCURRENCY"}
    first_cpu = min(os.sched_getaffinity(0))
    configurations = ((one_core, {first_cpu}), (default, None))
    for env, cpus in configurations[:1] if args.one_core else configurations:
        subprocess.run([sys.executable, "-m", "services.media.bench", "--child", *(["--edit"] if args.edit else [])],
                       env=env, check=True,
                       preexec_fn=(lambda c=cpus: os.sched_setaffinity(0, c)) if cpus else None)


if __name__ == "__main__":
    main()
