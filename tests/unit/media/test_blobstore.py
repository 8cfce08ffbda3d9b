"""The filesystem blob store: content-addressed, atomic, durable before put returns."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest

from services.media import blobstore
from services.media.blobstore import BlobNotFound, FileBlobStore, PartFiles


@pytest.fixture
def store(tmp_path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "blobs")


def files_under(path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def test_put_returns_the_sha256_and_get_gives_the_bytes_back(store):
    key = store.put(b"pixels")
    assert key == hashlib.sha256(b"pixels").hexdigest()
    assert store.get(key) == b"pixels" and store.exists(key)


def test_a_key_the_caller_already_has_names_the_same_file(store):
    key = blobstore.blob_key(b"hashed once")
    assert store.put(b"hashed once", key) == key
    assert store.get(key) == b"hashed once" and files_under(store.root) == [f"{key[:2]}/{key}"]


def test_the_same_bytes_are_stored_once(store):
    assert store.put(b"same") == store.put(b"same")
    assert len(files_under(store.root)) == 1


def test_delete_removes_and_is_idempotent(store):
    key = store.put(b"gone soon")
    store.delete(key)
    store.delete(key)
    assert not store.exists(key)
    with pytest.raises(BlobNotFound):
        store.get(key)


@pytest.mark.parametrize("key", ["../../etc/passwd", "A" * 64, "ab", ""])
def test_keys_that_are_not_sha256_hex_name_nothing(store, key):
    assert not store.exists(key)
    with pytest.raises(BlobNotFound):
        store.get(key)


def test_a_crash_before_the_rename_leaves_no_blob(store, monkeypatch):
    def crash(*args):
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        store.put(b"half written")
    assert not store.exists(hashlib.sha256(b"half written").hexdigest())
    assert files_under(store.root) == []  # not even the temp file


def test_put_fsyncs_the_file_and_the_directory_before_returning(store, monkeypatch):
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    key = store.put(b"durable")
    final = store.path(key)
    assert any(path.endswith(".tmp") and final.name in path for path in synced)  # the data, before the rename
    assert str(final.parent) in synced  # the rename itself
    assert str(store.root) in synced  # the new fan-out directory's entry


def test_concurrent_puts_of_one_blob_all_succeed_with_intact_bytes(store):
    data = os.urandom(1 << 20)
    errors: list[BaseException] = []

    def put() -> None:
        try:
            store.put(data)
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=put) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.get(hashlib.sha256(data).hexdigest()) == data
    assert len(files_under(store.root)) == 1


def test_part_file_takes_chunks_at_offsets(tmp_path):
    parts = PartFiles(tmp_path / "uploads")
    parts.write_at(7, 0, b"hello ")
    parts.write_at(7, 6, b"world")
    assert parts.read(7, 11) == b"hello world"
    assert parts.read(7, 5) == b"hello"  # only what was acknowledged
    parts.delete(7)
    assert parts.read(7, 11) == b""


def test_part_file_write_is_fsynced(tmp_path, monkeypatch):
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    PartFiles(tmp_path / "uploads").write_at(1, 0, b"chunk")
    assert synced, "a chunk was acknowledged without fsync"


def test_blob_key_is_sha256_hex():
    assert blobstore.blob_key(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
