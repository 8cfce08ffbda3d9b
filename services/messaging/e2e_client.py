"""A reference client for end-to-end encrypted (secret) conversations: key handling and sealing.

The server only stores and relays opaque bytes; everything here runs on the
client. Primitives come from `cryptography` (pyca), nothing is home-made:

- Each device holds an X25519 key pair; it publishes the public key
  (POST /v1/users/me/devices) and keeps the private key to itself.
- A message is sealed once per device of the conversation (the other
  member's and the sender's other devices): a fresh ephemeral X25519 key,
  its shared secret with the device's public key through HKDF-SHA256 (info
  binds both public keys) gives a one-time ChaCha20-Poly1305 key; the
  associated data binds the conversation, the sender and the client message
  id, so the server cannot replay a ciphertext elsewhere or claim another
  sender for it.
- Envelope bytes: version (1) | ephemeral public key (32) | nonce (12) | ciphertext+tag.

NOTE: what this does not give (yet): sender authentication beyond the
account the server vouches for (no identity signature), forward secrecy for
the recipient's side (static device keys, no ratchet), and key verification
(a safety number to compare out of band). The server could hand out a key of
its own for a device; a client that pins the keys it has seen notices.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = 1
INFO = b"pictor-e2e-v1"
KEY_BYTES = 32
NONCE_BYTES = 12
RAW = {"encoding": serialization.Encoding.Raw, "format": serialization.PublicFormat.Raw}


def public_bytes(key: X25519PublicKey) -> bytes:
    return key.public_bytes(**RAW)


def associated_data(conversation_id: str | int, sender_id: str | int, client_message_id: str) -> bytes:
    return f"{int(conversation_id)}|{int(sender_id)}|{client_message_id}".encode()


def _key(shared: bytes, ephemeral_public: bytes, device_public: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None,
                info=INFO + ephemeral_public + device_public).derive(shared)


def seal(plaintext: bytes, device_public: bytes, aad: bytes) -> bytes:
    """One device's envelope of `plaintext`."""
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = public_bytes(ephemeral.public_key())
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(device_public))
    nonce = os.urandom(NONCE_BYTES)
    sealed = ChaCha20Poly1305(_key(shared, ephemeral_public, device_public)).encrypt(nonce, plaintext, aad)
    return bytes([VERSION]) + ephemeral_public + nonce + sealed


def open_sealed(envelope: bytes, private_key: X25519PrivateKey, aad: bytes) -> bytes:
    """The plaintext of an envelope sealed to this device; cryptography's InvalidTag when it was not,
    or when the envelope or its associated data was altered."""
    if len(envelope) < 1 + KEY_BYTES + NONCE_BYTES + 16 or envelope[0] != VERSION:
        raise ValueError("not an envelope of this version")
    ephemeral_public = envelope[1:1 + KEY_BYTES]
    nonce = envelope[1 + KEY_BYTES:1 + KEY_BYTES + NONCE_BYTES]
    shared = private_key.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
    key = _key(shared, ephemeral_public, public_bytes(private_key.public_key()))
    return ChaCha20Poly1305(key).decrypt(nonce, envelope[1 + KEY_BYTES + NONCE_BYTES:], aad)


@dataclass
class Device:
    """One device of a signed-in user: its private key never leaves this object."""

    private_key: X25519PrivateKey
    device_id: str = ""

    @classmethod
    def new(cls) -> Device:
        return cls(X25519PrivateKey.generate())

    @property
    def public_key(self) -> bytes:
        return public_bytes(self.private_key.public_key())


class SecretClient:
    """A device of one user talking to the gateway (JSON over HTTP, stdlib only)."""

    def __init__(self, port: int, token: str, user_id: str, device: Device | None = None,
                 host: str = "127.0.0.1") -> None:
        self.host, self.port, self.token, self.user_id = host, port, token, user_id
        self.device = device or Device.new()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers={"authorization": f"Bearer {self.token}", "content-type": "application/json"})
            response = conn.getresponse()
            data = json.loads(response.read() or b"{}")
        finally:
            conn.close()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {data}")
        return data

    def register(self) -> str:
        """Publish this device's public key; its device id."""
        reply = self._call("POST", "/v1/users/me/devices",
                           {"public_key": base64.b64encode(self.device.public_key).decode()})
        self.device.device_id = reply["id"]
        return self.device.device_id

    def devices_of(self, user_id: str) -> dict[str, bytes]:
        reply = self._call("GET", f"/v1/users/{user_id}/devices")
        return {d["id"]: base64.b64decode(d["public_key"]) for d in reply.get("devices", [])}

    def start(self, other_id: str) -> dict:
        return self._call("POST", "/v1/conversations", {"member_ids": [other_id], "secret": True})

    def send(self, conversation: dict, plaintext: str, client_message_id: str | None = None) -> dict:
        """Seal `plaintext` for every device of the conversation but this one, and send it."""
        client_message_id = client_message_id or uuid.uuid4().hex
        aad = associated_data(conversation["id"], self.user_id, client_message_id)
        keys: dict[str, bytes] = {}
        for member in conversation["members"]:
            keys.update(self.devices_of(member["user"]["id"]))
        keys.pop(self.device.device_id, None)
        envelopes = [{"device_id": device_id, "ciphertext": base64.b64encode(seal(plaintext.encode(), key, aad)).decode()}
                     for device_id, key in keys.items()]
        return self._call("POST", f"/v1/conversations/{conversation['id']}/messages",
                          {"client_message_id": client_message_id, "envelopes": envelopes,
                           "sender_device_id": self.device.device_id})

    def read(self, message: dict) -> str:
        """The plaintext of a message (from the API or a stream event) sealed to this device."""
        aad = associated_data(message["conversation_id"], message["sender_id"], message["client_message_id"])
        for envelope in message.get("envelopes", []):
            if envelope["device_id"] == self.device.device_id:
                return open_sealed(base64.b64decode(envelope["ciphertext"]), self.device.private_key, aad).decode()
        raise LookupError(f"message {message['id']} has no envelope for device {self.device.device_id}")

    def messages(self, conversation_id: str) -> list[dict]:
        return self._call("GET", f"/v1/conversations/{conversation_id}/messages").get("messages", [])
