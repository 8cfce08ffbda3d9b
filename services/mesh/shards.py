"""`python -m services.mesh.shards move 4-7 --to URL` (`make shards-move SHARDS=4-7 TO=URL`): move
logical shards to another PostgreSQL database while the platform runs. `... shards show`: where each
logical shard lives now.

A move, per database the shards leave:

  1. The target gets each shard's schema, empty, by the shard migrations (a copy left there by an
     earlier move that the map does not point to is dropped first: nothing reads it).
  2. PostgreSQL's logical replication copies the shards' tables from the source and then streams
     every change (a publication and a slot on the source, a subscription on the target). Writes go
     on meanwhile. The copy prints its progress.
  3. The cutover pauses writes to the moved shards: their tables are locked against writes on the
     source (reads go on), a marker row written after the lock reaching the target says every write
     before it is there, the sequences are carried over, and the source's copies of the tables get
     a trigger that refuses every write (SQLSTATE 57M01: the services answer 503 UNAVAILABLE, and a
     retry goes to the new home). Then `pictor_global.shard_placements` names the target, and every
     process routes there within PICTOR_SHARD_MAP_POLL_MS (services.common.db).
  4. The replication is taken down. The source's copies stay, refusing writes, unless --drop-source
     drops them once every process had time to see the new map.

The pause is from the lock to the new map plus that poll interval: a second or so on this machine.
No id changes (an id carries its logical shard, not its database). One move at a time (a lock in
the global database). The source server needs wal_level=logical (the embedded servers run with it).

NOTE: a process that cannot read the global database keeps routing by the old map: its writes to
the moved shards are refused (503) and its reads see the source's copy as of the move, until it
reads the map again. A database new to a process gets a pool, not a health probe of its own.
A move cut short between the cutover and the map's change (the global database failing then)
leaves the shards refusing writes at their source; running the same move again lets the source
take writes again and moves them anew.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import sys
import time
from collections import defaultdict
from dataclasses import dataclass

import psycopg
from psycopg import sql

from services.common.config import Settings, load_settings
from services.common.db import (
    GLOBAL_SCHEMA,
    apply_migrations,
    ensure_database,
    load_migrations,
    placed,
    placements_poll_s,
    shard_schema,
)
from services.common.metrics import database_label
from services.common.progress import Progress

log = logging.getLogger(__name__)

NAME = "pictor_move"  # the publication, slot and subscription of the move under way
MOVE_LOCK = "pictor shards move"
# What the source's copies answer every write with once moved: class 57, which the services read as
# their database unavailable (503, try again).
MOVED_SQLSTATE = "57M01"
LOCK_TIMEOUT_S = 10
MARKER_TIMEOUT_S = 30.0
COPY_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class Moved:
    shards: list[int]
    source: str
    target: str
    tables: int
    rows: int
    copy_s: float
    writes_paused_ms: float

    def line(self) -> str:
        return json.dumps({"moved": self.shards, "from": database_label(self.source), "to": database_label(self.target),
                           "tables": self.tables, "rows": self.rows, "copy_s": round(self.copy_s, 1),
                           "writes_paused_ms": round(self.writes_paused_ms, 1)})


def parse_shards(raw: str, logical_shards: int) -> list[int]:
    """"4-7" or "5" -> the logical shards; SystemExit naming the problem otherwise."""
    first, _, last = raw.partition("-")
    try:
        low, high = int(first), int(last or first)
    except ValueError:
        raise SystemExit(f"shards must be N or N-M (like 4-7), got {raw!r}") from None
    if not 0 <= low <= high < logical_shards:
        raise SystemExit(f"shards {raw} are not within 0-{logical_shards - 1} (PICTOR_LOGICAL_SHARDS={logical_shards})")
    return list(range(low, high + 1))


def move(settings: Settings, shards: list[int], target: str, *, drop_source: bool = False,
         out=sys.stderr) -> list[Moved]:
    """Move `shards` to the database at `target` (see the module's docstring); one report per source."""
    ensure_database(target)
    with psycopg.connect(settings.database_url, autocommit=True) as global_conn:
        if not global_conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (MOVE_LOCK,)).fetchone()[0]:
            raise SystemExit("another shard move is under way; try again when it is done")
        by_source: dict[str, list[int]] = defaultdict(list)
        current = placed(settings)
        for shard in shards:
            by_source[current.database_for_shard(shard)].append(shard)
        reports = []
        for source, group in by_source.items():
            if source == target:
                print(f"shards {group} live at {database_label(target)} already", file=out, flush=True)
                continue
            reports.append(_move_from(settings, global_conn, source, group, target, drop_source, out))
        return reports


def _move_from(settings: Settings, global_conn: psycopg.Connection, source: str, shards: list[int], target: str,
               drop_source: bool, out) -> Moved:
    schemas = [shard_schema(s) for s in shards]
    with psycopg.connect(source, autocommit=True) as src, psycopg.connect(target, autocommit=True) as dst:
        _check(src, dst, shards)
        tables = _prepare(src, dst, schemas, out)
        print(f"moving shards {shards} ({len(tables)} tables) from {database_label(source)} to "
              f"{database_label(target)}", file=out, flush=True)
        try:
            copy_s = _copy(src, dst, source, tables, out)
            rows = sum(dst.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*t))).fetchone()[0]
                       for t in tables)
            paused_ms = _cut_over(settings, src, dst, global_conn, source, shards, schemas, tables, target)
        finally:
            _take_down(src, dst)
    moved = Moved(shards, source, target, len(tables), rows, copy_s, paused_ms)
    print(f"moved: writes to shards {shards} were paused {paused_ms:.0f} ms, and every process follows within "
          f"PICTOR_SHARD_MAP_POLL_MS", file=out, flush=True)
    if drop_source:
        time.sleep(3 * placements_poll_s() + 1)  # every process reads the new map before the old copies go
        with psycopg.connect(source, autocommit=True) as src:
            for schema in schemas:
                src.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        print(f"dropped the old copies on {database_label(source)}", file=out, flush=True)
    return moved


def _check(src: psycopg.Connection, dst: psycopg.Connection, shards: list[int]) -> None:
    identity = "SELECT (SELECT system_identifier FROM pg_control_system()), current_database()"
    if src.execute(identity).fetchone() == dst.execute(identity).fetchone():
        raise SystemExit(f"the target is the database shards {shards} live in (under another URL)")
    level = src.execute("SHOW wal_level").fetchone()[0]
    if level != "logical":
        raise SystemExit(f"the source server runs with wal_level={level}; a live move needs wal_level=logical "
                         "(the embedded servers start with it; set it on yours and restart it)")


def _prepare(src: psycopg.Connection, dst: psycopg.Connection, schemas: list[str], out) -> list[tuple[str, str]]:
    """The target's empty schemas, the marker table on both sides, the source taking writes (again,
    after a move cut short), and the moved tables ((schema, table); every table of the schemas but
    their migration record)."""
    _take_down(src, dst)  # what an interrupted move left
    migrations = load_migrations("shard")
    for schema in schemas:
        # The map does not point here (checked by the caller): whatever copy is here, nothing reads.
        dst.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        apply_migrations(dst, schema, migrations)
    for conn in (src, dst):
        conn.execute("CREATE SCHEMA IF NOT EXISTS pictor_move")
        conn.execute("CREATE TABLE IF NOT EXISTS pictor_move.marks (token text PRIMARY KEY, "
                     "at timestamptz NOT NULL DEFAULT now())")
    create_refusal(src)  # here, not in the cutover: writes are paused there
    tables = src.execute(
        "SELECT n.nspname, c.relname, c.relreplident, EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid "
        "AND i.indisprimary) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = ANY(%s) AND c.relkind = 'r' AND c.relname <> 'schema_migrations' "
        "ORDER BY n.nspname, c.relname", (schemas,)).fetchall()
    for schema, table, identity, has_key in tables:
        if identity == "d" and not has_key:  # updates and deletes replicate by the whole row
            src.execute(sql.SQL("ALTER TABLE {} REPLICA IDENTITY FULL").format(sql.Identifier(schema, table)))
    moved = [(schema, table) for schema, table, _, _ in tables]
    if allow_writes(src, schemas):
        print(f"the source refused writes to {', '.join(schemas)} after a move that did not change the map: "
              "it takes them again, and the move starts anew", file=out, flush=True)
    return moved


def create_refusal(conn: psycopg.Connection) -> None:
    """The trigger function refuse_writes attaches (SQLSTATE MOVED_SQLSTATE, which the services
    answer 503)."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS pictor_move")
    conn.execute(f"""CREATE OR REPLACE FUNCTION pictor_move.refuse_writes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'logical shard % moved to another database: try again', TG_TABLE_SCHEMA
        USING ERRCODE = '{MOVED_SQLSTATE}';
END
$$""")


def refuse_writes(conn: psycopg.Connection, tables: list[tuple[str, str]]) -> None:
    """Make each table refuse writes (create_refusal made the function): the source's copies once
    the move's target has every write."""
    for schema, table in tables:
        conn.execute(sql.SQL("CREATE TRIGGER pictor_moved BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {} "
                             "FOR EACH STATEMENT EXECUTE FUNCTION pictor_move.refuse_writes()").format(
            sql.Identifier(schema, table)))


def allow_writes(conn: psycopg.Connection, schemas: list[str]) -> bool:
    """Undo refuse_writes on the schemas' tables; whether any refused. For the database the map
    still points to (a move cut short between its cutover and the map's change)."""
    refusing = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE t.tgname = 'pictor_moved' "
        "AND n.nspname = ANY(%s)", (schemas,)).fetchall()
    for schema, table in refusing:
        conn.execute(sql.SQL("DROP TRIGGER pictor_moved ON {}").format(sql.Identifier(schema, table)))
    return bool(refusing)


def _copy(src: psycopg.Connection, dst: psycopg.Connection, source: str, tables: list[tuple[str, str]], out) -> float:
    """Replicate the tables to the target until every one is copied and streaming; the seconds it took."""
    published = sql.SQL(", ").join(sql.Identifier(*t) for t in [*tables, ("pictor_move", "marks")])
    src.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(sql.Identifier(NAME), published))
    # Made here, not by the subscription: CREATE SUBSCRIPTION would wait forever for a slot on its own server.
    src.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (NAME,))
    dst.execute(sql.SQL("CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (create_slot = false, "
                        "slot_name = {}, copy_data = true)").format(
        sql.Identifier(NAME), sql.Literal(source), sql.Identifier(NAME), sql.Literal(NAME)))
    progress = Progress("copying tables", len(tables) + 1, out=out)
    deadline = time.monotonic() + COPY_TIMEOUT_S
    while True:
        ready, total, errors = dst.execute(
            "SELECT count(*) FILTER (WHERE r.srsubstate IN ('r', 's')), count(*), "
            "(SELECT coalesce(sum(apply_error_count + sync_error_count), 0) FROM pg_stat_subscription_stats "
            " WHERE subname = %s) FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid "
            "WHERE s.subname = %s", (NAME, NAME)).fetchone()
        if errors:
            raise SystemExit("the copy failed on the target (see its server log); nothing was moved")
        if total and ready == total:
            progress.advance(0, ready - progress.units, force=True)
            return time.monotonic() - progress.started
        if time.monotonic() > deadline:
            raise SystemExit(f"the copy did not finish within {COPY_TIMEOUT_S:g} s; nothing was moved")
        progress.advance(0, ready - progress.units)
        time.sleep(0.2)


def _cut_over(settings: Settings, src: psycopg.Connection, dst: psycopg.Connection, global_conn: psycopg.Connection,
              source: str, shards: list[int], schemas: list[str], tables: list[tuple[str, str]], target: str) -> float:
    """Pause writes, wait for the last of them on the target, turn the source's copies away and point
    the map at the target; how long writes were paused, in ms (to the new map; processes follow it
    within the poll interval)."""
    moved = sql.SQL(", ").join(sql.Identifier(*t) for t in tables)
    with psycopg.connect(source, autocommit=True) as locker, locker.transaction():
        locker.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_S}s'")
        try:
            locker.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(moved))
        except psycopg.errors.LockNotAvailable:
            raise SystemExit(f"writes to shards {shards} did not pause within {LOCK_TIMEOUT_S} s (a long "
                             "transaction?); nothing was moved, try again") from None
        paused = time.monotonic()
        token = secrets.token_hex(8)
        src.execute("INSERT INTO pictor_move.marks (token) VALUES (%s)", (token,))
        while dst.execute("SELECT 1 FROM pictor_move.marks WHERE token = %s", (token,)).fetchone() is None:
            if time.monotonic() - paused > MARKER_TIMEOUT_S:
                raise SystemExit(f"the target did not catch up within {MARKER_TIMEOUT_S:g} s; nothing was moved")
            time.sleep(0.005)
        # Every write before the lock is on the target. Sequences do not replicate: carry them over.
        for schema, name, last in src.execute("SELECT schemaname, sequencename, last_value FROM pg_sequences "
                                              "WHERE schemaname = ANY(%s)", (schemas,)).fetchall():
            if last is not None:
                dst.execute("SELECT setval(%s::regclass, %s)", (sql.Identifier(schema, name).as_string(dst), last))
        refuse_writes(locker, tables)
    # Committed: the source refuses writes to the shards. Now the map sends them to the target.
    try:
        with global_conn.transaction():
            for shard in shards:
                global_conn.execute(
                    f"INSERT INTO {GLOBAL_SCHEMA}.shard_placements (shard, url) VALUES (%s, %s) "
                    "ON CONFLICT (shard) DO UPDATE SET url = excluded.url, moved_at = now()", (shard, target))
    except psycopg.Error as error:
        raise SystemExit(f"shards {shards} refuse writes at their source, but the map could not be changed "
                         f"({error}); run the same move again: the source takes writes again and the move "
                         "starts anew") from error
    return (time.monotonic() - paused) * 1000


def _take_down(src: psycopg.Connection, dst: psycopg.Connection) -> None:
    """The move's subscription, slot and publication, whichever exist."""
    if dst.execute("SELECT 1 FROM pg_subscription WHERE subname = %s", (NAME,)).fetchone():
        name = sql.Identifier(NAME)
        dst.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(name))
        dst.execute(sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(name))
        dst.execute(sql.SQL("DROP SUBSCRIPTION {}").format(name))
    deadline = time.monotonic() + 30
    while src.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (NAME,)).fetchone():
        try:
            src.execute("SELECT pg_drop_replication_slot(%s)", (NAME,))
        except psycopg.errors.ObjectInUse:  # its sender has not noticed the subscription gone yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    src.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(NAME)))


def show(settings: Settings) -> list[dict]:
    return [{"shards": f"{r.first}-{r.last}", "database": database_label(r.url)} for r in placed(settings).shard_map]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.mesh.shards",
                                     description="Where the logical shards live, and moving them while the platform runs.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("show", help="each range of logical shards and the database it lives in")
    moving = commands.add_parser("move", help="move logical shards to another database (see the module's docstring)")
    moving.add_argument("shards", help="N or N-M, like 4-7")
    moving.add_argument("--to", required=True, metavar="URL", help="the target database (created when missing)")
    moving.add_argument("--drop-source", action="store_true",
                        help="drop the old copies once every process follows the new map")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    settings = load_settings()
    if args.command == "show":
        for entry in show(settings):
            print(json.dumps(entry))
        return
    for report in move(settings, parse_shards(args.shards, settings.logical_shards), args.to,
                       drop_source=args.drop_source):
        print(report.line(), flush=True)


if __name__ == "__main__":
    main()
