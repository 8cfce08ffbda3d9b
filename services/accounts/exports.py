"""Data export (issue 19, "Your data"): `POST /v1/users/me:export` and the archive's signed URL.

The request answers at once with an export job in the user's shard (PENDING); accounts'
exporter worker (services.accounts.export_worker) takes it (RUNNING, with a lease), asks
every owner for the user's rows over their mesh-only ExportUserData and media's
ReadOriginal, and writes a zip into the data folder (`exports/<user_id>/<export_id>.zip`,
0600). `GET /v1/users/me/exports/{id}` shows the state and progress and, once READY, a
download URL signed for PICTOR_EXPORT_URL_TTL seconds: the signature (HMAC over the export
id and the expiry, key only accounts holds) is the capability, so a link works without a
token, as media's do. One export at a time per user: while one is PENDING or RUNNING a
new request returns it (a partial unique index says so). An archive is deleted
PICTOR_EXPORT_KEEP_DAYS after it was made (EXPIRED).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import redis.asyncio as aioredis
from psycopg.rows import dict_row

from services.common.config import env_int
from services.common.db import Database, shard_schema
from services.common.dependencies import REDIS_ERRORS
from services.common.errors import NotFound
from services.common.files import write_atomically
from services.common.ids import IdAllocator, shard_of

PENDING, RUNNING, READY, FAILED, EXPIRED = "PENDING", "RUNNING", "READY", "FAILED", "EXPIRED"
# accounts' Redis key: a new job's id is pushed here so an idle exporter wakes at once.
WAKE_KEY = "accounts:exports:wake"
KEY_BYTES = 32
COLUMNS = "id, user_id, state, items_done, current_step, created_at, finished_at, expires_at, size_bytes, error"


@dataclass(frozen=True)
class ExportConfig:
    # Where the archives live: <data dir>/exports/<user_id>/<export_id>.zip.
    root: Path
    public_url: str
    url_ttl_s: int
    keep_s: int
    max_bytes: int
    # A RUNNING job whose worker stopped renewing its lease is taken again after it.
    lease_s: int = 120


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise SystemExit(f"{name} must be above 0, got {raw!r}")
    return value


def load_export_config(settings) -> ExportConfig:
    return ExportConfig(
        root=settings.data_dir / "exports",
        public_url=settings.public_url,
        url_ttl_s=env_int("PICTOR_EXPORT_URL_TTL", 600),
        keep_s=int(env_float("PICTOR_EXPORT_KEEP_DAYS", 7.0) * 86_400),
        max_bytes=env_int("PICTOR_EXPORT_MAX_BYTES", 60 * 1024 * 1024),
    )


def archive_path(root: Path, user_id: int, export_id: int) -> Path:
    return root / str(user_id) / f"{export_id}.zip"


@dataclass(frozen=True)
class ExportJob:
    id: int
    user_id: int
    state: str
    items_done: int
    current_step: str
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime | None
    size_bytes: int
    error: str
    download_url: str = ""


class PostgresExports:
    """The `exports` table, in each user's shard."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def _one(self, shard: int, sql: str, params: tuple) -> ExportJob | None:
        async with self.db.for_shard(shard).connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(sql, params)
            row = await cur.fetchone()
        return ExportJob(**row) if row else None

    async def create(self, export_id: int, user_id: int) -> ExportJob:
        """A new PENDING job, or the user's PENDING or RUNNING one."""
        s = shard_schema(shard_of(user_id))
        created = await self._one(shard_of(user_id), f"INSERT INTO {s}.exports (id, user_id, state) "
                                  f"VALUES (%s, %s, 'PENDING') ON CONFLICT DO NOTHING RETURNING {COLUMNS}",
                                  (export_id, user_id))
        if created:
            return created
        running = await self._one(shard_of(user_id), f"SELECT {COLUMNS} FROM {s}.exports WHERE user_id = %s "
                                  "AND state IN ('PENDING', 'RUNNING')", (user_id,))
        if running is None:  # finished between the two statements: try once more
            return await self.create(export_id, user_id)
        return running

    async def get(self, export_id: int) -> ExportJob | None:
        if not self.db.holds(export_id):
            return None
        return await self._one(shard_of(export_id), f"SELECT {COLUMNS} FROM {shard_schema(shard_of(export_id))}"
                               ".exports WHERE id = %s", (export_id,))

    async def claim(self, shard: int, lease_s: int) -> ExportJob | None:
        """Take the oldest PENDING job of `shard`, or a RUNNING one whose lease is past."""
        s = shard_schema(shard)
        return await self._one(shard, (
            f"UPDATE {s}.exports SET state = 'RUNNING', attempts = attempts + 1, "
            "leased_until = now() + make_interval(secs => %s) WHERE id = ("
            f"SELECT id FROM {s}.exports WHERE state = 'PENDING' OR (state = 'RUNNING' AND leased_until < now()) "
            f"ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING {COLUMNS}"), (lease_s,))

    async def progress(self, export_id: int, items_done: int, step: str, lease_s: int) -> None:
        async with self.db.for_shard(shard_of(export_id)).connection() as conn:
            await conn.execute(
                f"UPDATE {shard_schema(shard_of(export_id))}.exports SET items_done = %s, current_step = %s, "
                "leased_until = now() + make_interval(secs => %s) WHERE id = %s AND state = 'RUNNING'",
                (items_done, step, lease_s, export_id))

    async def finish(self, export_id: int, state: str, size_bytes: int, error: str, keep_s: int) -> None:
        async with self.db.for_shard(shard_of(export_id)).connection() as conn:
            await conn.execute(
                f"UPDATE {shard_schema(shard_of(export_id))}.exports SET state = %s, size_bytes = %s, error = %s, "
                "finished_at = now(), expires_at = CASE WHEN %s = 'READY' THEN now() + make_interval(secs => %s) END, "
                "current_step = '', leased_until = NULL WHERE id = %s AND state = 'RUNNING'",
                (state, size_bytes, error, state, keep_s, export_id))

    async def expire(self, shard: int) -> list[tuple[int, int]]:
        """Mark READY jobs past their expiry EXPIRED: their (user_id, export_id), whose files go."""
        async with self.db.for_shard(shard).connection() as conn:
            cur = await conn.execute(
                f"UPDATE {shard_schema(shard)}.exports SET state = 'EXPIRED' WHERE state = 'READY' "
                "AND expires_at < now() RETURNING user_id, id")
            return [(u, e) for u, e in await cur.fetchall()]


def load_or_create_key(path: Path) -> bytes:
    """The download URLs' HMAC key (32 random bytes, 0600), made on first start; link(2) so two
    processes starting at once agree on one."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        staged = path.with_name(f".{path.name}.{os.getpid()}.new")
        write_atomically(staged, os.urandom(KEY_BYTES), mode=0o600)
        try:
            os.link(staged, path)
        except FileExistsError:
            pass
        finally:
            staged.unlink(missing_ok=True)
    return path.read_bytes()


class ArchiveSigner:
    def __init__(self, key: bytes, ttl_s: int) -> None:
        self.key, self.ttl_s = key, ttl_s

    def signature(self, export_id: int, exp: int) -> str:
        mac = hmac.new(self.key, f"export:{export_id}:{exp}".encode(), hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def sign(self, export_id: int, now: float) -> tuple[int, str]:
        exp = int(now) + self.ttl_s
        return exp, self.signature(export_id, exp)

    def valid(self, export_id: int, exp: int, sig: str, now: float) -> bool:
        # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, so a 500).
        return exp >= now and hmac.compare_digest(self.signature(export_id, exp).encode(), (sig or "").encode())


def _not_found(export_id: int) -> NotFound:
    return NotFound(f"no export {export_id}", reason="EXPORT_NOT_FOUND")


@dataclass
class ExportService:
    repo: PostgresExports
    ids: IdAllocator
    signer: ArchiveSigner
    config: ExportConfig
    redis: aioredis.Redis

    async def create(self, user_id: int) -> ExportJob:
        job = await self.repo.create(self.ids.new_id(shard_of(user_id)), user_id)
        if job.state == PENDING:
            # Redis away: the worker's sweep finds the job within SWEEP_EVERY_S anyway.
            with contextlib.suppress(*REDIS_ERRORS):
                await self.redis.lpush(WAKE_KEY, job.id)
                await self.redis.ltrim(WAKE_KEY, 0, 999)
        return job

    async def get(self, user_id: int, export_id: int) -> ExportJob:
        job = await self.repo.get(export_id)
        if job is None or job.user_id != user_id:
            raise _not_found(export_id)
        if job.state == READY and job.expires_at is not None and job.expires_at < datetime.now(UTC):
            # Past its time; the worker's sweep deletes the file within a minute.
            return ExportJob(**{**job.__dict__, "state": EXPIRED})
        if job.state != READY:
            return job
        exp, sig = self.signer.sign(job.id, time.time())
        url = f"{self.config.public_url}/v1/exports/{job.id}/archive?exp={exp}&sig={sig}"
        return ExportJob(**{**job.__dict__, "download_url": url})

    async def archive(self, export_id: int, exp: int, sig: str) -> tuple[bytes, str]:
        """The zip and its file name. The signature first: without it nothing is revealed."""
        if not self.signer.valid(export_id, exp, sig, time.time()):
            raise _not_found(export_id)
        job = await self.repo.get(export_id)
        if job is None or job.state != READY or (job.expires_at and job.expires_at < datetime.now(UTC)):
            raise _not_found(export_id)
        try:
            data = await asyncio.to_thread(archive_path(self.config.root, job.user_id, job.id).read_bytes)
        except FileNotFoundError:
            raise _not_found(export_id) from None
        return data, f"pictor-export-{job.created_at:%Y%m%d}-{job.id}.zip"


