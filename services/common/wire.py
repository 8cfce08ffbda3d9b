"""Protobuf messages written as bytes, for replies spliced from serialized parts without a parse.

On the wire a message is its fields one after another, and a field written
again wins: a scalar takes its last value, a message field merges. So bytes
of a message followed by some of its fields written here parse as that
message with those fields set, and a reply can be a few such parts joined.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_VARINT, _LENGTH_DELIMITED = 0, 2


def varint(value: int) -> bytes:
    """An integer as a base-128 varint; a negative one as its 64-bit two's complement (ten bytes)."""
    if 0 <= value < _SMALL_MAX:
        return _SMALL[value]
    value &= (1 << 64) - 1
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL_MAX = 1 << 14  # counts and flags are mostly this small: their varints made once
_SMALL = [bytes([v]) if v < 0x80 else bytes([v & 0x7F | 0x80, v >> 7]) for v in range(_SMALL_MAX)]


def varint_field(number: int, value: int) -> bytes:
    """An int32/int64/uint/bool/enum field, written even when zero (so that it overrides an earlier value)."""
    return varint(number << 3 | _VARINT) + varint(value)


def message_field(number: int, payload: bytes) -> bytes:
    """A message, string or bytes field holding `payload` (serialized)."""
    return varint(number << 3 | _LENGTH_DELIMITED) + varint(len(payload)) + payload


def passthrough(serialize: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    """A gRPC response serializer that sends a reply already written as bytes as it is, and serializes
    any other reply with `serialize`."""

    def serializer(reply: Any) -> bytes:
        return reply if isinstance(reply, bytes) else serialize(reply)

    return serializer
