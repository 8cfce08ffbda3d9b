"""Sign-in attempts per account, counted by the account a login names, whatever its form.

The gateway limits sign-ins per account name (services.mesh.rate_limits): it reads the name
from the request and cannot know that `ada` and `ada@example.com` are one account, so a
guesser alternating the two would get twice the budget. Here the same limit
(PICTOR_RATE_LIMIT_SIGN_IN_ACCOUNT) is kept per account id, once the login is resolved,
before the password is checked: every attempt on the account counts, right or wrong.

Redis key (owned by accounts):
  accounts:sign-ins:{user_id}  STRING  attempts in the current window; expires with it

With Redis away the attempt is let through (logged): the gateway's per-name and per-address
buckets still hold.
"""

from __future__ import annotations

import logging
import math

import redis.asyncio as aioredis

from services.common.config import Limit
from services.common.dependencies import REDIS_ERRORS

log = logging.getLogger(__name__)

# KEYS[1]: the account's counter; ARGV: limit, window (ms). Returns -1 when the attempt may go
# on, else the milliseconds until the window ends.
TAKE_SCRIPT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n <= tonumber(ARGV[1]) then return -1 end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  left = tonumber(ARGV[2])
end
return left
"""


def attempts_key(user_id: int) -> str:
    return f"accounts:sign-ins:{user_id}"


class SignInAttempts:
    def __init__(self, redis: aioredis.Redis, limit: Limit) -> None:
        self.limit = limit
        self._take = redis.register_script(TAKE_SCRIPT)

    async def retry_after_s(self, user_id: int) -> int | None:
        """Counts an attempt on the account: None when it may go on, else the seconds to wait."""
        try:
            left_ms = int(await self._take(keys=[attempts_key(user_id)],
                                           args=[self.limit.count, self.limit.seconds * 1000]))
        except REDIS_ERRORS as error:
            log.warning("sign-in attempts of user %d not counted (%s)", user_id, error)
            return None
        return None if left_ms < 0 else max(1, math.ceil(left_ms / 1000))
