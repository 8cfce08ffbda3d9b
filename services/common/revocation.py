"""Access tokens revoked before they expire: a deleted or suspended account's, a signed-out session's.

Access tokens are JWTs checked without a round trip (Envoy and each service verify the
signature), so a token would otherwise work until it expires (PICTOR_ACCESS_TOKEN_TTL).
Accounts, the tokens' issuer, writes the revocations into one Redis sorted set, part of the
tokens' contract like the JWKS: member `u:<user_id>` (every token of the user) or
`s:<session_id>` (the tokens of one sign-in, the `sid` claim), score the Unix second of the
revocation; a token issued at or before it is void. An entry outlives every token it voids
by a minute and is then pruned, so the set holds only the last TTL's revocations.

Every process keeps a copy in memory, reloaded each PICTOR_REVOCATION_REFRESH_MS (1,000), and
checks each call's token against the copy (a dict lookup: nothing added to a request's path
but the lookup). A revoked token is refused, 401 TOKEN_REVOKED, within about a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import redis.asyncio as aioredis
import redis.exceptions

from services.common.dependencies import REDIS_ERRORS

log = logging.getLogger(__name__)

KEY = "accounts:revoked-tokens"
# How long past a token's expiry its revocation is kept (clock skew between processes).
MARGIN_S = 60


def user_member(user_id: int) -> str:
    return f"u:{user_id}"


def session_member(session_id: int) -> str:
    return f"s:{session_id}"


async def revoke(client: aioredis.Redis, token_ttl_s: int, *, user_id: int = 0, session_id: int = 0,
                 now: float | None = None) -> None:
    """Void every access token of the user (or of the session) issued until now (accounts' writes)."""
    now = time.time() if now is None else now
    members = {m: int(now) for m in ([user_member(user_id)] if user_id else [])
               + ([session_member(session_id)] if session_id else [])}
    if not members:
        return
    async with client.pipeline(transaction=True) as pipe:
        pipe.zadd(KEY, members)
        pipe.zremrangebyscore(KEY, "-inf", now - token_ttl_s - MARGIN_S)
        await pipe.execute()


class TokenRevoker:
    """Accounts' writes: every access token of a user, or of one session, void from now."""

    def __init__(self, client: aioredis.Redis, token_ttl_s: int) -> None:
        self.client = client
        self.token_ttl_s = token_ttl_s

    async def user(self, user_id: int) -> None:
        await revoke(self.client, self.token_ttl_s, user_id=user_id)

    async def session(self, session_id: int) -> None:
        await revoke(self.client, self.token_ttl_s, session_id=session_id)


class RevocationList:
    """This process's copy of the revocations, and the check every token goes through."""

    def __init__(self, client: aioredis.Redis | None, token_ttl_s: int, refresh_s: float = 1.0) -> None:
        self.client = client
        self.token_ttl_s = token_ttl_s
        self.refresh_s = refresh_s
        self._revoked: dict[str, float] = {}
        self._task: asyncio.Task | None = None

    def revoked(self, user_id: int, issued_at: int, session_id: int | None) -> bool:
        if not self._revoked:
            return False
        until = self._revoked.get(user_member(user_id))
        if until is not None and issued_at <= until:
            return True
        until = self._revoked.get(session_member(session_id)) if session_id else None
        return until is not None and issued_at <= until

    async def reload(self) -> None:
        if self.client is None:
            return
        since = time.time() - self.token_ttl_s - MARGIN_S
        self.load(await self.client.zrangebyscore(KEY, since, "+inf", withscores=True))

    def load(self, entries: list[tuple[bytes | str, float]]) -> None:
        """Replace the copy with (member, revoked at) pairs as the sorted set holds them."""
        self._revoked = {(m.decode() if isinstance(m, bytes) else m): score for m, score in entries}

    async def _run(self) -> None:
        while True:
            try:
                await self.reload()
            except (*REDIS_ERRORS, redis.exceptions.RedisError) as error:  # keep the last copy, try again
                log.warning("revocation list not reloaded (%s: %s)", type(error).__name__, error)
            await asyncio.sleep(self.refresh_s)

    def start(self) -> None:
        if self.client is not None and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


_process: RevocationList | None = None


def install(revocations: RevocationList | None) -> None:
    """Make `revocations` the one every TokenVerifier of this process checks (services.common.server)."""
    global _process
    _process = revocations


def current() -> RevocationList | None:
    return _process
