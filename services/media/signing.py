"""Signed variant URLs: the signature is the permission to fetch, until it expires.

    /v1/media/{media_id}/{file}?exp={unix seconds}&sig={HMAC-SHA256, first 128 bits, url-safe base64, no padding}

The MAC covers the media id and the expiry: one signature opens every variant
of one item ("150.jpg" .. "1080.webp"), so a client given one URL template per
item reaches every size (a feed page carries one, not eight), and neither the
id nor the expiry can be changed. Expiries are rounded up to a bucket (5
minutes by default): every URL for one variant signed within a bucket is the
same string, which browsers and CDNs cache as one object.

The MAC is keyed per expiry: sig = HMAC(HMAC(key, "url-expiry\n{exp}"), "{media_id}").
The inner HMAC (ExpiryKey) signs URLs that expire at exp and no others, so
media can hand the one for its freshest expiry to the feed (GetUrlSigningKey),
which then signs its cached shapes' URLs again itself, without a hop per page:
a key that opens any item until exp is what SignMediaUrls already gives its
caller, item by item, and it stops opening anything at exp like the URLs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from services.common.errors import PermissionDenied
from services.common.files import write_atomically
from services.media.blobstore import fsync_dir

KEY_BYTES = 32
MAC_BYTES = 16  # HMAC-SHA256 truncated to 128 bits (RFC 2104 section 5: at least half the hash)
# Expiry keys kept made (verifying a URL makes its expiry's key): the live expiries are a handful of
# buckets; URLs with made-up expiries only refill it.
EXPIRY_KEYS_KEPT = 256


def load_or_create_key(path: Path) -> bytes:
    """The URL signing key, created (32 random bytes, mode 0600) on first start.

    NOTE: created with link(2), which fails when the file exists, rather than
    replaced: two processes starting at once must not each sign with a key the
    other then overwrites.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_name(f".{path.name}.{os.getpid()}.new")
        write_atomically(staged, os.urandom(KEY_BYTES), mode=0o600)
        try:
            os.link(staged, path)
        except FileExistsError:
            pass  # another process won; use its key
        finally:
            staged.unlink(missing_ok=True)
        fsync_dir(path.parent)
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise SystemExit(f"{path} must hold exactly {KEY_BYTES} bytes (it has {len(key)}); delete it to make a new one")
    return key


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class ExpiryKey:
    """The key that signs media URLs expiring at `exp`, and only those."""

    exp: int
    key: bytes

    def signature(self, media_id: int) -> str:
        return _b64(hmac.new(self.key, str(media_id).encode(), hashlib.sha256).digest()[:MAC_BYTES])

    def query(self, media_id: int) -> str:
        """What a URL of the item carries: `exp=...&sig=...`."""
        return f"exp={self.exp}&sig={self.signature(media_id)}"


class UrlSigner:
    def __init__(self, key: bytes, ttl_s: int, bucket_s: int = 300) -> None:
        if len(key) < 16:
            raise ValueError("the URL signing key is too short")
        self._key = key
        self.ttl_s = ttl_s
        self.bucket_s = max(1, bucket_s)
        self._expiry_keys: dict[int, ExpiryKey] = {}

    def expiry(self, now: float) -> int:
        """At least ttl_s from now, rounded up to the next bucket boundary."""
        return math.ceil((now + self.ttl_s) / self.bucket_s) * self.bucket_s

    def expiry_key(self, exp: int) -> ExpiryKey:
        found = self._expiry_keys.get(exp)
        if found is None:
            if len(self._expiry_keys) >= EXPIRY_KEYS_KEPT:
                self._expiry_keys.clear()
            key = hmac.new(self._key, f"url-expiry\n{exp}".encode(), hashlib.sha256).digest()
            found = self._expiry_keys[exp] = ExpiryKey(exp, key)
        return found

    def current_key(self, now: float | None = None) -> ExpiryKey:
        """The key for the expiry a URL signed now gets."""
        return self.expiry_key(self.expiry(time.time() if now is None else now))

    def signature(self, media_id: int, exp: int) -> str:
        return self.expiry_key(exp).signature(media_id)

    def sign(self, media_id: int, now: float | None = None) -> tuple[int, str]:
        """An expiry and the signature that opens every variant of the item until then."""
        key = self.current_key(now)
        return key.exp, key.signature(media_id)

    def verify(self, media_id: int, exp: int, sig: str, now: float | None = None) -> None:
        """PermissionDenied unless `sig` is ours for exactly this item and expiry, and `exp` has not passed."""
        expected = self.signature(media_id, exp)
        if not hmac.compare_digest(expected.encode(), sig.encode("utf-8", "replace")):
            raise PermissionDenied("the URL's signature is not valid", reason="URL_SIGNATURE_INVALID")
        if exp < (time.time() if now is None else now):
            raise PermissionDenied("the URL has expired: fetch the media again for a fresh one",
                                   reason="URL_EXPIRED")
