"""Page sizes and opaque page tokens (an encoded cursor, never a raw offset).

A token names the listing it belongs to (its scope: the route and whose list
it is, e.g. "followers:42"), and every field of its cursor is checked on the
way back in. A token a client altered (truncated, re-encoded, junk, another
route's or another user's, huge) is INVALID_PAGE_TOKEN naming `page_token`;
it never reaches a query.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from services.common.errors import InvalidArgument

# Ours are well under 200 characters.
MAX_TOKEN_CHARS = 1024
INT64_MAX = 2**63 - 1
SCOPE = "s"


def page_size(requested: int, *, default: int, maximum: int) -> int:
    """0 means the default; larger than the maximum is coerced down; negative is an error."""
    if requested < 0:
        raise InvalidArgument("page_size", "page_size must not be negative")
    return min(requested or default, maximum)


def positive_int64(value: Any) -> int:
    """A cursor field holding an id (or any positive 64-bit integer)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= INT64_MAX:
        raise ValueError("not a positive int64")
    return value


def decimal_int64(raw: str) -> int | None:
    """The positive 64-bit integer a string of ASCII digits spells (an id carried as text), else None.

    NOTE: str.isdigit() alone admits Unicode digits ("³") that int() refuses.
    """
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        return None
    value = int(raw)
    return value if 0 < value <= INT64_MAX else None


def iso_time(value: Any) -> str:
    """A cursor field holding an ISO 8601 time, kept as the string."""
    if not isinstance(value, str):
        raise TypeError("not a time")
    datetime.fromisoformat(value)
    return value


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


def one_of(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"not one of {choices}")
        return value

    return check


def invalid_page_token(why: str = "it is not one this listing gave") -> InvalidArgument:
    return InvalidArgument("page_token", f"page_token is not valid ({why}); pass next_page_token as given",
                           reason="INVALID_PAGE_TOKEN")


def encode_token(scope: str, **cursor: Any) -> str:
    raw = json.dumps({SCOPE: scope, **cursor}, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_token(token: str, scope: str, **fields: Callable[[Any], Any]) -> dict[str, Any] | None:
    """The cursor in `token` (None for the first page), each field passed through its check.

    InvalidArgument (INVALID_PAGE_TOKEN) unless the token is exactly one that
    encode_token made for this scope with these fields.
    """
    if not token:
        return None
    if len(token) > MAX_TOKEN_CHARS:
        raise invalid_page_token(f"longer than {MAX_TOKEN_CHARS} characters")
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
        cursor = json.loads(raw)
        if not isinstance(cursor, dict) or set(cursor) != {SCOPE, *fields}:
            raise ValueError("not a cursor")
    except (ValueError, TypeError, RecursionError):
        raise invalid_page_token() from None
    if cursor[SCOPE] != scope:
        raise invalid_page_token("it belongs to another listing")
    try:
        return {name: check(cursor[name]) for name, check in fields.items()}
    except (ValueError, TypeError, OverflowError):
        raise invalid_page_token() from None


def check_scan(shard: int, requested: int, logical_shards: int, *, default: int, maximum: int) -> int:
    """A scan of one logical shard (the mesh's index rebuilds): the shard must exist; the page size."""
    if not 0 <= shard < logical_shards:
        raise InvalidArgument("shard", f"shard must be 0..{logical_shards - 1}")
    return page_size(requested, default=default, maximum=maximum)
