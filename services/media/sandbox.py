"""Decoding in a box: untrusted images are processed in child processes, never in the service's own.

A pool of `jobs` decoder processes (PICTOR_MEDIA_JOBS; services.media.decoder),
each limited to `memory_bytes` of address space (RLIMIT_AS,
PICTOR_MEDIA_MEMORY_LIMIT_MB). A job goes to an idle decoder over a socket and
its answer (JSON, never pickle) comes back the same way. What a hostile image
does to its decoder stays there:

  - it hangs: past the deadline (PICTOR_MEDIA_PROCESS_TIMEOUT, plus GRACE_S for
    libvips, which stops itself at the deadline, to say so) the decoder is
    killed: 400 IMAGE_TOO_COMPLEX;
  - it needs more memory than the limit: the allocation fails in the decoder
    (MemoryError, or libvips' out-of-memory error): 400 IMAGE_TOO_COMPLEX, and
    the decoder is replaced, its heap with it;
  - it crashes the decoder (a signal, an abort): 400 IMAGE_UNDECODABLE.

A killed or dead decoder is replaced at once, in the background; its slot
takes the next job as soon as the replacement is up. When every decoder is
busy a job waits at most `queue_timeout_s` (PICTOR_MEDIA_QUEUE_TIMEOUT_MS)
for one, then gets 503 UNAVAILABLE (PROCESSING_BUSY).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection

from services.common.config import REPO_ROOT
from services.common.errors import Unavailable
from services.media import decoder
from services.media.config import Limits
from services.media.edits import Recipe
from services.media.pipeline import ImageRejected, ProcessedImage

log = logging.getLogger(__name__)

# libvips kills its own evaluation at the deadline and reports it; a worker still silent this long
# after it is stuck somewhere that cannot stop itself (pillow-heif, a hostile loop) and is killed.
GRACE_S = 1.0
SPAWN_TIMEOUT_S = 60.0


class _Worker:
    """One decoder process (services.media.decoder) and our end of its socket. Methods block: the
    pool calls them in its threads."""

    def __init__(self, memory_bytes: int) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.media.decoder", str(theirs.fileno()), str(memory_bytes)],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, cwd=REPO_ROOT)
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        if not self.conn.poll(SPAWN_TIMEOUT_S):
            self.kill()
            raise RuntimeError(f"a decoder process did not start within {SPAWN_TIMEOUT_S:g} s")
        self.conn.recv_bytes()  # ready: imports done, limit set

    def run(self, data: bytes, limits: Limits, wait_s: float, recipe: Recipe | None = None,
            full_screen: bool = False) -> ProcessedImage | tuple[str, ...]:
        """The job's outcome (decoder.decode), or ("timeout",) / ("crashed",): the worker is unusable
        after those two."""
        try:
            job = {"limits": dataclasses.asdict(limits), "recipe": recipe.to_dict() if recipe else None,
                   "full_screen": full_screen}
            self.conn.send_bytes(json.dumps(job).encode())
            self.conn.send_bytes(data)
            if not self.conn.poll(wait_s):
                return ("timeout",)
            return decoder.decode(self.conn.recv_bytes(decoder.MAX_ANSWER_BYTES))
        except (EOFError, OSError, ValueError):
            return ("crashed",)

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait(5)
        self.conn.close()


# What the idle queue holds per slot: a worker, nothing yet (started on first use), or the start
# of a replacement under way.
_Slot = _Worker | None | asyncio.Task


@dataclass(frozen=True)
class SandboxConfig:
    jobs: int
    # RLIMIT_AS of each worker, bytes; 0: none.
    memory_bytes: int
    # How long a job may wait for a free worker before 503.
    queue_timeout_s: float


class ImageProcessor:
    """Runs pipeline.process (or pipeline.full_screen) in the pool's worker processes, one job per worker
    at a time."""

    def __init__(self, limits: Limits, config: SandboxConfig) -> None:
        self.limits = limits
        self.config = config
        # One thread per worker, to wait on its pipe: jobs never queue for the default executor.
        self._threads = ThreadPoolExecutor(max_workers=config.jobs, thread_name_prefix="decoder-pipe")
        self._idle: asyncio.Queue[_Slot] = asyncio.Queue()
        for _ in range(config.jobs):
            self._idle.put_nowait(None)  # started on first use, or by start()
        self._replacing: set[asyncio.Task] = set()
        # Every worker started and not yet killed, idle or busy: close() ends them all.
        self._workers: set[_Worker] = set()
        self._closed = False
        self._waiting = 0

    async def start(self) -> None:
        """Start every worker now rather than on first use."""
        slots = [await self._idle.get() for _ in range(self.config.jobs)]
        try:
            started = await asyncio.gather(*(self._ready(slot) for slot in slots))
        except BaseException:
            for _ in slots:
                self._idle.put_nowait(None)
            raise
        for worker in started:
            self._idle.put_nowait(worker)

    def busy(self) -> int:
        """Decoder processes working on a job now."""
        return self.config.jobs - self._idle.qsize()

    def waiting(self) -> int:
        """Jobs waiting for a free decoder."""
        return self._waiting

    async def process(self, data: bytes, field_name: str, recipe: Recipe | None = None,
                      full_screen: bool = False) -> ProcessedImage:
        self._waiting += 1
        try:
            slot = await asyncio.wait_for(self._idle.get(), self.config.queue_timeout_s)
        except TimeoutError:
            raise Unavailable(f"every image decoder is busy (PICTOR_MEDIA_JOBS={self.config.jobs}) and none came "
                              f"free within {self.config.queue_timeout_s:g} s: try again shortly",
                              reason="PROCESSING_BUSY") from None
        finally:
            self._waiting -= 1
        # Shielded: a caller that stops waiting must not leave the worker half used; the job
        # finishes (or is killed at its deadline) and hands the worker back either way.
        outcome = await asyncio.shield(asyncio.ensure_future(self._run(slot, data, recipe, full_screen)))
        return self._result(outcome, field_name)

    async def _run(self, slot: _Slot, data: bytes, recipe: Recipe | None,
                   full_screen: bool = False) -> ProcessedImage | tuple[str, ...]:
        worker = None
        healthy = False
        try:
            worker = await self._ready(slot)
            outcome = await self._blocking(worker.run, data, self.limits, self.limits.timeout_s + GRACE_S, recipe,
                                           full_screen)
            healthy = isinstance(outcome, ProcessedImage) or outcome[0] in ("rejected", "error")
            return outcome
        finally:
            if healthy:
                self._idle.put_nowait(worker)
            else:
                if worker is not None:
                    log.warning("decoder process %s killed and replaced (it hung, ran out of memory or crashed)",
                                worker.process.pid)
                self._idle.put_nowait(self._replacement(worker))

    async def _ready(self, slot: _Slot) -> _Worker:
        """The slot's worker, started (or restarted) when need be."""
        if isinstance(slot, asyncio.Task):
            try:
                slot = await slot
            except Exception:
                log.exception("starting a decoder process failed; trying again")
                slot = None
        if slot is not None and slot.alive():
            return slot
        if slot is not None:
            await self._kill(slot)
        return await self._spawn()

    def _replacement(self, broken: _Worker | None) -> asyncio.Task:
        """The broken worker killed and a fresh one started, in the background: the slot goes back at
        once, and the next job on it waits only for what is left of the start."""
        async def replace() -> _Worker | None:
            if broken is not None:
                await self._kill(broken)
            return None if self._closed else await self._spawn()

        task = asyncio.get_running_loop().create_task(replace())
        self._replacing.add(task)
        task.add_done_callback(self._replacing.discard)
        return task

    def _result(self, outcome: ProcessedImage | tuple[str, ...], field_name: str) -> ProcessedImage:
        if isinstance(outcome, ProcessedImage):
            return outcome
        kind = outcome[0]
        if kind == "rejected":
            raise ImageRejected(outcome[1], outcome[2], field_name)
        if kind == "timeout":
            raise ImageRejected("IMAGE_TOO_COMPLEX", f"the image took longer than {self.limits.timeout_s:g} s to "
                                "process", field_name)
        if kind == "memory":
            raise ImageRejected("IMAGE_TOO_COMPLEX", "the image needs more than "
                                f"{self.config.memory_bytes >> 20} MiB of memory to process", field_name)
        if kind == "error":
            raise RuntimeError(f"processing an image failed unexpectedly: {outcome[1]}")
        raise ImageRejected("IMAGE_UNDECODABLE", "the image could not be decoded: the decoder crashed on it "
                            "(a corrupt or hostile file)", field_name)

    async def _spawn(self) -> _Worker:
        worker = await self._blocking(_Worker, self.config.memory_bytes)
        self._workers.add(worker)
        return worker

    async def _kill(self, worker: _Worker) -> None:
        self._workers.discard(worker)
        await self._blocking(worker.kill)

    async def _blocking(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._threads, fn, *args)

    async def close(self) -> None:
        """Kill every worker, busy ones too (their callers get IMAGE_UNDECODABLE; we are shutting down)."""
        self._closed = True
        for worker in list(self._workers):
            worker.process.kill()
        for task in list(self._replacing):
            with contextlib.suppress(Exception):
                if (worker := await task) is not None:
                    self._workers.add(worker)
        for worker in list(self._workers):
            await self._kill(worker)
        self._threads.shutdown(wait=False, cancel_futures=True)
