"""PostgreSQL: logical shards as schemas, mapped to physical databases by config.

Logical shard N is schema `shard_NNNN`; PICTOR_SHARD_MAP sends ranges of
logical shards to databases. Unsharded tables live in schema `pictor_global` of
the main database. Ids carry their logical shard, so moving schemas between
databases (editing the map) never changes an id.

A shard moved while the platform runs (services.mesh.shards) has a row in
`pictor_global.shard_placements`: every process reads them at start and every
PICTOR_SHARD_MAP_POLL_MS (500), and routes by the map with them applied.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool

from hotpath.ids import shard_of
from services.common.config import Settings, env_int, with_placements
from services.common.dependencies import DATABASE_ERRORS, Dependency, ignore_outcome, postgres_dependency
from services.common.metrics import database_label

log = logging.getLogger(__name__)
T = TypeVar("T")

GLOBAL_SCHEMA = "pictor_global"
MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"


# How long a call waits for a pooled connection before it answers UNAVAILABLE: longer than any
# healthy wait, short enough that an outage is an answer within the 2 s the gateway promises.
CHECKOUT_TIMEOUT_S = 1.5
# libpq's minimum.
CONNECT_TIMEOUT_S = 2
PLACEMENTS_SQL = f"SELECT shard, url FROM {GLOBAL_SCHEMA}.shard_placements"


def shard_schema(shard: int) -> str:
    if not 0 <= shard <= 8191:
        raise ValueError(f"logical shard {shard} is outside 0..8191")
    return f"shard_{shard:04d}"


def placements_poll_s() -> float:
    """How often every process reads shard_placements (PICTOR_SHARD_MAP_POLL_MS, 500)."""
    return env_int("PICTOR_SHARD_MAP_POLL_MS", 500) / 1000


class Database:
    """One async connection pool per physical database, addressed by logical shard."""

    def __init__(self, settings: Settings, *, max_size: int = 10, checkout_timeout_s: float = CHECKOUT_TIMEOUT_S) -> None:
        """`checkout_timeout_s`: how long a caller waits for a free connection; a request path keeps
        the short default, an offline job (a rebuild) that queues many writers behind a few
        connections waits longer."""
        self.settings = settings
        # PICTOR_SHARD_MAP; self.settings.shard_map is it with the moved shards applied.
        self.configured_map = settings.shard_map
        self.max_size = max_size
        self.checkout_timeout_s = checkout_timeout_s
        self._pools = {url: self._new_pool(url) for url in settings.database_urls}
        self._retired: set[asyncio.Task] = set()
        self._placements_poll_s = placements_poll_s()
        self._following: asyncio.Task | None = None
        # Set (and replaced) when the map changes: what a long-running reader per database waits on.
        self._map_changed = asyncio.Event()

    def _new_pool(self, url: str) -> AsyncConnectionPool:
        return AsyncConnectionPool(url, min_size=1, max_size=self.max_size, open=False, timeout=self.checkout_timeout_s,
                                   kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S})

    async def open(self, wait: bool = True) -> None:
        """Open the pools and follow the moved shards; `wait=False` returns at once (a server not up yet
        is the health watcher's news), `wait=True` once the moved shards are known too."""
        for pool in self._pools.values():
            await pool.open(wait=wait, timeout=30)
        if wait:
            await self.reload_placements()
        if self._following is None:
            self._following = asyncio.create_task(self._follow_placements(), name="shard-placements")

    async def reload_placements(self) -> bool:
        """Read where the moved shards live now; whether the map changed. A database new to this
        process gets a pool."""
        async with self.global_pool.connection() as conn:
            try:
                rows = await (await conn.execute(PLACEMENTS_SQL)).fetchall()
            except psycopg.errors.UndefinedTable:  # not migrated yet: nothing was moved
                return False
        shard_map = with_placements(self.configured_map, dict(rows))
        if shard_map == self.settings.shard_map:
            return False
        moved = replace(self.settings, shard_map=shard_map)
        # Pools first, the map after: a request that reads the new map finds its database's pool open.
        for url in moved.database_urls:
            if url not in self._pools:
                pool = self._new_pool(url)
                await pool.open(wait=False)
                self._pools[url] = pool
        self.settings = moved
        log.warning("shard map changed: %s", ", ".join(f"{r.first}-{r.last} at {database_label(r.url)}"
                                                        for r in shard_map))
        self._map_changed.set()
        self._map_changed = asyncio.Event()
        return True

    def map_changed(self) -> asyncio.Event:
        """An event set when the shard map next changes."""
        return self._map_changed

    async def _follow_placements(self) -> None:
        while True:
            try:
                await self.reload_placements()
            except DATABASE_ERRORS as error:  # the global database away: the map stands meanwhile
                log.debug("shard placements not read: %s", error)
            except Exception:
                log.exception("reading the shard placements failed")
            await asyncio.sleep(self._placements_poll_s)

    async def ready(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for every pool's first connections; False if a database did not answer."""
        try:
            for pool in self._pools.values():
                await pool.wait(timeout=timeout_s)
            await self.reload_placements()  # before the first call routes by the map
        except DATABASE_ERRORS:  # PoolTimeout among them
            return False
        return True

    async def close(self) -> None:
        if self._following is not None:
            self._following.cancel()
            self._following.add_done_callback(ignore_outcome)
            self._following = None
        for pool in self._pools.values():
            await pool.close()
        for task in list(self._retired):
            await task

    async def renew(self, url: str) -> None:
        """Replace the pool of `url` with a fresh one: after an outage its connections are broken, and
        the old pool's reconnection backs off for longer than a recovery may take. Calls still holding
        the old pool's connections finish on them; the old pool closes in the background."""
        old, self._pools[url] = self._pools[url], self._new_pool(url)
        await self._pools[url].open(wait=False)
        task = asyncio.create_task(old.close(timeout=10))
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    def dependencies(self) -> list[Dependency]:
        """One health dependency per physical database; its pool is renewed when it comes back."""
        def renewing(url: str):
            return lambda: self.renew(url)

        return [postgres_dependency(url, recovered=renewing(url)) for url in self._pools]

    def pools(self) -> dict[str, AsyncConnectionPool]:
        """Physical database URL -> its pool (for the metrics)."""
        return dict(self._pools)

    @property
    def logical_shards(self) -> int:
        return self.settings.logical_shards

    def for_shard(self, shard: int) -> AsyncConnectionPool:
        return self._pools[self.settings.database_for_shard(shard)]

    @property
    def global_pool(self) -> AsyncConnectionPool:
        return self._pools[self.settings.database_url]

    def holds(self, entity_id: int) -> bool:
        """Whether an id could live here: positive, and its shard is configured."""
        return entity_id > 0 and shard_of(entity_id) < self.settings.logical_shards

    async def per_shard(self, ids: Iterable[int], query: Callable[[int, list[int]], Awaitable[list[T]]]) -> list[T]:
        """Run `query(shard, ids_in_that_shard)` for every shard the ids live in, concurrently, and
        return all the rows. Ids that cannot exist (not positive, or in a shard not configured) are skipped."""
        by_shard: dict[int, list[int]] = defaultdict(list)
        for item in dict.fromkeys(ids):
            if self.holds(item):
                by_shard[shard_of(item)].append(item)
        results = await asyncio.gather(*(query(shard, group) for shard, group in by_shard.items()))
        return [row for rows in results for row in rows]

    async def select_by_shard(self, ids: Iterable[int], sql: str, extra: tuple = ()) -> list[tuple]:
        """Rows of `sql` for every shard the ids live in: `{schema}` is the shard's schema, the first
        `%s` the shard's ids and the others `extra`. One UNION ALL statement per physical database,
        the databases queried concurrently.

        The hot reads use this rather than per_shard: a round trip and a statement cost more
        than the rows, and on the embedded default every shard is in one database.
        """
        by_url: dict[str, list[tuple[int, list[int]]]] = defaultdict(list)
        by_shard: dict[int, list[int]] = defaultdict(list)
        for item in dict.fromkeys(ids):
            if self.holds(item):
                by_shard[shard_of(item)].append(item)
        for shard, group in sorted(by_shard.items()):
            by_url[self.settings.database_for_shard(shard)].append((shard, group))

        async def one_database(url: str, shards: list[tuple[int, list[int]]]) -> list[tuple]:
            statement = " UNION ALL ".join(f"({sql.format(schema=shard_schema(shard))})" for shard, _ in shards)
            async with self._pools[url].connection() as conn:
                params = [value for _, group in shards for value in (group, *extra)]
                return await (await conn.execute(statement, params)).fetchall()

        results = await asyncio.gather(*(one_database(url, shards) for url, shards in by_url.items()))
        return [row for rows in results for row in rows]

    async def every_shard(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of `sql` (a SELECT, or a write with RETURNING) run in every logical shard's schema.

        For what no id narrows down (a post's saves live in its savers' shards):
        per physical database one transaction, its statements pipelined into
        one round trip, the databases concurrently.
        """
        async def one_database(shards: list[int]) -> list[tuple]:
            async with self.for_shard(shards[0]).connection() as conn, conn.transaction():
                return await self.each_schema(conn, shards, sql, params)

        results = await asyncio.gather(*(one_database(shards) for shards in self.shards_by_database()))
        return [row for rows in results for row in rows]

    def urls_of(self, shards: list[int]) -> set[str]:
        """The physical databases that hold these logical shards."""
        return {self.settings.database_for_shard(s) for s in shards}

    def shards_by_database(self) -> list[list[int]]:
        """The logical shards grouped by physical database, in a fixed order (the shard map's)."""
        by_url: dict[str, list[int]] = {}
        for shard in range(self.logical_shards):
            by_url.setdefault(self.settings.database_for_shard(shard), []).append(shard)
        return list(by_url.values())

    @staticmethod
    async def each_schema(conn: psycopg.AsyncConnection, shards: list[int], sql: str, params: tuple = ()
                          ) -> list[tuple]:
        """Rows of `sql` run in each shard's schema on `conn` (their database's), pipelined."""
        async with conn.pipeline():
            cursors = [await conn.execute(sql.format(schema=shard_schema(s)), params) for s in shards]
        return [row for cur in cursors for row in await cur.fetchall()]

    @asynccontextmanager
    async def transaction(self, *shards: int) -> AsyncIterator[list[psycopg.AsyncConnection]]:
        """A connection in a transaction for each shard, in the order given.

        Shards that share a physical database share one connection, so writes
        to both sides of an edge commit together on the embedded default. Across
        databases each side commits on its own (writers keep those idempotent).
        """
        # The map read once: it may change while the connections are taken (a shard move's cutover), and
        # a write then reaches the old database, which refuses it (503, try again), never a KeyError.
        urls = [self.settings.database_for_shard(s) for s in shards]
        async with AsyncExitStack() as stack:
            by_url: dict[str, psycopg.AsyncConnection] = {}
            for url in dict.fromkeys(urls):
                conn = await stack.enter_async_context(self._pools[url].connection())
                await stack.enter_async_context(conn.transaction())
                by_url[url] = conn
            yield [by_url[url] for url in urls]


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


def apply_migrations(conn: psycopg.Connection, schema: str, migrations: list[Migration]) -> int:
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
    """Apply pending migrations to the global schema and every logical shard, where it lives now."""
    applied = 0
    for url in settings.database_urls:
        ensure_database(url)
    with psycopg.connect(settings.database_url) as conn:
        applied += apply_migrations(conn, GLOBAL_SCHEMA, load_migrations("global"))
    settings = placed(settings)
    shard_migrations = load_migrations("shard")
    for r in settings.shard_map:
        with psycopg.connect(r.url) as conn:
            for shard in range(r.first, r.last + 1):
                applied += apply_migrations(conn, shard_schema(shard), shard_migrations)
    log.info("migrations: %d applied", applied)
    return applied


def placed(settings: Settings) -> Settings:
    """`settings` with the moved shards at their new homes (what Database.reload_placements reads),
    for the tools that connect by the map themselves."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        try:
            rows = conn.execute(PLACEMENTS_SQL).fetchall()
        except psycopg.errors.UndefinedTable:
            return settings
    return replace(settings, shard_map=with_placements(settings.shard_map, dict(rows)))
