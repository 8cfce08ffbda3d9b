"""Small images made on the spot, for tests that need an upload but not a particular file."""

from __future__ import annotations

import functools
import io


@functools.cache
def small_jpeg(width: int = 64, height: int = 48) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def unique_jpeg(width: int = 64, height: int = 48) -> bytes:
    """A JPEG no other test uploads (random noise): its blobs are its own, unless a test shares them."""
    import os

    from PIL import Image

    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()
