"""The reference client's sealing: what one device seals, only that device opens, in its context."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag

from services.messaging.e2e_client import Device, associated_data, open_sealed, seal


def test_a_sealed_message_opens_with_the_devices_private_key():
    device = Device.new()
    aad = associated_data(1, 2, "m-1")
    assert open_sealed(seal(b"meet at noon", device.public_key, aad), device.private_key, aad) == b"meet at noon"


def test_another_devices_key_cannot_open_it():
    device, other = Device.new(), Device.new()
    aad = associated_data(1, 2, "m-1")
    with pytest.raises(InvalidTag):
        open_sealed(seal(b"meet at noon", device.public_key, aad), other.private_key, aad)


def test_an_envelope_moved_to_another_conversation_or_sender_does_not_open():
    device = Device.new()
    sealed = seal(b"meet at noon", device.public_key, associated_data(1, 2, "m-1"))
    for aad in (associated_data(9, 2, "m-1"), associated_data(1, 9, "m-1"), associated_data(1, 2, "m-2")):
        with pytest.raises(InvalidTag):
            open_sealed(sealed, device.private_key, aad)


def test_the_ciphertext_holds_no_plaintext_and_differs_each_time():
    device = Device.new()
    aad = associated_data(1, 2, "m-1")
    first, second = seal(b"meet at noon", device.public_key, aad), seal(b"meet at noon", device.public_key, aad)
    assert b"meet at noon" not in first and first != second


def test_a_tampered_envelope_does_not_open():
    device = Device.new()
    aad = associated_data(1, 2, "m-1")
    sealed = bytearray(seal(b"meet at noon", device.public_key, aad))
    sealed[-1] ^= 1
    with pytest.raises(InvalidTag):
        open_sealed(bytes(sealed), device.private_key, aad)
