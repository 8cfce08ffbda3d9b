"""Signed URLs: a signature opens the variants of exactly one media item until it expires."""

from __future__ import annotations

import base64
import stat

import pytest

from services.common.errors import PermissionDenied
from services.media.signing import KEY_BYTES, MAC_BYTES, ExpiryKey, UrlSigner, load_or_create_key

NOW = 1_800_000_000.0


@pytest.fixture
def signer() -> UrlSigner:
    return UrlSigner(b"k" * 32, ttl_s=3600, bucket_s=300)


def test_a_fresh_signature_verifies(signer):
    exp, sig = signer.sign(42, NOW)
    signer.verify(42, exp, sig, NOW)


def tampered(sig: str) -> str:
    return ("B" if sig[0] == "A" else "A") + sig[1:]


@pytest.mark.parametrize("change", ["media_id", "exp", "sig"])
def test_changing_any_part_breaks_the_signature(signer, change):
    exp, sig = signer.sign(42, NOW)
    parts = {"media_id": 42, "exp": exp, "sig": sig}
    parts[change] = {"media_id": 43, "exp": exp + 300, "sig": tampered(sig)}[change]
    with pytest.raises(PermissionDenied) as denied:
        signer.verify(parts["media_id"], parts["exp"], parts["sig"], NOW)
    assert denied.value.reason == "URL_SIGNATURE_INVALID"


def test_another_key_does_not_verify(signer):
    exp, sig = signer.sign(42, NOW)
    with pytest.raises(PermissionDenied):
        UrlSigner(b"x" * 32, 3600).verify(42, exp, sig, NOW)


def test_an_expired_url_is_refused(signer):
    exp, sig = signer.sign(42, NOW)
    with pytest.raises(PermissionDenied) as denied:
        signer.verify(42, exp, sig, now=exp + 1)
    assert denied.value.reason == "URL_EXPIRED"


def test_non_ascii_signature_is_refused_not_crashed(signer):
    exp, _ = signer.sign(42, NOW)
    with pytest.raises(PermissionDenied):
        signer.verify(42, exp, "é" * 22, NOW)


def test_an_expiry_key_signs_what_the_signer_verifies_for_its_expiry_only(signer):
    key = signer.current_key(NOW)
    assert key.exp == signer.expiry(NOW) and key.key != b"k" * 32  # derived, not the signer's own key
    assert key.query(42) == f"exp={key.exp}&sig={key.signature(42)}"
    assert (key.exp, key.signature(42)) == signer.sign(42, NOW)
    signer.verify(42, key.exp, key.signature(42), NOW)
    relabelled = ExpiryKey(key.exp + 300, key.key)  # the key given for one expiry, used for a later one
    with pytest.raises(PermissionDenied) as denied:
        signer.verify(42, relabelled.exp, relabelled.signature(42), NOW)
    assert denied.value.reason == "URL_SIGNATURE_INVALID"
    with pytest.raises(PermissionDenied):
        signer.verify(43, key.exp, key.signature(42), NOW)


def test_expiry_is_at_least_the_ttl_and_on_a_bucket(signer):
    exp = signer.expiry(NOW + 17)
    assert exp % 300 == 0 and NOW + 17 + 3600 <= exp < NOW + 17 + 3600 + 300


def test_urls_signed_within_one_bucket_are_identical(signer):
    start = signer.expiry(NOW) - 3600 - 300 + 1  # just after a bucket boundary
    first = signer.sign(42, start)
    assert all(signer.sign(42, start + t) == first for t in (1, 60, 298))


def test_signature_is_url_safe_base64_without_padding(signer):
    _, sig = signer.sign(42, NOW)
    assert "=" not in sig and "+" not in sig and "/" not in sig
    assert len(base64.urlsafe_b64decode(sig + "==")) == MAC_BYTES == 16


def test_key_is_created_once_with_mode_0600(tmp_path):
    path = tmp_path / "keys" / "media_url.key"
    key = load_or_create_key(path)
    assert len(key) == KEY_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key
    assert [p.name for p in path.parent.iterdir()] == ["media_url.key"]  # no staging file left


def test_an_existing_key_is_never_replaced(tmp_path):
    path = tmp_path / "media_url.key"
    path.write_bytes(b"s" * KEY_BYTES)
    assert load_or_create_key(path) == b"s" * KEY_BYTES


def test_a_key_of_the_wrong_size_stops_the_start(tmp_path):
    path = tmp_path / "media_url.key"
    path.write_bytes(b"short")
    with pytest.raises(SystemExit, match="exactly 32 bytes"):
        load_or_create_key(path)
