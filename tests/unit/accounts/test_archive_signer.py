"""services.accounts.exports.ArchiveSigner: an export archive's signed link."""

from __future__ import annotations

from services.accounts.exports import ArchiveSigner


def test_a_signature_is_valid_until_it_expires_and_for_its_export_only():
    signer = ArchiveSigner(b"k" * 32, ttl_s=60)
    exp, sig = signer.sign(7, now=1000)
    assert signer.valid(7, exp, sig, now=1000)
    assert not signer.valid(8, exp, sig, now=1000)
    assert not signer.valid(7, exp, sig, now=exp + 1)


def test_a_signature_with_characters_outside_ascii_is_refused_not_an_error():
    # The fuzzer's `sig=ö`: compare_digest raises TypeError for such a str.
    signer = ArchiveSigner(b"k" * 32, ttl_s=60)
    exp, _ = signer.sign(7, now=1000)
    assert not signer.valid(7, exp, "ö", now=1000)
    assert not signer.valid(7, exp, "", now=1000)
