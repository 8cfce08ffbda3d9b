"""Types and packing helpers both merge implementations share (see ``hotpath.merge``)."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import math
import struct
import time
from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

DEFAULT_WINDOW = 100


@dataclasses.dataclass(frozen=True, slots=True)
class Weights:
    """Weights of the ranked-feed score; every field is stored as a float.

    score = interest * post.interest
          + recency * 2 ** (-age_ms / half_life_ms)
          + relationship * post.affinity
          + engagement * log1p(likes + comments)
    """

    interest: float = 1.0
    recency: float = 1.0
    relationship: float = 1.0
    engagement: float = 0.1
    half_life_ms: float = 6 * 60 * 60 * 1000.0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = float(getattr(self, field.name))
            if not math.isfinite(value):
                raise ValueError(f"{field.name} must be finite, got {value}")
            # NOTE: floats, so that both implementations do float arithmetic only.
            object.__setattr__(self, field.name, value)
        if self.half_life_ms <= 0:
            raise ValueError(f"half_life_ms must be > 0, got {self.half_life_ms}")


DEFAULT_WEIGHTS = Weights()


class PostFeatures(NamedTuple):
    """One post's ranking features, as the convenience wrapper takes them."""

    affinity: float = 0.0  # the viewer's affinity for the author, 0..1
    likes: int = 0
    comments: int = 0
    interest: float = 0.0  # the viewer's predicted interest in the post, 0..1


NO_FEATURES = PostFeatures()


class Page(NamedTuple):
    """One feed page: post ids newest- or best-first, and the cursor of the next page.

    ``next_cursor`` is None only at the end of the feed. Chronological pages carry the
    last served id (pass it back as ``before_id``); ranked pages carry a RankedCursor.
    """

    ids: array
    next_cursor: int | RankedCursor | None


_CURSOR_VERSION = 1
_CURSOR_FORMAT = struct.Struct(">Bqqqdq")


class RankedCursor(NamedTuple):
    """Where a ranked feed continues: inside the window ``[window_oldest, window_newest]``
    (ids of the merged candidates), after the post ranked ``(last_score, last_id)``.

    ``ranked_at_ms`` pins the clock the recency decay uses, so every page of one feed
    session ranks a window the same way. ``encode()`` gives an opaque, url-safe token.
    """

    window_newest: int
    window_oldest: int
    ranked_at_ms: int
    last_score: float
    last_id: int

    def encode(self) -> str:
        packed = _CURSOR_FORMAT.pack(
            _CURSOR_VERSION,
            self.window_newest,
            self.window_oldest,
            self.ranked_at_ms,
            self.last_score,
            self.last_id,
        )
        return base64.urlsafe_b64encode(packed).rstrip(b"=").decode("ascii")

    @classmethod
    def decode(cls, token: str) -> RankedCursor:
        """Parse a token from ``encode()``; ValueError for anything else."""
        try:
            packed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            version, *fields = _CURSOR_FORMAT.unpack(packed)
        except (binascii.Error, struct.error, TypeError, UnicodeEncodeError) as error:
            raise ValueError("malformed feed cursor") from error
        cursor = cls(*fields)
        if version != _CURSOR_VERSION or not math.isfinite(cursor.last_score):
            raise ValueError("malformed feed cursor")
        if not 0 <= cursor.window_oldest <= cursor.last_id <= cursor.window_newest:
            raise ValueError("malformed feed cursor")
        return cursor


def ranked_at_ms(cursor: RankedCursor | None, now_ms: int | None) -> int:
    """The clock a page ranks with: the cursor's, else ``now_ms``, else the system clock."""
    if cursor is not None:
        return cursor.ranked_at_ms
    if now_ms is not None:
        return now_ms
    return time.time_ns() // 1_000_000


def check_page_size(limit: int, window: int = DEFAULT_WINDOW) -> None:
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")


# A post list's sentinel member (services.common.timelines), which newest_members skips.
SENTINEL_MEMBER = b"0"


def pack_lists(lists: Iterable[Sequence[int]]) -> tuple[array, array]:
    """Candidate lists as the kernels take them: one flat ``array('q')`` and offsets."""
    ids = array("q")
    offsets = array("q", [0])
    for candidates in lists:
        ids.extend(candidates)
        offsets.append(len(ids))
    return ids, offsets


def pack_features(
    ids: Sequence[int], features: Mapping[int, PostFeatures]
) -> tuple[array, array, array, array]:
    """Feature columns aligned with ``ids``; a post missing from ``features`` scores zeros."""
    rows = [features.get(post_id, NO_FEATURES) for post_id in ids]
    return (
        array("d", [row.affinity for row in rows]),
        array("q", [row.likes for row in rows]),
        array("q", [row.comments for row in rows]),
        array("d", [row.interest for row in rows]),
    )
