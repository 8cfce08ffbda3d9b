from __future__ import annotations

import json
import time

import pytest

from services.common.auth import TokenSigner, TokenVerifier, ensure_signing_key
from services.common.errors import Unauthenticated


@pytest.fixture
def keys(tmp_path):
    ensure_signing_key(tmp_path / "key.pem", tmp_path / "jwks.json")
    return tmp_path / "key.pem", tmp_path / "jwks.json"


def test_token_round_trip(keys):
    signer = TokenSigner.from_files(keys[0], "pictor", 60)
    assert TokenVerifier(keys[1], "pictor").verify(signer.sign(42)) == 42


def test_expired_token_is_rejected(keys):
    signer = TokenSigner.from_files(keys[0], "pictor", 60)
    with pytest.raises(Unauthenticated) as error:
        TokenVerifier(keys[1], "pictor").verify(signer.sign(42, now=time.time() - 3600))
    assert error.value.reason == "TOKEN_EXPIRED"


def test_a_token_verified_before_still_expires(keys):
    signer = TokenSigner.from_files(keys[0], "pictor", 60)
    verifier = TokenVerifier(keys[1], "pictor")
    token = signer.sign(42, now=time.time() - 59)  # a second left
    assert verifier.verify(token) == 42
    time.sleep(1.1)
    with pytest.raises(Unauthenticated) as error:
        verifier.verify(token)
    assert error.value.reason == "TOKEN_EXPIRED"


def test_a_token_verified_before_does_not_vouch_for_one_with_its_signature_and_other_claims(keys):
    signer = TokenSigner.from_files(keys[0], "pictor", 60)
    verifier = TokenVerifier(keys[1], "pictor")
    token = signer.sign(42)
    assert verifier.verify(token) == 42
    header, _, signature = token.split(".")
    other_claims = signer.sign(43).split(".")[1]
    with pytest.raises(Unauthenticated) as error:
        verifier.verify(f"{header}.{other_claims}.{signature}")
    assert error.value.reason == "TOKEN_INVALID"
    assert verifier.verify(token) == 42


def test_token_from_another_key_is_rejected(keys, tmp_path):
    other = tmp_path / "other"
    ensure_signing_key(other / "key.pem", other / "jwks.json")
    forged = TokenSigner.from_files(other / "key.pem", "pictor", 60).sign(42)
    with pytest.raises(Unauthenticated):
        TokenVerifier(keys[1], "pictor").verify(forged)


def test_wrong_issuer_is_rejected(keys):
    token = TokenSigner.from_files(keys[0], "someone-else", 60).sign(42)
    with pytest.raises(Unauthenticated):
        TokenVerifier(keys[1], "pictor").verify(token)


def test_signing_key_is_created_once_and_private(keys):
    private, jwks = keys
    before = jwks.read_text()
    ensure_signing_key(private, jwks)
    assert jwks.read_text() == before
    assert private.stat().st_mode & 0o077 == 0
    assert "d" not in json.loads(before)["keys"][0]  # the JWKS holds no private part
