"""Time-based one-time passwords (RFC 6238, over RFC 4226's HOTP): the second factor of sign-in.

HMAC-SHA1, 6 digits, 30-second steps, as every authenticator app reads an
otpauth:// URI. A code is accepted for the step it was made in and the steps
either side (clock drift), and only for a step later than the last one
accepted (a code is never good twice).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
from urllib.parse import quote

DIGITS = 6
STEP_S = 30
DRIFT_STEPS = 1
SECRET_BYTES = 20  # 160 bits, RFC 4226's recommendation


def new_secret() -> str:
    """A random secret, base32 without padding (what apps accept)."""
    return base64.b32encode(os.urandom(SECRET_BYTES)).decode().rstrip("=")


def _key(secret: str) -> bytes:
    return base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)


def hotp(key: bytes, counter: int, digits: int = DIGITS, digest: str = "sha1") -> str:
    mac = hmac.new(key, struct.pack(">Q", counter), digest).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def step_of(unix_time: float) -> int:
    return int(unix_time // STEP_S)


def code_at(secret: str, unix_time: float) -> str:
    return hotp(_key(secret), step_of(unix_time))


def matching_step(secret: str, code: str, unix_time: float, after_step: int = -1) -> int | None:
    """The step `code` was made for, within the drift window and later than `after_step`; else None."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    key, now = _key(secret), step_of(unix_time)
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if step > after_step and hmac.compare_digest(hotp(key, step), code):
            return step
    return None


def otpauth_uri(secret: str, account: str, issuer: str = "Pictor") -> str:
    label = quote(f"{issuer}:{account}")
    return f"otpauth://totp/{label}?secret={secret}&issuer={quote(issuer)}&algorithm=SHA1&digits={DIGITS}&period={STEP_S}"


def recovery_code() -> str:
    """One single-use recovery code: 10 base32 characters in two groups (50 bits)."""
    raw = base64.b32encode(os.urandom(10)).decode()[:10].lower()
    return f"{raw[:5]}-{raw[5:]}"


def hash_recovery_code(code: str) -> bytes:
    """What is kept of a recovery code (they are random: a plain hash is enough, as for refresh tokens)."""
    return hashlib.sha256(code.strip().lower().replace("-", "").encode()).digest()
