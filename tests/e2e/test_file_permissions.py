"""What the stack writes to disk is its user's alone: the data folder can at most be traversed by
others (the embedded PostgreSQL runs as its own user when the stack runs as root), and keys, logs
and blobs (originals keep their metadata) are neither readable nor writable by anyone else."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from services.common.dependencies import sync_redis
from tests.e2e.media_files import small_jpeg

pytestmark = pytest.mark.e2e


def others_may(path: Path) -> int:
    """The group and other permission bits of `path`."""
    return stat.S_IMODE(path.stat().st_mode) & 0o077


def test_the_data_folder_lets_others_traverse_at_most(settings):
    assert others_may(settings.data_dir) & 0o066 == 0


def test_logs_are_private(settings):
    assert others_may(settings.data_dir / "logs") == 0


def test_the_signing_keys_are_private(settings):
    private = [p for p in settings.data_dir.rglob("*.pem") if "private" in p.name or p.name.endswith("key.pem")]
    assert private, "no private key found under the data folder"
    assert [p.name for p in private if others_may(p)] == []


def test_stored_blobs_are_private(settings, new_user):
    user = new_user()
    assert user.upload(small_jpeg(), "image/jpeg").status == 200
    blobs = [p for p in Path(settings.data_dir / "blobs").rglob("*") if p.is_file()]
    assert blobs
    assert [str(p) for p in blobs if others_may(p)] == []


def test_the_embedded_stores_ask_for_a_generated_password_kept_private(settings):
    import psycopg
    import redis

    folder = settings.data_dir / "secrets"
    passwords = {name: (folder / f"{name}.password").read_text().strip() for name in ("postgres", "redis")}
    assert all(len(p) >= 32 for p in passwords.values()) and passwords["postgres"] != passwords["redis"]
    assert others_may(folder) == 0 and [p.name for p in folder.iterdir() if others_may(p)] == []
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(host="127.0.0.1", port=settings.postgres_port, user="postgres", dbname="pictor",
                        password="", connect_timeout=5)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host="127.0.0.1", port=settings.postgres_port, user="postgres", dbname="pictor",
                        password="not-it", connect_timeout=5)
    with psycopg.connect(settings.database_url, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    client = redis.Redis(port=settings.redis_port, socket_timeout=5)
    with pytest.raises(redis.exceptions.AuthenticationError):
        client.ping()
    client.close()
    assert sync_redis(settings.redis_url, socket_timeout=5).ping()
