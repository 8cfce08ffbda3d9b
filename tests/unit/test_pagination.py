"""Page tokens: only one this listing gave comes back in; anything else is INVALID_PAGE_TOKEN on page_token."""

from __future__ import annotations

import base64
import json

import pytest

from services.common.errors import InvalidArgument
from services.common.pagination import (
    MAX_TOKEN_CHARS,
    decode_token,
    encode_token,
    iso_time,
    one_of,
    page_size,
    positive_int64,
)

FIELDS = {"t": iso_time, "id": positive_int64}


def forged(**cursor: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode().rstrip("=")


def refused(token: str, scope: str = "likes:7") -> InvalidArgument:
    with pytest.raises(InvalidArgument) as error:
        decode_token(token, scope, **FIELDS)
    assert error.value.field == "page_token" and error.value.reason == "INVALID_PAGE_TOKEN"
    return error.value


def test_a_token_round_trips_within_its_listing():
    token = encode_token("likes:7", t="2026-12-03T07:00:00+00:00", id=42)
    assert decode_token(token, "likes:7", **FIELDS) == {"t": "2026-12-03T07:00:00+00:00", "id": 42}


def test_no_token_is_the_first_page():
    assert decode_token("", "likes:7", **FIELDS) is None


def test_a_token_of_another_listing_is_refused():
    assert "another listing" in refused(encode_token("likes:8", t="2026-12-03T07:00:00", id=1)).message


@pytest.mark.parametrize("token", [
    "garbage!",
    "eyJ0IjogMX0",  # {"t": 1}: fields missing
    forged(s="likes:7", t="yesterday", id=1),
    forged(s="likes:7", t="2026-12-03T07:00:00", id="1"),
    forged(s="likes:7", t="2026-12-03T07:00:00", id=2**63),
    forged(s="likes:7", t="2026-12-03T07:00:00", id=-1),
    forged(s="likes:7", t="2026-12-03T07:00:00", id=True),
    forged(s="likes:7", t="2026-12-03T07:00:00", id=1, extra=1),
    base64.urlsafe_b64encode(b"[1, 2]").decode(),
    base64.urlsafe_b64encode(b"\xff\xfe junk").decode(),
], ids=["not-base64", "missing-fields", "bad-time", "id-as-string", "id-past-int64", "negative-id", "bool-id",
        "extra-field", "a-list", "junk-bytes"])
def test_an_altered_token_is_refused(token):
    refused(token)


def test_a_token_in_standard_base64_is_refused():
    token = encode_token("likes:7", t="2026-12-03T07:00:00", id=1)
    standard = base64.b64encode(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))).decode()
    refused(standard.replace("-", "+") + "/")


def test_a_huge_token_is_refused_before_decoding():
    assert "longer than" in refused("A" * (MAX_TOKEN_CHARS + 1)).message


def test_one_of_accepts_only_its_choices():
    assert decode_token(encode_token("c", order="NEWEST"), "c", order=one_of("NEWEST", "OLDEST")) == {
        "order": "NEWEST"}
    with pytest.raises(InvalidArgument):
        decode_token(encode_token("c", order="SIDEWAYS"), "c", order=one_of("NEWEST", "OLDEST"))


def test_page_size_defaults_caps_and_refuses_negative():
    assert page_size(0, default=20, maximum=50) == 20
    assert page_size(500, default=20, maximum=50) == 50
    with pytest.raises(InvalidArgument):
        page_size(-1, default=20, maximum=50)
