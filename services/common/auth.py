"""Access tokens: RS256 JWTs signed by accounts, verified by Envoy and by every service.

The private key signs; the public JWKS is what Envoy's jwt_authn and the
services verify with, so a leaked JWKS grants nothing. Both files are created on
first start of the embedded stack (or mounted in a deployment).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.common import revocation
from services.common.errors import Unauthenticated
from services.common.files import write_atomically

AUDIENCE = "pictor"
ALGORITHM = "RS256"


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _jwk(public_key: rsa.RSAPublicKey) -> dict[str, str]:
    numbers = public_key.public_numbers()
    jwk = {"kty": "RSA", "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}
    # RFC 7638 thumbprint as the key id, so a rotated key gets a new kid.
    canonical = json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode()
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
    return {**jwk, "kid": kid, "alg": ALGORITHM, "use": "sig"}


def ensure_signing_key(private_key_file: Path, jwks_file: Path) -> None:
    """Create an RSA key pair and its JWKS unless they exist. Idempotent."""
    if private_key_file.exists() and jwks_file.exists():
        return
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    private_key_file.parent.mkdir(parents=True, exist_ok=True)
    jwks_file.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(private_key_file, pem, mode=0o600)
    write_atomically(jwks_file, json.dumps({"keys": [_jwk(key.public_key())]}, indent=2).encode(), mode=0o644)


@dataclass(frozen=True)
class TokenSigner:
    # The parsed key: parsing the PEM on every call costs ~50 ms, signing ~0.4 ms.
    private_key: rsa.RSAPrivateKey
    kid: str
    issuer: str
    ttl_s: int

    @classmethod
    def from_files(cls, private_key_file: Path, issuer: str, ttl_s: int) -> TokenSigner:
        key = serialization.load_pem_private_key(private_key_file.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return cls(key, _jwk(key.public_key())["kid"], issuer, ttl_s)

    def sign(self, user_id: int, now: float | None = None, session_id: int | None = None) -> str:
        """An access token for `user_id`; `session_id`: the sign-in (refresh-token family) it came from."""
        issued = int(now if now is not None else time.time())
        claims = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": str(user_id),
            "iat": issued,
            "exp": issued + self.ttl_s,
            "jti": base64.urlsafe_b64encode(os.urandom(9)).decode(),
        }
        if session_id is not None:
            claims["sid"] = str(session_id)
        return jwt.encode(claims, self.private_key, algorithm=ALGORITHM, headers={"kid": self.kid})


# Tokens whose signature and claims were checked, kept so that a client's next calls with the same
# token (it sends one for its lifetime) skip the RSA verification (~0.1 ms a call).
VERIFIED_TOKENS = 10_000


class TokenVerifier:
    """Verifies bearer tokens against a JWKS file (the same one Envoy reads).

    A token that passed is remembered (the exact string; up to VERIFIED_TOKENS, oldest out first):
    the same string again needs no second signature check, only its expiry, which is checked on
    every use, and the revocations, which are too.
    """

    def __init__(self, jwks_file: Path, issuer: str) -> None:
        self._keys = {
            jwk["kid"]: jwt.PyJWK(jwk).key for jwk in json.loads(jwks_file.read_text())["keys"]
        }
        self._issuer = issuer
        self._verified: dict[str, dict] = {}

    def verify(self, token: str) -> int:
        """The user id the token was issued to; Unauthenticated when it is not valid."""
        return int(self._claims(token)["sub"])

    def _claims(self, token: str) -> dict:
        claims = self._verified.get(token)
        if claims is None or claims["exp"] <= time.time():
            self._verified.pop(token, None)
            claims = self._decoded(token)
            if len(self._verified) >= VERIFIED_TOKENS:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = claims
        revocations = revocation.current()
        if revocations is not None:
            sid = claims.get("sid")
            if revocations.revoked(int(claims["sub"]), int(claims["iat"]),
                                   int(sid) if isinstance(sid, str) and sid.isdigit() else None):
                raise Unauthenticated("access token was revoked (signed out, suspended or deleted); sign in again",
                                      reason="TOKEN_REVOKED")
        return claims

    def _decoded(self, token: str) -> dict:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._keys.get(kid)
            if key is None:
                raise Unauthenticated("access token signed by an unknown key", reason="TOKEN_INVALID")
            claims = jwt.decode(
                token, key, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=self._issuer,
                options={"require": ["exp", "sub", "iat"]},
            )
            int(claims["sub"])  # a subject that is not a user id: not valid (ValueError, below)
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("access token expired", reason="TOKEN_EXPIRED") from None
        except (jwt.InvalidTokenError, ValueError):
            raise Unauthenticated("access token is not valid", reason="TOKEN_INVALID") from None
        return claims

    def caller(self, context: grpc.aio.ServicerContext) -> int | None:
        """The authenticated caller, None when the call carries no token."""
        token = self._bearer(context)
        return None if token is None else self.verify(token)

    def caller_session(self, context: grpc.aio.ServicerContext) -> tuple[int, int | None]:
        """The authenticated caller and the session its token came from (None for a token without one)."""
        token = self._bearer(context)
        if token is None:
            raise Unauthenticated("sign in first: this call needs an access token", reason="TOKEN_MISSING")
        claims = self._claims(token)
        sid = claims.get("sid")
        return int(claims["sub"]), int(sid) if isinstance(sid, str) and sid.isdigit() else None

    @staticmethod
    def _bearer(context: grpc.aio.ServicerContext) -> str | None:
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                scheme, _, token = str(value).partition(" ")
                if scheme.lower() != "bearer" or not token.strip():
                    raise Unauthenticated("authorization must be 'Bearer <access_token>'", reason="TOKEN_INVALID")
                return token.strip()
        return None

    def require_caller(self, context: grpc.aio.ServicerContext) -> int:
        user_id = self.caller(context)
        if user_id is None:
            raise Unauthenticated("sign in first: this call needs an access token", reason="TOKEN_MISSING")
        return user_id
