"""Per-user replay buffers and stream tickets, in Redis (keys: services.realtime.keys).

A user's events go into their own Redis stream; its ids are the events' ids,
so "resume after id X" is XRANGE (X, +] whichever replica serves the client.
An append also PUBLISHes on the user's wake channel, where the replicas with
one of the user's streams open hear it (services.realtime.hub).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time

import redis.asyncio as aioredis

from services.realtime import keys

# An event id as Redis makes them: "<ms>-<seq>" (a bare "<ms>" means "<ms>-0").
EVENT_ID = re.compile(r"^[0-9]{1,19}(-[0-9]{1,19})?$")
OLDEST = "0-0"

# KEYS: buffer, seen marker. ARGV: wake channel, maxlen, buffer ttl, seen ttl, payloads...
# Appends the payloads unless the marker says this bus event was appended already, so an event
# the bus delivers twice is in the buffer once.
APPEND = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[4]) == false then return 0 end
for i = 5, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[i])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[1], '')
return #ARGV - 4
"""
SEEN_TTL_S = 86_400


def parse_event_id(raw: str) -> tuple[int, int] | None:
    """(ms, seq) of an event id, None when it is not one."""
    if not EVENT_ID.match(raw):
        return None
    ms, _, seq = raw.partition("-")
    parsed = (int(ms), int(seq or 0))
    return parsed if max(parsed) < 2**64 else None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class ReplayBuffers:
    def __init__(self, redis: aioredis.Redis, max_events: int, ttl_s: int) -> None:
        self.redis = redis
        self.max_events = max_events
        self.ttl_s = ttl_s
        self._append = redis.register_script(APPEND)

    async def append(self, user_id: int, source_id: str, payloads: list[bytes]) -> int:
        """Add the events one bus event caused (source_id: its event id); 0 when it was added before."""
        return int(await self._append(
            keys=[keys.events(user_id), keys.seen(user_id, source_id)],
            args=[keys.wake(user_id), self.max_events, self.ttl_s, SEEN_TTL_S, *payloads]))

    async def read_after(self, user_id: int, after: str, count: int) -> list[tuple[str, bytes]]:
        """Up to `count` events after id `after`, oldest first."""
        rows = await self.redis.xrange(keys.events(user_id), min=f"({after}", max="+", count=count)
        return [(_text(event_id), fields[b"e"]) for event_id, fields in rows]

    async def last_id(self, user_id: int) -> str:
        rows = await self.redis.xrevrange(keys.events(user_id), count=1)
        return _text(rows[0][0]) if rows else OLDEST

    async def lost_after(self, user_id: int, after: str) -> bool:
        """Whether events after `after` were trimmed away: `after` is older than the oldest kept and
        is not itself kept (a buffer that never held more than it keeps has lost nothing)."""
        if parse_event_id(after) == (0, 0):
            return False
        rows = await self.redis.xrange(keys.events(user_id), count=1)
        if not rows:
            return False
        oldest, asked = parse_event_id(_text(rows[0][0])), parse_event_id(after)
        if oldest is None or asked is None or asked >= oldest:
            return False
        return await self.redis.xlen(keys.events(user_id)) >= self.max_events


class Tickets:
    """Short-lived single-use stream tickets. Only a hash of the ticket is stored."""

    def __init__(self, redis: aioredis.Redis, ttl_s: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s

    @staticmethod
    def _key(ticket: str) -> str:
        return keys.ticket(hashlib.sha256(ticket.encode()).hexdigest())

    async def issue(self, user_id: int) -> tuple[str, float]:
        """A new ticket for the user, and when it expires (Unix seconds)."""
        ticket = secrets.token_urlsafe(24)
        await self.redis.set(self._key(ticket), user_id, ex=self.ttl_s)
        return ticket, time.time() + self.ttl_s

    async def redeem(self, ticket: str) -> int | None:
        """The ticket's user, once: None when it is unknown, spent or expired."""
        if not ticket or len(ticket) > 128:
            return None
        value = await self.redis.getdel(self._key(ticket))
        return int(value) if value is not None else None
