"""Video benchmark (`make bench-video`): a 30 s 1080p30 clip with sound → both renditions, HLS and the
poster (every image size and a blurhash), exactly as the transcoder does it: one child process
(services.media.videobox). Prints each run's wall time and real-time factor (seconds of video per
second of work), and the load average, since the figure depends on what else the machine runs.

BENCH_SECONDS (30), BENCH_RUNS (3), PICTOR_VIDEO_PRESET (veryfast). The clip (moving colour bars and a
tone, made with PyAV) is made once, untimed, and kept in build/bench/.
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from services.common.config import REPO_ROOT, env_int, env_str
from services.media import testclips, videobox
from services.media.config import MiB, VideoLimits

GOAL_S = 20.0


def source(seconds: int) -> Path:
    path = REPO_ROOT / "build" / "bench" / f"bars-1080p30-{seconds}s.mp4"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"making the clip ({seconds} s, 1920x1080, 30 fps, AAC tone) in {path} ...", flush=True)
        partial = path.with_suffix(".part.mp4")
        testclips.clip(partial, seconds=seconds, width=1920, height=1080, fps=30, audio=True)
        partial.rename(path)
    return path


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def one_run(clip: Path, limits: VideoLimits) -> tuple[float, float, dict]:
    out = Path(tempfile.mkdtemp(prefix="pictor-video-bench-"))
    try:
        began, cpu = time.perf_counter(), children_cpu_s()
        outcome = await videobox.run_job("transcode", {"src": str(clip), "out": str(out)}, limits, 600, 3072 * MiB)
        wall, cpu = time.perf_counter() - began, children_cpu_s() - cpu
        if outcome.kind != "ok":
            raise SystemExit(f"the transcode failed: {outcome.kind} {outcome.data}")
        sizes = {p.name: p.stat().st_size for p in out.iterdir()}
        return wall, cpu, {"outcome": outcome.data, "sizes": sizes}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    seconds = env_int("BENCH_SECONDS", 30)
    runs = env_int("BENCH_RUNS", 3)
    limits = VideoLimits(max_duration_s=max(90.0, seconds + 1), preset=env_str("PICTOR_VIDEO_PRESET", "veryfast"))
    clip = source(seconds)
    print(f"video bench: {clip.name} ({clip.stat().st_size / MiB:.1f} MiB) → 720p + 360p H.264/AAC MP4, HLS, "
          f"poster; preset {limits.preset}, {os.cpu_count()} cores", flush=True)
    walls = []
    for n in range(1, runs + 1):
        load = os.getloadavg()
        wall, cpu, found = asyncio.run(one_run(clip, limits))
        walls.append(wall)
        data = found["outcome"]
        renditions = ", ".join(f"{r['label']}: {r['width']}x{r['height']} "
                               f"{found['sizes'][str(r['label']) + '.mp4'] / MiB:.1f} MiB"
                               for r in data["renditions"])
        print(f"run {n}: {wall:.1f} s wall, {cpu:.1f} s CPU (the child's, both cores), real-time factor "
              f"{seconds / wall:.2f}x "
              f"({data['duration_ms'] / 1000:.1f} s of video; {renditions}); "
              f"load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    median = statistics.median(walls)
    print(f"median {median:.1f} s (min {min(walls):.1f}, max {max(walls):.1f}) for {seconds} s of 1080p30: "
          f"real-time factor {seconds / median:.2f}x; goal ≤ {GOAL_S:g} s: {'met' if median <= GOAL_S else 'missed'}; "
          f"load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
