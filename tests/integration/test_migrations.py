"""Migrations and the shard layout, against the stack's real PostgreSQL."""

from __future__ import annotations

import dataclasses
import time

import psycopg
import pytest

from hotpath.ids import IdGenerator, decode
from services.common.config import ShardRange, parse_shard_map
from services.common.db import GLOBAL_SCHEMA, load_migrations, migrate, shard_schema


def schemas_in(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT schema_name FROM information_schema.schemata")}


def test_every_logical_shard_has_its_schema_and_tables_in_the_database_the_map_names(settings):
    for shard in range(settings.logical_shards):
        assert shard_schema(shard) in schemas_in(settings.database_for_shard(shard))
    assert GLOBAL_SCHEMA in schemas_in(settings.database_url)
    with psycopg.connect(settings.database_for_shard(0)) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (shard_schema(0),))}
    assert {"users", "refresh_tokens", "schema_migrations"} <= tables


def test_migrations_are_tracked_and_running_again_applies_nothing(settings):
    assert migrate(settings) == 0
    with psycopg.connect(settings.database_for_shard(1)) as conn:
        versions = [r[0] for r in conn.execute(
            f"SELECT version FROM {shard_schema(1)}.schema_migrations ORDER BY version")]
    assert versions == [m.version for m in load_migrations("shard")]


def test_an_edited_migration_is_refused(settings, monkeypatch):
    from services.common import db

    original = db.load_migrations

    def edited(scope):
        migrations = original(scope)
        if scope == "global":
            migrations[0] = dataclasses.replace(migrations[0], sql=migrations[0].sql + "\n-- edited")
        return migrations

    monkeypatch.setattr(db, "load_migrations", edited)
    with pytest.raises(RuntimeError, match="changed after it was applied"):
        migrate(settings)


def test_sql_next_id_and_hotpath_ids_decode_alike_and_sort_by_time(settings):
    shard = 3
    with psycopg.connect(settings.database_for_shard(shard)) as conn:
        first_sql = conn.execute(f"SELECT {shard_schema(shard)}.next_id(%s)", (shard,)).fetchone()[0]
        time.sleep(0.005)
        from_python = IdGenerator(shard).next_id()
        time.sleep(0.005)
        second_sql = conn.execute(f"SELECT {shard_schema(shard)}.next_id(%s)", (shard,)).fetchone()[0]
    for value in (first_sql, from_python, second_sql):
        decoded = decode(value)
        assert decoded.shard == shard
        assert abs(decoded.timestamp_ms - time.time() * 1000) < 60_000
    assert first_sql < from_python < second_sql


def test_shard_map_sends_ranges_to_databases():
    ranges = parse_shard_map('[{"shards": "0-3", "url": "db-a"}, {"shards": "4-7", "url": "db-b"}]', 8, "main")
    assert ranges == (ShardRange(0, 3, "db-a"), ShardRange(4, 7, "db-b"))


@pytest.mark.parametrize("raw", ['[{"shards": "0-3", "url": "a"}]', '[{"shards": "1-7", "url": "a"}]'])
def test_shard_map_must_cover_every_logical_shard(raw):
    with pytest.raises(SystemExit):
        parse_shard_map(raw, 8, "main")


def test_moving_shards_to_another_database_keeps_ids_and_rows(settings):
    """Split the 8 logical shards over two physical databases: same ids, same shard per id."""
    second = psycopg.conninfo.make_conninfo(settings.database_url, dbname="pictor_split")
    split = dataclasses.replace(settings, shard_map=parse_shard_map(
        f'[{{"shards": "0-3", "url": "{settings.database_url}"}}, {{"shards": "4-{settings.logical_shards - 1}", '
        f'"url": "{second}"}}]', settings.logical_shards, settings.database_url))
    migrate(split)
    assert split.database_for_shard(5) == second and split.database_for_shard(2) == settings.database_url
    user_id = IdGenerator(5).next_id()
    with psycopg.connect(second) as conn:
        conn.execute(f"INSERT INTO {shard_schema(5)}.users (id, username, email, password_hash) "
                     "VALUES (%s, 'moved', 'moved@example.com', 'x')", (user_id,))
        conn.commit()
        assert conn.execute(f"SELECT id FROM {shard_schema(5)}.users").fetchone()[0] == user_id
    assert decode(user_id).shard == 5  # the id names the shard, whatever the map says
