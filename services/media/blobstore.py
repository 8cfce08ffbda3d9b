"""Where image bytes live: a content-addressed blob store, and the partial files of resumable uploads.

Blobs are keyed by the SHA-256 (hex) of their bytes, so the same bytes are
stored once and a key can never name other content. The filesystem store
writes each blob with services.common.files.write_atomically (temp file,
fsync, rename, fsync of the directory): once `put` returns, the blob survives
a crash. Methods block; the service calls them from worker threads.

NOTE: a blob may be shared by several media items (the same photo uploaded
twice, or variants that come out identical), so deleting one is only safe
once no row names its key: MediaService.collect_garbage decides, under the
keys' locks (PostgresMediaRepository.unused_blobs).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
from pathlib import Path
from typing import Protocol

from services.common.files import write_atomically

_KEY_RE = re.compile(r"^[0-9a-f]{64}$")


class BlobNotFound(KeyError):
    pass


def blob_key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore(Protocol):
    def put(self, data: bytes, key: str | None = None) -> str:
        """Store `data` durably; returns its key (the SHA-256 hex). A caller that already has
        blob_key(data) passes it as `key` rather than have the bytes hashed again."""

    def get(self, key: str) -> bytes:
        """The bytes under `key`; BlobNotFound when there are none."""

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...

    def put_file(self, source: Path, key: str) -> str:
        """Store a file's bytes under `key` (their SHA-256, which the caller checked), durably, without
        reading them all into memory."""

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        """`length` bytes from `offset` of the blob (fewer at its end); BlobNotFound when there is none."""


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dirs_durably(path: Path) -> None:
    """mkdir -p, with each new directory's entry fsynced in its parent."""
    if path.is_dir():
        return
    _make_dirs_durably(path.parent)
    try:
        path.mkdir()
    except FileExistsError:
        return
    fsync_dir(path.parent)


class FileBlobStore:
    """Blobs as files: <root>/<first two hex digits>/<key>."""

    # write_atomically names its temp file after the process: two threads
    # writing the same key would share it, so writes of one key take turns.
    _STRIPES = 64

    def __init__(self, root: Path) -> None:
        self.root = root
        self._locks = [threading.Lock() for _ in range(self._STRIPES)]

    def path(self, key: str) -> Path:
        if not _KEY_RE.match(key):
            raise BlobNotFound(key)
        return self.root / key[:2] / key

    def put(self, data: bytes, key: str | None = None) -> str:
        key = key or blob_key(data)
        path = self.path(key)
        with self._locks[int(key[:8], 16) % self._STRIPES]:
            # Content-addressed: an existing file already holds these bytes.
            if not path.exists():
                _make_dirs_durably(path.parent)
                write_atomically(path, data, mode=0o600)  # originals keep their metadata: the owner's alone
        return key

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def put_file(self, source: Path, key: str) -> str:
        path = self.path(key)
        with self._locks[int(key[:8], 16) % self._STRIPES]:
            if not path.exists():
                _make_dirs_durably(path.parent)
                tmp = path.with_name(f".{key}.{os.getpid()}.{threading.get_ident()}.tmp")
                try:
                    with open(source, "rb") as src, open(tmp, "wb") as dst:
                        os.fchmod(dst.fileno(), 0o600)
                        shutil.copyfileobj(src, dst, 1 << 20)
                        dst.flush()
                        os.fsync(dst.fileno())
                    os.replace(tmp, path)
                finally:
                    tmp.unlink(missing_ok=True)
                fsync_dir(path.parent)
        return key

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        try:
            with open(self.path(key), "rb") as f:
                f.seek(offset)
                return f.read(length)
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def delete(self, key: str) -> None:
        path = self.path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        fsync_dir(path.parent)

    def exists(self, key: str) -> bool:
        try:
            return self.path(key).is_file()
        except BlobNotFound:
            return False


class PartFiles:
    """The bytes of resumable uploads so far: <root>/<upload_id>.part, written in place and fsynced."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, upload_id: int) -> Path:
        return self.root / f"{int(upload_id)}.part"

    def write_at(self, upload_id: int, offset: int, data: bytes) -> None:
        """Write `data` at `offset` and fsync; the caller records the new length only after this returns."""
        path = self.path(upload_id)
        created = not path.exists()
        if created:
            _make_dirs_durably(self.root)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            view = memoryview(data)
            while view:
                written = os.pwrite(fd, view, offset)
                view, offset = view[written:], offset + written
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            fsync_dir(self.root)

    def read(self, upload_id: int, length: int, offset: int = 0) -> bytes:
        """`length` bytes from `offset` (within what was acknowledged: anything after it is an
        unacknowledged write)."""
        try:
            with open(self.path(upload_id), "rb") as f:
                f.seek(offset)
                return f.read(length)
        except FileNotFoundError:
            return b""

    def delete(self, upload_id: int) -> None:
        self.path(upload_id).unlink(missing_ok=True)
