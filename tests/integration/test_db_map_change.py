"""The shard map changes under requests in flight (a shard move's cutover), against the stack's real PostgreSQL."""

from __future__ import annotations

import dataclasses

import psycopg

from services.common.config import with_placements
from services.common.db import Database


async def test_a_transaction_whose_shard_moves_while_it_takes_connections_keeps_the_ones_it_took(settings,
                                                                                                 monkeypatch):
    """It goes on with the database it started on, which refuses writes once the shard has moved (503, try
    again), and never fails on the map it read before (a KeyError, a 500, in CI once)."""
    db = Database(settings, max_size=2)
    await db.open()
    try:
        elsewhere = psycopg.conninfo.make_conninfo(settings.database_for_shard(1), dbname="pictor_elsewhere")
        moved = dataclasses.replace(settings, shard_map=with_placements(settings.shard_map, {1: elsewhere}))
        pool = db.for_shard(1)
        take = pool.connection

        def taken_while_the_map_changes(*args, **kwargs):
            db.settings = moved  # as reload_placements sets it at the cutover, between two awaits
            return take(*args, **kwargs)

        monkeypatch.setattr(pool, "connection", taken_while_the_map_changes)
        async with db.transaction(1, 0) as (one, zero):
            names = [(await (await conn.execute("SELECT current_database()")).fetchone())[0] for conn in (one, zero)]
        expected = [psycopg.conninfo.conninfo_to_dict(settings.database_for_shard(s))["dbname"] for s in (1, 0)]
        assert names == expected and db.settings is moved
    finally:
        await db.close()
