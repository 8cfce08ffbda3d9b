"""Video jobs in a box: each probe or transcode runs in a child process of its own
(services.media.video_job) under a memory limit and a wall-clock deadline, so what a hostile file
does to FFmpeg (a hang, a huge allocation, a crash) ends that process and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from services.common.config import REPO_ROOT
from services.media.config import VideoLimits
from services.media.video import VideoRejected

log = logging.getLogger(__name__)
MAX_LINE = 1 << 20


@dataclass(frozen=True)
class Outcome:
    """What a child said: kind "ok" (with `data`), "rejected" (reason, message, limit), or a failure of
    the box itself: "timeout", "memory", "crashed", "error"."""

    kind: str
    data: dict

    def rejection(self, limits: VideoLimits, memory_bytes: int, timeout_s: float) -> VideoRejected:
        """The outcome as the reason a video is refused (for anything but "ok")."""
        if self.kind == "rejected":
            return VideoRejected(self.data["reason"], self.data["message"], limit=self.data.get("limit", ""))
        if self.kind == "timeout":
            return VideoRejected("VIDEO_TOO_COMPLEX", f"the video took longer than {timeout_s:g} s to process")
        if self.kind == "memory":
            return VideoRejected("VIDEO_TOO_COMPLEX", f"the video needs more than {memory_bytes >> 20} MiB of "
                                 "memory to process")
        if self.kind == "crashed":
            return VideoRejected("VIDEO_UNDECODABLE", "the decoder crashed on the video (a corrupt or hostile file)")
        return VideoRejected("VIDEO_UNDECODABLE", f"processing the video failed: {self.data.get('what', '')}")


async def run_job(mode: str, job: dict, limits: VideoLimits, timeout_s: float, memory_bytes: int,
                  progress: Callable[[float], object] = lambda share: None) -> Outcome:
    """Run one job in a fresh child; killed at `timeout_s`."""
    payload = json.dumps({**job, "limits": dataclasses.asdict(limits), "timeout_s": timeout_s})
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.media.video_job", mode, payload, str(memory_bytes),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, cwd=REPO_ROOT, limit=MAX_LINE)
    outcome: Outcome | None = None

    async def read() -> None:
        nonlocal outcome
        assert child.stdout is not None
        while line := await child.stdout.readline():
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "progress" in message:
                progress(float(message["progress"]))
            elif "kind" in message:
                outcome = Outcome(str(message["kind"]), message)

    try:
        # A little over the child's own deadline: it stops itself between frames and says so.
        await asyncio.wait_for(asyncio.gather(read(), child.wait()), timeout_s + 5)
    except TimeoutError:
        return Outcome("timeout", {})
    finally:
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()
    if outcome is None:
        log.warning("a video child (%s) ended with %s and no answer", mode, child.returncode)
        return Outcome("crashed", {})
    return outcome


async def probe(path: Path, limits: VideoLimits, timeout_s: float, memory_bytes: int) -> Outcome:
    return await run_job("probe", {"src": str(path)}, limits, timeout_s, memory_bytes)
