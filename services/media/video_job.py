"""A video child process: `python -m services.media.video_job probe|transcode JOB_JSON MEMORY_BYTES`.

Started by services.media.videobox for one job and gone after it: it limits its own address
space (RLIMIT_AS), asks to be killed when its parent dies, does the job and prints JSON lines
on stdout: {"progress": 0.4} while transcoding, then one outcome:
  {"kind": "ok", ...} | {"kind": "rejected", "reason", "message", "limit"} | {"kind": "error", "what"}.
The parent kills it at its deadline. JSON, never pickle: the parent must not unpickle what a
process handling hostile bytes wrote.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import resource
import signal
import sys
import time
from pathlib import Path

PR_SET_PDEATHSIG = 1


def _say(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def run(mode: str, job: dict) -> dict:
    from services.media import pipeline, video
    from services.media.config import VideoLimits

    limits = VideoLimits(**job["limits"])
    try:
        if mode == "probe":
            found = video.probe(job["src"])
            video.check(found, limits)
            return {"kind": "ok", "probe": found.to_dict()}
        deadline = time.monotonic() + float(job["timeout_s"])
        last = [0.0]

        def progress(share: float) -> None:
            if share - last[0] >= 0.05:
                last[0] = share
                _say({"progress": round(share, 3)})

        out = Path(job["out"])
        result = video.transcode(job["src"], out, limits, deadline, progress)
        # The poster goes through the photo pipeline: every image size and a blurhash.
        poster = pipeline.process(result.poster_jpeg)
        images = []
        for v in poster.variants:
            name = f"poster-{v.size}.{v.format}"
            (out / name).write_bytes(v.data)
            images.append({"size": v.size, "format": v.format, "width": v.width, "height": v.height, "file": name})
        return {"kind": "ok", "duration_ms": result.duration_ms, "width": result.width, "height": result.height,
                "has_audio": result.has_audio, "placeholder": poster.placeholder, "images": images,
                "renditions": [dataclasses.asdict(r) for r in result.renditions]}
    except video.VideoRejected as rejected:
        return {"kind": "rejected", "reason": rejected.reason, "message": rejected.message,
                "limit": rejected.metadata.get("limit", "")}
    except pipeline.ImageRejected as rejected:
        return {"kind": "rejected", "reason": "CORRUPT_VIDEO", "message": f"its poster frame: {rejected.message}",
                "limit": ""}
    except MemoryError:
        return {"kind": "memory", "what": "memory"}


def main() -> None:
    mode, job, memory_bytes = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    try:
        outcome = run(mode, job)
    except Exception as error:  # noqa: BLE001 - our bug, or an allocation that failed: the parent decides
        outcome = {"kind": "memory" if "memory" in str(error).lower() else "error", "what": repr(error)}
    _say(outcome)


if __name__ == "__main__":
    main()
