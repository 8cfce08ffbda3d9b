"""Autocomplete's prefix index in Redis: users by what their names start with, without a planner.

Every word a user is found by (the folded username, its parts between
underscores, the words of the display name) gives its prefixes of 1 to
MAX_PREFIX characters; each prefix is a sorted set of the users it starts,
scored by follower count and cut to the CAP most followed. A query is one
script call: its own prefix set, then (4 characters and up) the sets of every
string one edit away from it (a letter missing, extra, wrong, or two swapped),
so "jhon" finds john; and the followed accounts whose words start with it,
wherever they rank. A query longer than MAX_PREFIX reads its first MAX_PREFIX
characters' set, and the documents tell which of those go on with the rest.

PostgreSQL stays the source (search_users): the indexer writes here after each
user change and follower count it applies there, and `python -m
services.search.rebuild` (`--only prefixes` for this index alone) fills it from
the table. Until a rebuild has finished, or on a stack whose index held no user
when it started (a fresh one, which events then fill), `ready()` is false and
autocomplete asks PostgreSQL instead: an index Redis lost never answers "nobody".

Every key carries the hash tag {ac}: one slot, so the scripts may read the sets
a query names in Redis Cluster too. NOTE: that puts the whole index on one node
(77 MB for the 100K-user seed: 36 MB of prefix sets, 41 MB of documents); split
it by first letter when it outgrows one.
"""

from __future__ import annotations

import json
import string
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.common.cluster import call_each
from services.search import keys
from services.search.service import Candidate, fold

MAX_PREFIX = 12
CAP = 64
# Letters tried where a query may have one wrong or missing.
ALPHABET = string.ascii_lowercase + string.digits + "_"
# Users one script call brings back: each prefix set gives at most `take`, all sets together this many.
MAX_FOUND = 200
# How long an answer of ready() is trusted (each query asks; Redis is asked at most this often).
READY_TTL_S = 2.0
# Followed accounts a query reads the documents of (the first so many of a list nobody reaches).
MAX_FOLLOWED = 5000

# KEYS[1] the documents; ARGV: prefix key stem, cap, user id, follower count, document, prefixes...
# The user's old prefixes that the new document no longer has are left; the new ones get the user.
PUT = """
local old = redis.call('HGET', KEYS[1], ARGV[3])
local keep = {}
for i = 5 + 1, #ARGV do keep[ARGV[i]] = true end
if old then
  for _, p in ipairs(cjson.decode(old).p) do
    if not keep[p] then redis.call('ZREM', ARGV[1] .. p, ARGV[3]) end
  end
end
local cap = tonumber(ARGV[2])
for i = 5 + 1, #ARGV do
  local key = ARGV[1] .. ARGV[i]
  redis.call('ZADD', key, ARGV[4], ARGV[3])
  if redis.call('ZCARD', key) > cap then redis.call('ZREMRANGEBYRANK', key, 0, -(cap + 1)) end
end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[5])
"""

# KEYS[1] the documents; ARGV: prefix key stem, user id.
REMOVE = """
local old = redis.call('HGET', KEYS[1], ARGV[2])
if not old then return 0 end
for _, p in ipairs(cjson.decode(old).p) do redis.call('ZREM', ARGV[1] .. p, ARGV[2]) end
redis.call('HDEL', KEYS[1], ARGV[2])
return 1
"""

# KEYS[1] the documents; ARGV: prefix key stem, cap, user id, follower count.
RESCORE = """
local raw = redis.call('HGET', KEYS[1], ARGV[3])
if not raw then return 0 end
local doc = cjson.decode(raw)
doc.c = tonumber(ARGV[4])
local cap = tonumber(ARGV[2])
for _, p in ipairs(doc.p) do
  local key = ARGV[1] .. p
  redis.call('ZADD', key, ARGV[4], ARGV[3])
  if redis.call('ZCARD', key) > cap then redis.call('ZREMRANGEBYRANK', key, 0, -(cap + 1)) end
end
redis.call('HSET', KEYS[1], ARGV[3], cjson.encode(doc))
return 1
"""

# KEYS[1] the documents; ARGV: prefix key stem, take per set, most in all, enough, the query, the
# followed ids' count n, n followed ids, then the prefixes to read, best first (the query's own, then
# its one-edit neighbours, read only while fewer than `enough` were found). Returns [prefix number
# (1 the query's own; 0 a followed account's), user id, document, ...]; each user once. A followed
# account's document comes only when one of its strings starts with the query (a cheap test, which
# the caller makes exact): a document is ~300 bytes, and someone may follow thousands.
LOOKUP = """
local stem, take, most, enough, q = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local n = tonumber(ARGV[6])
local first = 7 + n
local how, ids, seen = {}, {}, {}
for i = first, #ARGV do
  if #ids >= most or (i > first and #ids >= enough) then break end
  for _, id in ipairs(redis.call('ZREVRANGE', stem .. ARGV[i], 0, take - 1)) do
    if not seen[id] then
      seen[id] = true
      ids[#ids + 1] = id
      how[#ids] = i - first + 1
    end
  end
end
for j = 7, 6 + n do
  if not seen[ARGV[j]] then
    seen[ARGV[j]] = true
    ids[#ids + 1] = ARGV[j]
    how[#ids] = 0
  end
end
local result = {}
for start = 1, #ids, 1000 do
  local chunk = {}
  for j = start, math.min(start + 999, #ids) do chunk[#chunk + 1] = ids[j] end
  local docs = redis.call('HMGET', KEYS[1], unpack(chunk))
  for k, doc in ipairs(docs) do
    local j = start + k - 1
    if doc and (how[j] > 0 or string.find(doc, '"' .. q, 1, true)) then
      result[#result + 1] = how[j]; result[#result + 1] = ids[j]; result[#result + 1] = doc
    end
  end
end
return result
"""


def words(username: str, display_name: str) -> list[str]:
    """What a user is found by, folded: the username, its parts between underscores, the display
    name's words (as the SQL index's `folded` column has them)."""
    name = fold(username)
    return list(dict.fromkeys(w for w in [name, *name.split("_"), *fold(display_name).split()] if w))


def prefixes(found_by: list[str]) -> list[str]:
    return list(dict.fromkeys(w[:n] for w in found_by for n in range(1, min(len(w), MAX_PREFIX) + 1)))


def one_edit(q: str) -> list[str]:
    """Every string one edit from q (a letter deleted, swapped with the next, replaced, inserted),
    swaps and deletions first: the commonest slips."""
    out = [q[:i] + q[i + 1] + q[i] + q[i + 2:] for i in range(len(q) - 1)]
    out += [q[:i] + q[i + 1:] for i in range(len(q))]
    out += [q[:i] + c + q[i + 1:] for i in range(len(q)) for c in ALPHABET if c != q[i]]
    out += [q[:i] + c + q[i:] for i in range(len(q) + 1) for c in ALPHABET]
    return [v for v in dict.fromkeys(out) if v and v != q]


def _how(doc: dict, q: str) -> float:
    """How a document's words meet the query (0: they do not)."""
    if doc["w"][0].startswith(q):
        return 3.0
    return 2.5 if any(w.startswith(q) for w in doc["w"][1:]) else 0.0


class RedisPrefixIndex:
    def __init__(self, client: aioredis.Redis, tag: str = "ac") -> None:
        self.client = client
        self.pattern, self.stem, self.docs, self.ready_key = keys.autocomplete_keys(tag)
        self._put = client.register_script(PUT)
        self._remove = client.register_script(REMOVE)
        self._rescore = client.register_script(RESCORE)
        self._lookup = client.register_script(LOOKUP)
        self._ready = (False, 0.0)

    # --- writes (the indexer, the rebuild, the erasure) --------------------------------------------

    def _put_args(self, user_id: int, username: str, display_name: str, follower_count: int) -> list:
        found_by = words(username, display_name)
        ps = prefixes(found_by)
        doc = json.dumps({"u": username, "n": display_name, "c": follower_count, "w": found_by, "p": ps},
                         ensure_ascii=False)
        return [self.stem, CAP, user_id, follower_count, doc, *ps]

    async def put(self, user_id: int, username: str, display_name: str, follower_count: int) -> None:
        await self._put(keys=[self.docs], args=self._put_args(user_id, username, display_name, follower_count))

    async def put_many(self, users: list[tuple[int, str, str, int]]) -> None:
        """Users (id, username, display name, follower count), in one pipeline."""
        await call_each(self.client, self._put, [([self.docs], self._put_args(*user)) for user in users])

    async def remove(self, user_id: int) -> None:
        await self._remove(keys=[self.docs], args=[self.stem, user_id])

    async def rescore(self, user_id: int, follower_count: int) -> None:
        await self._rescore(keys=[self.docs], args=[self.stem, CAP, user_id, follower_count])

    async def clear(self) -> None:
        """Not ready, then every key of the index gone (a rebuild fills it again)."""
        await self.client.delete(self.ready_key)
        batch: list[bytes] = []
        async for key in self.client.scan_iter(match=self.pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                await self.client.unlink(*batch)
                batch = []
        if batch:
            await self.client.unlink(*batch)

    async def mark_ready(self) -> None:
        await self.client.set(self.ready_key, "1")

    async def ready(self) -> bool:
        """Whether the index is whole; a Redis that does not answer makes it not (PostgreSQL answers)."""
        answer, until = self._ready
        if time.monotonic() >= until:
            try:
                answer = bool(await self.client.exists(self.ready_key))
            except (RedisError, OSError):
                answer = False
            self._ready = (answer, time.monotonic() + READY_TTL_S)
        return answer

    # --- the query ------------------------------------------------------------------------------

    async def match(self, q: str, following: list[int], limit: int) -> list[Candidate]:
        """Users whose words start with q (folded), or with a string one edit from it (4+ characters),
        and the followed accounts whose words start with q; the best matches of the most followed.
        How each matches (`Candidate.match`): 3 a username prefix, 2.5 a word's, 1.5 one edit away."""
        wanted = [q, *(one_edit(q) if len(q) >= 4 else [])]
        by_short: dict[str, list[str]] = {}  # the set read -> the strings it stands for
        for w in wanted:
            by_short.setdefault(w[:MAX_PREFIX], []).append(w)
        short = list(by_short)
        following = following[:MAX_FOLLOWED]
        reply = await self._lookup(keys=[self.docs], args=[
            self.stem, limit if len(q) <= MAX_PREFIX else CAP, MAX_FOUND, limit, q, len(following), *following,
            *short])
        found: list[Candidate] = []
        for i in range(0, len(reply), 3):
            doc = json.loads(reply[i + 2])
            how = _how(doc, q)
            if not how and reply[i] and len(wanted) > 1:  # one edit away: does it go on as that string does?
                how = 1.5 if any(_how(doc, w) for w in by_short[short[reply[i] - 1]] if w != q) else 0.0
            if how:
                found.append(Candidate("user", int(reply[i + 1]), doc["u"], doc["n"], doc["c"], how))
        return found
