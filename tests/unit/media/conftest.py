"""The media corpus (real-world images from Pillow's test suite) and what each must produce.

The corpus ships in the repository (tests/media-corpus, with its source and
licence in its README), so a fresh clone tests it with nothing beside it.
PICTOR_MEDIA_CORPUS may point at another folder holding the same files.
Missing files fail the tests: a silently skipped corpus would hide every
regression it exists to catch.
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
    """The corpus folder; fails the test (never skips) when it cannot be found."""
    configured = os.environ.get("PICTOR_MEDIA_CORPUS", "")
    path = Path(configured) if configured else REPO_ROOT / "tests" / "media-corpus"
    if not path.is_dir():
        where = f"PICTOR_MEDIA_CORPUS={configured!r}" if configured else f"the fallback {path}"
        pytest.fail(f"media corpus not found ({where} is not a folder): set PICTOR_MEDIA_CORPUS to a folder "
                    "holding tests/media-corpus's files", pytrace=False)
    missing = sorted(name for name in EXPECTED if not (path / name).is_file())
    if missing:
        pytest.fail(f"media corpus at {path} lacks {', '.join(missing)}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def corpus() -> Path:
    return media_corpus_dir()


def read(corpus: Path, name: str) -> bytes:
    return (corpus / name).read_bytes()
