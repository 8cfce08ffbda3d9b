"""Password hashing in a bounded pool: every argon2 call of accounts goes through `PasswordPool`.

Argon2 is costly on purpose, and a burst of sign-ins must not take the machine
from everything else. So: `workers` threads (PICTOR_PASSWORD_WORKERS, default
half the cores, at least one) hash, argon2-cffi releasing the GIL, so the
event loop keeps serving meanwhile; a call waits at most `max_wait_s`
(PICTOR_PASSWORD_QUEUE_TIMEOUT_MS) for a free worker, and one that cannot
start in time is refused at once: 503 UNAVAILABLE, reason PASSWORD_HASHING_BUSY,
with Retry-After (services.common.admission). The workers run at a lower CPU
priority (PICTOR_PASSWORD_NICE, default 10: a Linux thread has a nice value of
its own), so on a busy machine hashing takes the CPU the requests leave over
rather than a share of it: a storm of sign-ins slows sign-in, not the feed.

Parameters: argon2id with m=19 MiB, t=2, p=1, OWASP's first recommendation.
argon2-cffi's default (RFC 9106's low-memory choice, m=64 MiB, t=3, p=4)
costs ~220 ms of CPU over four threads per hash; this costs ~30 ms on one
core. Hashes made with other parameters still verify, and are replaced by one
made with these at the next successful sign-in (check_needs_rehash).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.common.admission import Admission
from services.common.config import env_int

T = TypeVar("T")

TIME_COST, MEMORY_COST_KIB, PARALLELISM = 2, 19 * 1024, 1
BUSY = "PASSWORD_HASHING_BUSY"


def password_hasher() -> PasswordHasher:
    """The parameters new hashes are made with (and old ones are rehashed to)."""
    return PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_COST_KIB, parallelism=PARALLELISM)


@dataclass(frozen=True)
class PasswordPoolConfig:
    workers: int
    max_wait_s: float
    nice: int = 0  # the workers' nice value (0: the process's own)


def load_password_pool_config() -> PasswordPoolConfig:
    return PasswordPoolConfig(
        workers=max(1, env_int("PICTOR_PASSWORD_WORKERS", max(1, (os.cpu_count() or 1) // 2))),
        max_wait_s=max(0, env_int("PICTOR_PASSWORD_QUEUE_TIMEOUT_MS", 1000)) / 1000,
        nice=min(19, max(0, env_int("PICTOR_PASSWORD_NICE", 10))),
    )


def lower_priority(nice: int) -> None:
    """Give the calling thread the nice value `nice` when that lowers its priority. Linux only
    (elsewhere the call would name a process, not the thread); without the right, it stays."""
    if nice <= 0 or sys.platform != "linux":
        return
    thread = threading.get_native_id()
    with contextlib.suppress(OSError):
        if os.getpriority(os.PRIO_PROCESS, thread) < nice:
            os.setpriority(os.PRIO_PROCESS, thread, nice)


@dataclass(frozen=True)
class Verified:
    ok: bool
    # The password hashed anew when the stored hash used other parameters (and the password matched).
    rehashed: str | None = None


class PasswordPool:
    def __init__(self, config: PasswordPoolConfig, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or password_hasher()
        self._threads = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="argon2",
                                           initializer=lower_priority, initargs=(config.nice,))
        # Hashed once now: it keeps "no such user" as slow as "wrong password", and times a first turn.
        began = time.perf_counter()
        self.dummy_hash = self.hasher.hash(os.urandom(12).hex())
        self.admission = Admission(
            config.workers, config.max_wait_s, time.perf_counter() - began, reason=BUSY,
            message=f"too many sign-ins at once: every password worker (PICTOR_PASSWORD_WORKERS={config.workers}) "
                    f"is busy and none comes free within {config.max_wait_s:g} s "
                    f"(PICTOR_PASSWORD_QUEUE_TIMEOUT_MS); try again after Retry-After seconds")

    async def hash(self, password: str) -> str:
        return await self._run(self.hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> Verified:
        """Whether `password` matches `stored` (None: no such user; a dummy hash is checked all the same)."""
        return await self._run(self._verify, stored, password)

    def _verify(self, stored: str | None, password: str) -> Verified:
        try:
            self.hasher.verify(stored or self.dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return Verified(False)
        if not stored:
            return Verified(False)
        return Verified(True, self.hasher.hash(password) if self.hasher.check_needs_rehash(stored) else None)

    async def _run(self, work: Callable[..., T], *args: object) -> T:
        await self.admission.enter()
        loop = asyncio.get_running_loop()
        held_s = [self.admission.turn_s]

        def timed() -> T:
            began = time.perf_counter()
            try:
                return work(*args)
            finally:
                held_s[0] = time.perf_counter() - began

        def done(_job: Future) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody is waiting
                loop.call_soon_threadsafe(self.admission.leave, held_s[0])

        try:
            job = self._threads.submit(timed)
        except BaseException:
            self.admission.leave(held_s[0])
            raise
        # The slot is freed when the hashing ends (or never starts), not when a caller that gave up
        # stops waiting: the worker stays busy until then.
        job.add_done_callback(done)
        return await asyncio.wrap_future(job)

    async def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
