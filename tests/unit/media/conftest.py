"""The media corpus (real-world images from Pillow's test suite) and what each must produce.

The corpus ships in the repository (tests/media-corpus, with its source and
licence in its README), so a fresh clone tests it with nothing beside it, and
it is always tested. Missing files fail the tests: a silently skipped corpus
would hide every regression it exists to catch.

PICTOR_MEDIA_CORPUS may point at a folder of extra files, never required:
tests/e2e/test_extra_corpus_http.py uploads each one found there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.common.config import REPO_ROOT

# file -> the rejection reason, or None when the file must be accepted.
EXPECTED: dict[str, str | None] = {
    "hopper.jpg": None,
    "hopper.png": None,
    "hopper.webp": None,
    "hopper.gif": None,
    "flower.jpg": None,
    "flower2.jpg": None,
    "hopper_16bit_qtables.jpg": None,
    "exif_gps.jpg": None,
    "hopper_orientation_3.jpg": None,
    "hopper_orientation_6.jpg": None,
    "pil_sample_cmyk.jpg": None,
    "icc_profile_big.jpg": None,
    "transparent.webp": None,
    "iss634.gif": None,
    "hopper.avif": None,
    "hopper.heif": None,
    "truncated_jpeg.jpg": "CORRUPT_IMAGE",
    "broken.png": "CORRUPT_IMAGE",
    "decompression_bomb.gif": "IMAGE_TOO_LARGE",
}
ACCEPTED = sorted(name for name, reason in EXPECTED.items() if reason is None)
REJECTED = sorted(name for name, reason in EXPECTED.items() if reason is not None)


def media_corpus_dir() -> Path:
    """The built-in corpus folder; fails the test (never skips) when files are missing."""
    path = REPO_ROOT / "tests" / "media-corpus"
    missing = sorted(name for name in EXPECTED if not (path / name).is_file())
    if missing:
        pytest.fail(f"media corpus at {path} lacks {', '.join(missing)}", pytrace=False)
    return path


def extra_corpus_files() -> list[Path]:
    """The files under PICTOR_MEDIA_CORPUS (none when it is unset); a set value that is not a folder fails."""
    configured = os.environ.get("PICTOR_MEDIA_CORPUS", "")
    if not configured:
        return []
    path = Path(configured)
    if not path.is_dir():
        pytest.fail(f"PICTOR_MEDIA_CORPUS={configured!r} is not a folder", pytrace=False)
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))


@pytest.fixture(scope="session")
def corpus() -> Path:
    return media_corpus_dir()


def read(corpus: Path, name: str) -> bytes:
    return (corpus / name).read_bytes()
