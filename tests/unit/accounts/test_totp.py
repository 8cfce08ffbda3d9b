"""TOTP against RFC 6238's test vectors, and the acceptance window."""

from __future__ import annotations

import base64

import pytest

from services.accounts import totp

RFC_KEY = b"12345678901234567890"


@pytest.mark.parametrize(("unix_time", "expected"), [
    (59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"),
    (1234567890, "89005924"), (2000000000, "69279037"), (20000000000, "65353130"),
])
def test_rfc_6238_sha1_vectors(unix_time, expected):
    assert totp.hotp(RFC_KEY, totp.step_of(unix_time), digits=8) == expected


def secret() -> str:
    return base64.b32encode(RFC_KEY).decode().rstrip("=")


def test_a_code_is_accepted_in_its_step_and_the_steps_either_side():
    now = 1_700_000_000
    code = totp.code_at(secret(), now)
    assert totp.matching_step(secret(), code, now) == totp.step_of(now)
    assert totp.matching_step(secret(), code, now + totp.STEP_S) == totp.step_of(now)
    assert totp.matching_step(secret(), code, now - totp.STEP_S) == totp.step_of(now)
    assert totp.matching_step(secret(), code, now + 2 * totp.STEP_S) is None


def test_a_code_is_never_accepted_twice():
    now = 1_700_000_000
    code = totp.code_at(secret(), now)
    used = totp.matching_step(secret(), code, now)
    assert totp.matching_step(secret(), code, now, after_step=used) is None


@pytest.mark.parametrize("bad", ["", "12345", "1234567", "abcdef", "１２３４５６"])
def test_malformed_codes_match_nothing(bad):
    assert totp.matching_step(secret(), bad, 1_700_000_000) is None


def test_recovery_codes_hash_alike_however_typed():
    code = totp.recovery_code()
    assert totp.hash_recovery_code(code) == totp.hash_recovery_code(code.upper().replace("-", " - ").replace(" ", ""))
