"""Page sizes and opaque page tokens (an encoded cursor, never a raw offset)."""

from __future__ import annotations

import base64
import json
from typing import Any

from services.common.errors import InvalidArgument


def page_size(requested: int, *, default: int, maximum: int) -> int:
    """0 means the default; larger than the maximum is coerced down; negative is an error."""
    if requested < 0:
        raise InvalidArgument("page_size", "page_size must not be negative")
    return min(requested or default, maximum)


def encode_token(cursor: dict[str, Any]) -> str:
    raw = json.dumps(cursor, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_token(token: str, *keys: str) -> dict[str, Any] | None:
    """The cursor in `token` (None for the first page); InvalidArgument when it is not one of ours."""
    if not token:
        return None
    try:
        cursor = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(cursor, dict) or any(k not in cursor for k in keys):
            raise ValueError
        return cursor
    except ValueError:
        raise InvalidArgument("page_token", "page_token is not valid; pass next_page_token as given") from None
