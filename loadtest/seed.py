"""Fill a running stack with a realistic dataset, fast: `make seed`.

    SEED_USERS=100000 SEED_POSTS=1000000 make seed

What it makes, phase by phase (each phase reports its time):
- media: a pool of real images, uploaded through the gateway and processed by
  the media service, owned by the account `seed_media`;
- users: ids from hotpath's bulk generator (IdGenerator.next_ids), spread over
  the logical shards; usernames `seed_0000001`..., e-mail `<username>@seed.pictor`,
  and one password for all (SEED_PASSWORD, default "pictor-seed"), so a load
  test can log in as anyone;
- follows: a power-law graph. Each user follows a log-normal number of
  accounts (mean SEED_FOLLOWEES, default 200) drawn by Zipf popularity
  (SEED_ZIPF, default 0.5: about ten accounts above the 10,000-follower
  celebrity threshold at 100,000 users), and everyone follows `seed_0000000`;
- posts: SEED_POSTS, authors drawn by a milder power law, times spread over
  SEED_DAYS (30) days, captions with hashtags and mentions, 1-3 media each;
  their ids come from the same generator, its clock set to each post's time;
  likes (SEED_LIKES per post on average, exponentially spread) and comments
  (SEED_COMMENTS per post) by random users, with their counts; a post's
  likers come mostly (SEED_TASTE_SHARE, 0.7) from its author's taste group
  (SEED_TASTES groups, default one per 100 users);
- feeds: as the fan-out workers would: author timelines for everyone, the
  celebrity set, and precomputed feeds (merged by hotpath's merge kernel) for
  SEED_ACTIVE_USERS (20,000) active users; the others rebuild when they come.

Everything goes in with COPY into the shard schemas (PostgreSQL) and pipelines
(Redis). It expects the empty schemas of a fresh `make run`: on a stack that
already holds a seed (users named seed_NNNNNNN) it says so and changes
nothing, so running it twice is harmless. To seed again, start from an empty
data directory (stop `make run`, remove .pictor/, start it again).
"""

from __future__ import annotations

import json
import math
import os
import random
import time
import urllib.error
import urllib.request
from array import array
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime

import psycopg
import redis

from hotpath.ids import IdGenerator, decode, shard_of
from hotpath.merge import chronological_page
from services.accounts.passwords import password_hasher
from services.common.config import Settings, load_settings
from services.common.db import GLOBAL_SCHEMA, shard_schema
from services.common.dependencies import sync_redis
from services.common.timelines import SENTINEL
from services.engagement.keys import counts_key
from services.feed.config import FeedConfig
from services.feed.features import FORMAT as FEATURES_FORMAT
from services.feed.keys import (
    CELEBRITIES,
    FEATURES_FORMAT_KEY,
    excluded_key,
    features_key,
    feed_key,
    following_key,
)
from services.posts.keys import TIMELINE_MAX, timeline_key

TAGS = [f"tag{i}" for i in range(500)]
# Posts' locations (one post in ten has one), accents included: search folds them.
PLACES = [("Zürich HB", 47.378, 8.540), ("São Paulo", -23.550, -46.633), ("Café de Flore", 48.854, 2.333),
          ("Central Park", 40.782, -73.965), ("Kraków Old Town", 50.061, 19.937), ("Reykjavík", 64.146, -21.942)]
WORDS = ["sunset", "beach", "coffee", "city", "night", "friends", "food", "travel", "mountain", "river", "light", "morning", "dog", "cat", "art", "street", "summer", "winter", "autumn", "spring", "garden", "book", "music", "party", "home", "work", "run"]


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


class Params:
    def __init__(self) -> None:
        self.users = _env_int("SEED_USERS", 100_000)
        self.posts = _env_int("SEED_POSTS", 1_000_000)
        self.followees = _env_int("SEED_FOLLOWEES", 200)
        self.zipf = float(os.environ.get("SEED_ZIPF") or 0.5)
        self.days = _env_int("SEED_DAYS", 30)
        self.active = min(self.users, _env_int("SEED_ACTIVE_USERS", 20_000))
        self.media = _env_int("SEED_MEDIA", 12)
        self.likes = float(os.environ.get("SEED_LIKES") or 5)
        self.comments = float(os.environ.get("SEED_COMMENTS") or 1)
        self.password = os.environ.get("SEED_PASSWORD") or "pictor-seed"
        self.random_seed = _env_int("SEED_RANDOM", 42)
        # Tastes: users and authors fall into SEED_TASTES groups (by index; default one per 100 users);
        # this share of a post's likers come from its author's group, the rest from anyone. Explore's
        # offline evaluation needs that structure: with likers drawn uniformly no ranker can beat
        # popularity, and in groups of thousands (50 groups of 2,000 on the 100K seed) a post's ~5
        # likers seldom share a post with anyone else: both recalls were 0.0002.
        self.tastes = _env_int("SEED_TASTES", max(1, self.users // 100))
        self.taste_share = float(os.environ.get("SEED_TASTE_SHARE") or 0.7)


def username(n: int) -> str:
    return f"seed_{n:07d}"


@contextmanager
def phase(name: str, report: dict) -> Iterator[None]:
    started = time.perf_counter()
    print(f"seed: {name}...", flush=True)
    yield
    report[name] = round(time.perf_counter() - started, 2)
    print(f"seed: {name} took {report[name]} s", flush=True)


# --- media -----------------------------------------------------------------


def _image(seed: int) -> bytes:
    """A photo-like JPEG: smooth colour gradients with noise, 1600x1200."""
    import pyvips

    rng = random.Random(seed)
    x = pyvips.Image.xyz(1600, 1200)
    r = (x[0] * rng.uniform(0.05, 0.15) + x[1] * rng.uniform(0.0, 0.1)) % 256
    g = (x[1] * rng.uniform(0.05, 0.2)) % 256
    b = (x[0] * 0.02 + x[1] * 0.1 + rng.uniform(0, 255)) % 256
    noise = pyvips.Image.gaussnoise(1600, 1200, sigma=12)
    image = (r.bandjoin([g, b]) + noise).cast("uchar")
    return image.jpegsave_buffer(Q=85)


def _call(settings: Settings, path: str, body: bytes, headers: dict[str, str]) -> dict:
    request = urllib.request.Request(f"{settings.gateway_url}{path}", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return json.load(r)
    except urllib.error.HTTPError as error:
        raise SystemExit(f"{path}: {error.code} {error.read()[:300]!r}") from None
    except urllib.error.URLError as error:
        raise SystemExit(f"seed: no gateway at {settings.gateway_url} ({error.reason}): start `make run` first") \
            from None


def seed_media(settings: Settings, params: Params) -> list[int]:
    """Upload the pool through the gateway; returns the processed media ids."""
    credentials = json.dumps({"username": "seed_media", "password": params.password,
                              "email": "seed_media@seed.pictor"}).encode()
    as_json = {"content-type": "application/json"}
    try:
        session = _call(settings, "/v1/sessions", credentials, as_json)
    except SystemExit:
        session = _call(settings, "/v1/accounts", credentials, as_json)
    auth = {"authorization": f"Bearer {session['access_token']}", "content-type": "image/jpeg"}
    media_ids = [int(_call(settings, "/v1/media", _image(n), auth)["id"]) for n in range(params.media)]
    # The seeded posts name these media without asking media (they are written straight into
    # PostgreSQL): posts of the pool's owner hold them, or media's collector would take them
    # for media in no post after a day.
    as_json_with_auth = {**auth, "content-type": "application/json"}
    for i in range(0, len(media_ids), 10):
        _call(settings, "/v1/posts", json.dumps({"media_ids": [str(m) for m in media_ids[i:i + 10]],
                                                 "caption": "the seed's media pool"}).encode(), as_json_with_auth)
    return media_ids


# --- PostgreSQL ----------------------------------------------------------------


class Copier:
    """One COPY per (schema, table), fed text rows in large chunks.

    Tables in BULK that are empty when first written get their indexes (and
    primary key) dropped before the COPY and rebuilt after it, concurrently
    across shards: building an index once is far cheaper than maintaining it
    through tens of millions of inserts in random order.
    """

    BULK = ("following", "followers", "posts", "likes")

    def __init__(self, settings: Settings, stack: ExitStack) -> None:
        self.settings = settings
        self.stack = stack
        self._copies: dict[tuple[str, str], tuple[object, list[str], list[int]]] = {}
        self._rebuild: list[tuple[str, list[str]]] = []

    def _url(self, schema: str) -> str:
        if schema == GLOBAL_SCHEMA:
            return self.settings.database_url
        return self.settings.database_for_shard(int(schema.removeprefix("shard_")))

    def _drop_indexes(self, conn: psycopg.Connection, schema: str, table: str) -> None:
        if conn.execute(f"SELECT EXISTS (SELECT 1 FROM {schema}.{table})").fetchone()[0]:
            return
        indexes = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
                               (schema, table)).fetchall()
        pkey = conn.execute("SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'",
                            (f"{schema}.{table}",)).fetchone()
        statements = []
        for name, definition in indexes:
            statements.append(definition)
            if pkey and name == pkey[0]:
                statements.append(f"ALTER TABLE {schema}.{table} ADD CONSTRAINT {name} PRIMARY KEY USING INDEX {name}")
                conn.execute(f"ALTER TABLE {schema}.{table} DROP CONSTRAINT {name}")
            else:
                conn.execute(f"DROP INDEX {schema}.{name}")
        conn.commit()
        self._rebuild.append((schema, statements))

    def write(self, shard: int | None, table: str, columns: str, text: str) -> None:
        key = (shard_schema(shard) if shard is not None else GLOBAL_SCHEMA, table)
        entry = self._copies.get(key)
        if entry is None:
            conn = self.stack.enter_context(psycopg.connect(self._url(key[0])))
            if table in self.BULK:
                self._drop_indexes(conn, *key)
            cur = self.stack.enter_context(conn.cursor())
            copy = self.stack.enter_context(cur.copy(f"COPY {key[0]}.{table} ({columns}) FROM STDIN"))
            entry = self._copies[key] = (copy, [], [0])
        copy, pending, size = entry
        pending.append(text)
        size[0] += len(text)
        if size[0] > 1 << 20:
            copy.write("".join(pending))
            pending.clear()
            size[0] = 0

    def finish(self) -> None:
        """Send what is left, end every COPY (commit), then rebuild the dropped indexes."""
        for copy, pending, size in self._copies.values():
            copy.write("".join(pending))
            pending.clear()
        self.stack.close()

        def rebuild(job: tuple[str, list[str]]) -> None:
            schema, statements = job
            with psycopg.connect(self._url(schema), autocommit=True) as conn:
                conn.execute("SET maintenance_work_mem = '256MB'")
                for statement in statements:
                    conn.execute(statement)

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(rebuild, self._rebuild))


def _ts(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def make_user_ids(settings: Settings, n: int) -> array:
    """Ids for n users, round-robin over the logical shards, from the bulk generator."""
    per_shard = [IdGenerator(s).next_ids(n // settings.logical_shards + 1) for s in range(settings.logical_shards)]
    ids = array("q")
    for i in range(n):
        ids.append(per_shard[i % settings.logical_shards][i // settings.logical_shards])
    return ids


def make_follows(settings: Settings, params: Params, user_ids: array, active: set[int], copier: Copier,
                 rng: random.Random) -> tuple[array, array, dict[int, list[int]]]:
    """Stream the follow graph into COPY; returns (follower counts, following counts, followees of active users)."""
    n = len(user_ids)
    cum, total = [], 0.0
    for rank in range(n):
        total += 1.0 / (rank + 1) ** params.zipf
        cum.append(total)
    rest = list(range(1, n))
    rng.shuffle(rest)
    popularity = [0, *rest]  # user 0 is the most followed; the rest get random ranks
    sigma = 0.8
    mu = math.log(params.followees) - sigma * sigma / 2
    followers, following = array("q", bytes(8 * n)), array("q", bytes(8 * n))
    followees_of: dict[int, list[int]] = {}
    ids = [str(uid) for uid in user_ids]
    shards = [shard_of(uid) for uid in user_ids]
    ranks = range(n)
    pick = popularity.__getitem__
    for u in range(n):
        k = max(1, min(n - 1, int(rng.lognormvariate(mu, sigma))))
        targets = set(map(pick, rng.choices(ranks, cum_weights=cum, k=k)))
        targets.add(0)
        targets.discard(u)
        me = ids[u]
        # created_at takes its default: the time of the load.
        copier.write(shards[u], "following", "user_id, target_id", "".join([f"{me}\t{ids[t]}\n" for t in targets]))
        for t in targets:
            copier.write(shards[t], "followers", "user_id, follower_id", f"{ids[t]}\t{me}\n")
            followers[t] += 1
        following[u] = len(targets)
        if u in active:
            followees_of[u] = sorted(targets)
    return followers, following, followees_of


def _liker(author: int, n: int, params: Params, rng: random.Random) -> int:
    """A user to like the author's post: of the author's taste group (index modulo SEED_TASTES) with
    probability SEED_TASTE_SHARE, else anyone."""
    group_size = n // params.tastes if params.tastes else 0
    if group_size and rng.random() < params.taste_share:
        return author % params.tastes + params.tastes * rng.randrange(group_size)
    return rng.randrange(n)


def make_posts(settings: Settings, params: Params, user_ids: array, media_ids: list[int], copier: Copier,
               client: redis.Redis, rng: random.Random) -> tuple[array, dict[int, array]]:
    """Stream posts, their likes and comments into COPY (and their counts into the Redis hashes the
    feed ranks with); returns (post counts, each author's post ids newest first)."""
    n = len(user_ids)
    weights = [1.0 / (r + 1) ** 0.3 for r in range(n)]
    authors = rng.choices(range(n), weights=weights, k=params.posts)
    now = int(time.time() * 1000) - 1000
    times = sorted(now - rng.randrange(params.days * 86_400_000) for _ in range(params.posts))
    clock = [0]
    generators = [IdGenerator(s, clock=lambda: clock[0]) for s in range(settings.logical_shards)]
    ids = [str(uid) for uid in user_ids]
    counts = array("q", bytes(8 * n))
    pipe = client.pipeline(transaction=False)
    by_author: dict[int, array] = {}
    for author, ms in zip(authors, times):
        uid = user_ids[author]
        shard = shard_of(uid)
        clock[0] = ms
        post_id = generators[shard].next_id()
        tags = rng.sample(TAGS[: rng.choice((20, 100, 500))], rng.randint(0, 3))
        mentions = [username(rng.randrange(n))] if rng.random() < 0.2 else []
        caption = " ".join(rng.sample(WORDS, rng.randint(2, 8)) + [f"#{t}" for t in tags] + [f"@{m}" for m in mentions])
        media = rng.sample(media_ids, rng.randint(1, min(3, len(media_ids))))
        place = rng.choice(PLACES) if rng.random() < 0.1 else None
        copier.write(shard, "posts", "id, author_id, caption, hashtags, mentions, media_ids, created_at, "
                     "location_name, location_lat, location_lng",
                     f"{post_id}\t{uid}\t{caption}\t{{{','.join(tags)}}}\t{{{','.join(mentions)}}}\t"
                     f"{{{','.join(map(str, media))}}}\t{_ts(ms)}\t"
                     + ("\t".join(map(str, place)) if place else "\\N\t\\N\t\\N") + "\n")
        when = _ts(ms)
        likers = {_liker(author, n, params, rng) for _ in range(int(rng.expovariate(1 / params.likes)))} \
            if params.likes else set()
        if likers:
            copier.write(shard, "likes", "post_id, user_id, created_at",
                         "".join(f"{post_id}\t{ids[u]}\t{when}\n" for u in likers))
        comments = int(rng.expovariate(1 / params.comments)) if params.comments else 0
        for _ in range(comments):
            text = " ".join(rng.sample(WORDS, rng.randint(1, 6)))
            copier.write(shard, "comments", "id, post_id, author_id, text, created_at",
                         f"{generators[shard].next_id()}\t{post_id}\t{ids[rng.randrange(n)]}\t{text}\t{when}\n")
        if likers or comments:
            copier.write(shard, "post_counts", "post_id, like_count, comment_count",
                         f"{post_id}\t{len(likers)}\t{comments}\n")
            # Engagement's read model, and the feed's ranking features as its worker would count them.
            pipe.hset(counts_key(post_id), mapping={"likes": len(likers), "comments": comments})
            pipe.set(features_key(post_id), f"{len(likers)}:{comments}")
            if len(pipe) >= 5000:
                pipe.execute()
        counts[author] += 1
        by_author.setdefault(author, array("q")).append(post_id)
    pipe.set(FEATURES_FORMAT_KEY, FEATURES_FORMAT)  # written as strings: nothing for the feed to convert
    pipe.execute()
    for posts in by_author.values():
        posts.reverse()  # newest first
    return counts, by_author


def copy_users(params: Params, user_ids: array, followers: array, following: array, posts: array,
               copier: Copier) -> None:
    password_hash = password_hasher().hash(params.password)
    created = _ts(int(time.time() * 1000) - params.days * 86_400_000 - 1)
    for i, uid in enumerate(user_ids):
        name = username(i)
        copier.write(None, "usernames", "username, user_id", f"{name}\t{uid}\n")
        copier.write(None, "emails", "email, user_id", f"{name}@seed.pictor\t{uid}\n")
        copier.write(shard_of(uid), "users",
                   "id, username, email, password_hash, display_name, follower_count, following_count, post_count, "
                   "created_at",
                   f"{uid}\t{name}\t{name}@seed.pictor\t{password_hash}\tSeed {i}\t{followers[i]}\t{following[i]}\t"
                   f"{posts[i]}\t{created}\n")
        copier.write(shard_of(uid), "members", "user_id, is_private", f"{uid}\tf\n")  # the graph's record


# --- Redis -------------------------------------------------------------------


def write_feeds(client: redis.Redis, params: Params, config: FeedConfig, user_ids: array, followers: array,
                by_author: dict[int, array], followees_of: dict[int, list[int]]) -> int:
    """Author timelines, the celebrity set and the active users' feeds; returns feed entries written."""
    celebrities = {i for i in range(len(user_ids)) if followers[i] >= config.celebrity_threshold}
    pipe = client.pipeline(transaction=False)
    for author, posts in by_author.items():
        uid = user_ids[author]
        pipe.zadd(timeline_key(uid), {SENTINEL: 0, **{f"{p}:{uid}": decode(p).timestamp_ms
                                                      for p in posts[:TIMELINE_MAX]}})
        if len(pipe) >= 2000:
            pipe.execute()
    if celebrities:
        pipe.sadd(CELEBRITIES, *(user_ids[c] for c in celebrities))
    pipe.execute()
    written = 0
    for u, followees in followees_of.items():
        pushed = [a for a in followees if a not in celebrities and a in by_author]
        lists = [by_author[a] for a in pushed]
        flat, offsets = array("q"), array("q", [0])
        for lst in lists:
            flat.extend(lst)
            offsets.append(len(flat))
        page = chronological_page(flat, offsets, limit=config.max_items) if len(flat) else None
        owner = {p: user_ids[a] for a in pushed for p in by_author[a]} if page else {}
        uid = user_ids[u]
        entries = {SENTINEL: 0}
        for p in page.ids if page else ():
            entries[f"{p}:{owner[p]}"] = decode(p).timestamp_ms
        written += len(entries) - 1
        pipe.zadd(feed_key(uid), entries)
        pipe.sadd(following_key(uid), SENTINEL, *(user_ids[a] for a in followees))
        pipe.sadd(excluded_key(uid), SENTINEL)
        for key in (feed_key(uid), following_key(uid), excluded_key(uid)):
            pipe.expire(key, config.ttl_s)
        if len(pipe) >= 500:
            pipe.execute()
    pipe.execute()
    return written


def existing_seed_users(settings: Settings) -> int:
    """How many seed users the stack holds already; SystemExit when PostgreSQL cannot be reached."""
    try:
        with psycopg.connect(settings.database_url, connect_timeout=5) as conn:
            return conn.execute(f"SELECT count(*) FROM {GLOBAL_SCHEMA}.usernames WHERE username ~ '^seed_[0-9]+$'"
                                ).fetchone()[0]
    except psycopg.OperationalError as error:
        raise SystemExit(f"seed: no PostgreSQL at the stack's address ({error}): start `make run` first") from None


def main() -> None:
    settings = load_settings()
    params = Params()
    users = existing_seed_users(settings)
    if users:
        print(json.dumps({"skipped": True, "seed_users": users}), flush=True)
        print(f"seed: the stack already holds a seed ({users:,} users named seed_NNNNNNN); "
              "nothing done. To seed again, start from an empty data directory (stop `make run`, remove "
              f"{settings.data_dir}, start it again).", flush=True)
        return
    config = FeedConfig.from_env()
    rng = random.Random(params.random_seed)
    report: dict[str, float] = {}
    started = time.perf_counter()
    with phase("media", report):
        media_ids = seed_media(settings, params)
    client = sync_redis(settings.redis_url)
    user_ids = make_user_ids(settings, params.users)
    active = set(rng.sample(range(params.users), params.active))
    with ExitStack() as stack:
        copier = Copier(settings, stack)
        with phase("follows", report):
            followers, following, followees_of = make_follows(settings, params, user_ids, active, copier, rng)
        with phase("posts, likes, comments", report):
            post_counts, by_author = make_posts(settings, params, user_ids, media_ids, copier, client, rng)
        with phase("users", report):
            copy_users(params, user_ids, followers, following, post_counts, copier)
        with phase("commit and index", report):
            copier.finish()
    with phase("analyze", report):
        for url in settings.database_urls:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("ANALYZE")
    with phase("feeds", report):
        entries = write_feeds(client, params, config, user_ids, followers, by_author, followees_of)
    edges = sum(following)
    summary = {
        "users": params.users, "follows": edges, "posts": params.posts, "media": len(media_ids),
        "active_feeds": len(followees_of), "feed_entries": entries,
        "celebrities": sum(1 for f in followers if f >= config.celebrity_threshold),
        "max_followers": max(followers), "seconds": report, "total_s": round(time.perf_counter() - started, 1),
        "login": {"username": username(1), "password": params.password},
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
