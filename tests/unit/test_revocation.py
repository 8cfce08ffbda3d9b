"""The revocation list's check (services/common/revocation.py), as every TokenVerifier makes it."""

from __future__ import annotations

import time

import pytest

from services.common import revocation
from services.common.auth import TokenSigner, TokenVerifier, ensure_signing_key
from services.common.errors import Unauthenticated
from services.common.revocation import RevocationList, session_member, user_member


@pytest.fixture
def tokens(tmp_path):
    ensure_signing_key(tmp_path / "key.pem", tmp_path / "jwks.json")
    return TokenSigner.from_files(tmp_path / "key.pem", "pictor", 900), TokenVerifier(tmp_path / "jwks.json", "pictor")


@pytest.fixture
def installed():
    revocations = RevocationList(None, 900)
    revocation.install(revocations)
    yield revocations
    revocation.install(None)


def test_a_users_tokens_issued_until_the_revocation_are_refused(tokens, installed):
    signer, verifier = tokens
    now = time.time()
    old, other = signer.sign(42, now=now - 10), signer.sign(43, now=now - 10)
    installed.load([(user_member(42).encode(), int(now) - 5)])
    with pytest.raises(Unauthenticated) as error:
        verifier.verify(old)
    assert error.value.reason == "TOKEN_REVOKED"
    assert verifier.verify(other) == 43


def test_a_token_issued_after_the_revocation_works(tokens, installed):
    signer, verifier = tokens
    now = time.time()
    installed.load([(user_member(42), int(now) - 5)])
    assert verifier.verify(signer.sign(42, now=now)) == 42


def test_a_sessions_revocation_refuses_that_session_alone(tokens, installed):
    signer, verifier = tokens
    now = time.time()
    signed_out, still_in = signer.sign(42, now=now - 10, session_id=7), signer.sign(42, now=now - 10, session_id=8)
    installed.load([(session_member(7), int(now))])
    with pytest.raises(Unauthenticated) as error:
        verifier.verify(signed_out)
    assert error.value.reason == "TOKEN_REVOKED"
    assert verifier.verify(still_in) == 42


def test_without_a_list_installed_nothing_is_refused(tokens):
    signer, verifier = tokens
    assert revocation.current() is None
    assert verifier.verify(signer.sign(42)) == 42
