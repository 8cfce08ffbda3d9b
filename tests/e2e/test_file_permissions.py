"""What the stack writes to disk is its user's alone: the data folder can at most be traversed by
others (the embedded PostgreSQL runs as its own user when the stack runs as root), and keys, logs
and blobs (originals keep their metadata) are neither readable nor writable by anyone else."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

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
