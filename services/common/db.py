"""PostgreSQL: logical shards as schemas, mapped to physical databases by config.

Logical shard N is schema `shard_NNNN`; PICTOR_SHARD_MAP sends ranges of
logical shards to databases. Unsharded tables live in schema `pictor_global` of
the main database. Ids carry their logical shard, so moving schemas between
databases (editing the map) never changes an id.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg_pool import AsyncConnectionPool

from services.common.config import Settings

log = logging.getLogger(__name__)

GLOBAL_SCHEMA = "pictor_global"
MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"


def shard_schema(shard: int) -> str:
    if not 0 <= shard <= 8191:
        raise ValueError(f"logical shard {shard} is outside 0..8191")
    return f"shard_{shard:04d}"


class Database:
    """One async connection pool per physical database, addressed by logical shard."""

    def __init__(self, settings: Settings, *, max_size: int = 10) -> None:
        self.settings = settings
        urls = {settings.database_url, *(r.url for r in settings.shard_map)}
        self._pools = {
            url: AsyncConnectionPool(url, min_size=1, max_size=max_size, open=False, kwargs={"autocommit": True})
            for url in urls
        }

    async def open(self) -> None:
        for pool in self._pools.values():
            await pool.open(wait=True, timeout=30)

    async def close(self) -> None:
        for pool in self._pools.values():
            await pool.close()

    @property
    def logical_shards(self) -> int:
        return self.settings.logical_shards

    def for_shard(self, shard: int) -> AsyncConnectionPool:
        return self._pools[self.settings.database_for_shard(shard)]

    @property
    def global_pool(self) -> AsyncConnectionPool:
        return self._pools[self.settings.database_url]


# --- migrations -------------------------------------------------------------


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(scope: str) -> list[Migration]:
    return [Migration(p.stem, p.read_text()) for p in sorted((MIGRATIONS_DIR / scope).glob("*.sql"))]


def _apply(conn: psycopg.Connection, schema: str, migrations: list[Migration]) -> int:
    """Apply the pending migrations to one schema; returns how many ran."""
    applied = 0
    with conn.transaction():
        # One migrator at a time per schema, across processes.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (schema,))
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
            "version text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = dict(conn.execute(f'SELECT version, checksum FROM "{schema}".schema_migrations').fetchall())
        for m in migrations:
            if m.version in done:
                if done[m.version] != m.checksum:
                    raise RuntimeError(f"migration {m.version} changed after it was applied to {schema}")
                continue
            conn.execute(f'SET LOCAL search_path TO "{schema}"')
            conn.execute(m.sql)
            conn.execute(
                f'INSERT INTO "{schema}".schema_migrations (version, checksum) VALUES (%s, %s)',
                (m.version, m.checksum),
            )
            applied += 1
    return applied


def ensure_database(url: str) -> None:
    """Create the database named in `url` if the server lacks it (embedded stack)."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    name = info.get("dbname") or "postgres"
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


def migrate(settings: Settings) -> int:
    """Apply pending migrations to the global schema and every logical shard."""
    applied = 0
    for url in {settings.database_url, *(r.url for r in settings.shard_map)}:
        ensure_database(url)
    with psycopg.connect(settings.database_url) as conn:
        applied += _apply(conn, GLOBAL_SCHEMA, load_migrations("global"))
    shard_migrations = load_migrations("shard")
    for r in settings.shard_map:
        with psycopg.connect(r.url) as conn:
            for shard in range(r.first, r.last + 1):
                applied += _apply(conn, shard_schema(shard), shard_migrations)
    log.info("migrations: %d applied", applied)
    return applied
