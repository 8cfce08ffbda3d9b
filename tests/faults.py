"""The fault suite: `make faults` (python -m tests.faults). See docs/RELIABILITY.md.

It starts a stack of its own (a temporary data directory, free ports,
supervised as `make run`'s is), runs a steady mixed load through Envoy
(sign-ups, follows, posts with an uploaded photo, likes, comments, resumable
uploads, feed reads) and, for each target in turn (every service, every
worker, Redis, PostgreSQL, Envoy), SIGKILLs it (with every process it
started) once and lets the launcher's supervision start it again. For each
target it reports:

  lost      acknowledged writes (a 200) that do not exist afterwards (must be 0)
  5xx       answers 500-599 other than 503 (must be 0)
  503       answers 503 (expected while something is down)
  refused   requests whose connection failed (the gateway itself was down)
  recover   seconds from the kill until the process runs again and a probe
            call to every service answers 200
  feeds     users whose feed (CHRONOLOGICAL, through the API) differs from the
            brute-force answer from PostgreSQL, once fan-out has caught up (must be 0)

and exits non-zero when a must-be-zero figure is not zero.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis

from services.common.dependencies import sync_redis
from services.common.registry import SERVICES, WORKERS
from services.feed.worker import GROUP as FANOUT_GROUP
from services.feed.worker import TOPICS as FANOUT_TOPICS
from services.mesh.launcher import Stack
from tests.conftest import consumers_caught_up, outbox_rows, private_stack
from tests.e2e.http import Gateway, Response, UserClient
from tests.e2e.media_files import unique_jpeg
from tests.e2e.test_feed_http import brute_force_feed

# "none" kills nothing: the control turn, what the load alone does.
CONTROL = "none"
TARGETS = (CONTROL, *(s.name for s in SERVICES), *(f"{w.name}-1" for w in WORKERS), "redis", "postgres", "envoy")
REQUEST_TIMEOUT_S = 10
# Sign-ups stop here, so that checking every feed after each turn stays quick.
MAX_USERS = 40
WHOLE_RUN = "(whole run)"
SETTLE_TIMEOUT_S = 45
RECOVERY_TIMEOUT_S = 60
# Short, so that events a killed worker (or a failed handler) left pending are taken over quickly.
CLAIM_IDLE_MS = 2000


@dataclass
class Tally:
    """What the load saw during one target's turn."""

    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    refused: int = 0
    timeouts: int = 0
    server_errors: Counter = field(default_factory=Counter)  # (route, status) -> count, 5xx other than 503
    slowest_503_s: float = 0.0

    @property
    def unexpected_5xx(self) -> int:
        return sum(self.server_errors.values())


@dataclass
class Ledger:
    """Every write the gateway acknowledged (200), by the turn it happened in."""

    users: list[UserClient] = field(default_factory=list)
    follows: list[tuple[UserClient, str]] = field(default_factory=list)  # (follower, target id)
    posts: list[tuple[UserClient, str]] = field(default_factory=list)  # (author, post id)
    likes: list[tuple[UserClient, str]] = field(default_factory=list)  # (liker, post id)
    comments: list[tuple[str, str]] = field(default_factory=list)  # (post id, comment id)
    media: list[tuple[UserClient, str]] = field(default_factory=list)  # (owner, media id)

    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in ("users", "follows", "posts", "likes", "comments", "media")}


class Load:
    """Threads that call the gateway at a steady pace, recording what was acknowledged."""

    def __init__(self, gateway: Gateway, threads: int, rate_per_thread: float, seed: int = 11) -> None:
        self.gateway = gateway
        self.threads = threads
        self.interval_s = 1 / rate_per_thread
        self.ledger = Ledger()  # this turn's
        self.everything = Ledger()  # the whole run's
        self.tally = Tally()
        self.lock = threading.Lock()
        self.running = threading.Event()
        self.idle = [threading.Event() for _ in range(threads)]
        self.done = threading.Event()
        self.rng = random.Random(seed)
        self._names = itertools.count()
        self._workers = [threading.Thread(target=self._loop, args=(n,), daemon=True) for n in range(threads)]

    # --- bookkeeping ---

    def call(self, route: str, send) -> Response | None:
        began = time.monotonic()
        try:
            response = send()
        except TimeoutError:
            with self.lock:
                self.tally.requests += 1
                self.tally.timeouts += 1
            return None
        except OSError:
            with self.lock:
                self.tally.requests += 1
                self.tally.refused += 1
            return None
        with self.lock:
            self.tally.requests += 1
            self.tally.statuses[response.status] += 1
            if response.status >= 500 and response.status != 503:
                self.tally.server_errors[(route, response.status)] += 1
            if response.status == 503:
                self.tally.slowest_503_s = max(self.tally.slowest_503_s, time.monotonic() - began)
        return response

    def acknowledged(self, kind: str, entry) -> None:
        with self.lock:
            getattr(self.ledger, kind).append(entry)
            if kind != "users":  # the turn's ledger starts with every user
                getattr(self.everything, kind).append(entry)

    def pick(self, kind: str):
        with self.lock:
            items = getattr(self.everything, kind)
            return self.rng.choice(items) if items else None

    # --- the journeys ---

    def sign_up(self) -> UserClient | None:
        if len(self.everything.users) >= MAX_USERS:
            return None
        n = f"{int(time.time() * 1000) % 10**9}{next(self._names)}"
        r = self.call("POST /v1/accounts", lambda: self.gateway.post("/v1/accounts", {
            "username": f"fault{n}", "email": f"fault{n}@example.com", "password": "correct horse"}))
        if r is None or r.status != 200:
            return None
        user = UserClient(self.gateway, r.json)
        with self.lock:
            self.ledger.users.append(user)
            self.everything.users.append(user)
        return user

    def follow(self, user: UserClient) -> None:
        target = self.pick("users")
        if target is None or target.id == user.id:
            return
        r = self.call("POST /v1/users/[id]/follow", lambda: user.post(f"/v1/users/{target.id}/follow"))
        if r is not None and r.status == 200 and r.json.get("state") == "FOLLOWING":
            self.acknowledged("follows", (user, target.id))

    def upload(self, user: UserClient) -> str | None:
        r = self.call("POST /v1/media", lambda: user.upload(unique_jpeg(), "image/jpeg"))
        if r is None or r.status != 200:
            return None
        self.acknowledged("media", (user, r.json["id"]))
        return r.json["id"]

    def resumable_upload(self, user: UserClient) -> None:
        data = unique_jpeg()
        r = self.call("POST /v1/uploads", lambda: user.post("/v1/uploads", {
            "content_type": "image/jpeg", "size_bytes": str(len(data)), "sha256": hashlib.sha256(data).hexdigest()}))
        if r is None or r.status != 200:
            return
        upload_id = r.json["upload_id"]
        r = self.call("PUT /v1/uploads/[id]", lambda: self.gateway.request(
            "PUT", f"/v1/uploads/{upload_id}?offset=0", raw=data, token=user.token,
            headers={"content-type": "application/octet-stream"}))
        if r is None or r.status != 200:
            return
        r = self.call("POST /v1/uploads/[id]:complete", lambda: user.post(f"/v1/uploads/{upload_id}:complete", {}))
        if r is not None and r.status == 200:
            self.acknowledged("media", (user, r.json["id"]))

    def create_post(self, user: UserClient) -> str | None:
        media_id = self.upload(user)
        if media_id is None:
            return None
        r = self.call("POST /v1/posts", lambda: user.post("/v1/posts", {"media_ids": [media_id], "caption": "load"}))
        if r is None or r.status != 200:
            return None
        self.acknowledged("posts", (user, r.json["id"]))
        return r.json["id"]

    def like(self, user: UserClient) -> None:
        found = self.pick("posts")
        if found is None:
            return
        post_id = found[1]
        r = self.call("POST /v1/posts/[id]/like", lambda: user.post(f"/v1/posts/{post_id}/like"))
        if r is not None and r.status == 200:
            self.acknowledged("likes", (user, post_id))

    def comment(self, user: UserClient) -> None:
        found = self.pick("posts")
        if found is None:
            return
        post_id = found[1]
        r = self.call("POST /v1/posts/[id]/comments", lambda: user.post(f"/v1/posts/{post_id}/comments",
                                                                        {"text": "steady"}))
        if r is not None and r.status == 200:
            self.acknowledged("comments", (post_id, r.json["id"]))

    def read_feed(self, user: UserClient) -> None:
        self.call("GET /v1/feed", lambda: user.get("/v1/feed?page_size=20"))

    JOURNEYS = (("sign_up", 1), ("follow", 3), ("create_post", 2), ("like", 4), ("comment", 2),
                ("resumable_upload", 1), ("read_feed", 3))

    def one(self, rng: random.Random) -> None:
        name = rng.choices([j for j, _ in self.JOURNEYS], [w for _, w in self.JOURNEYS])[0]
        if name == "sign_up":
            self.sign_up()
            return
        user = self.pick("users")
        if user is not None:
            getattr(self, name)(user)

    def users(self) -> list[UserClient]:
        with self.lock:
            return list(self.everything.users)

    def _loop(self, number: int) -> None:
        rng = random.Random(number)
        while not self.done.is_set():
            if not self.running.is_set():
                self.idle[number].set()
                self.running.wait(0.2)
                continue
            self.idle[number].clear()
            began = time.monotonic()
            self.one(rng)
            time.sleep(max(0.0, self.interval_s - (time.monotonic() - began)))
        self.idle[number].set()

    # --- control ---

    def start(self) -> None:
        for thread in self._workers:
            thread.start()

    def resume(self) -> None:
        self.running.set()

    def pause(self) -> None:
        """Stop starting journeys and wait for those in flight."""
        self.running.clear()
        for idle in self.idle:
            idle.wait(REQUEST_TIMEOUT_S * 4)

    def stop(self) -> None:
        self.done.set()
        self.running.set()
        for thread in self._workers:
            thread.join(REQUEST_TIMEOUT_S * 4)

    def new_turn(self) -> tuple[Tally, Ledger]:
        """Start counting afresh; returns what the previous turn counted and acknowledged."""
        with self.lock:
            tally, self.tally = self.tally, Tally()
            ledger = self.ledger
            self.ledger = Ledger(users=list(ledger.users))
        return tally, ledger


# --- checks ---------------------------------------------------------------------


def pages(user: UserClient, path: str, key: str, page_size: int) -> list[dict] | None:
    """Every item of a paged list, or None when the API did not answer 200."""
    items, token = [], ""
    separator = "&" if "?" in path else "?"
    for _ in range(1000):
        r = user.get(f"{path}{separator}page_size={page_size}&page_token={token}")
        if r.status != 200:
            return None
        items += r.json[key]
        token = r.json["next_page_token"]
        if not token:
            return items
    return None


def missing_from_lists(reader: UserClient, pairs: list[tuple[str, str]], collection: str, key: str,
                       page_size: int) -> int:
    """How many (post id, item id) pairs are not in the post's list /v1/posts/{id}/{collection}."""
    expected: dict[str, set[str]] = {}
    for post_id, item in pairs:
        expected.setdefault(post_id, set()).add(item)
    return sum(len(items - {x["id"] for x in pages(reader, f"/v1/posts/{post_id}/{collection}", key, page_size) or []})
               for post_id, items in expected.items())


def lost_writes(ledger: Ledger, reader: UserClient) -> Counter:
    """Acknowledged writes the API does not show, by kind."""
    lost: Counter = Counter()
    for user in ledger.users:
        if reader.get(f"/v1/users/{user.id}").status != 200:
            lost["users"] += 1
    by_follower: dict[str, tuple[UserClient, set[str]]] = {}
    for follower, target in ledger.follows:
        by_follower.setdefault(follower.id, (follower, set()))[1].add(target)
    for follower, targets in by_follower.values():
        following = pages(follower, f"/v1/users/{follower.id}/following", "users", 200) or []
        lost["follows"] += len(targets - {u["id"] for u in following})
    for author, post_id in ledger.posts:
        if author.get(f"/v1/posts/{post_id}").status != 200:
            lost["posts"] += 1
    lost["likes"] += missing_from_lists(reader, [(p, u.id) for u, p in ledger.likes], "likes", "users", 200)
    lost["comments"] += missing_from_lists(reader, ledger.comments, "comments", "comments", 100)
    for owner, media_id in ledger.media:
        if owner.get(f"/v1/media/{media_id}").status != 200:
            lost["media"] += 1
    return +lost


def feed_of(user: UserClient) -> list[str] | None:
    posts = pages(user, "/v1/feed?mode=CHRONOLOGICAL", "posts", 50)
    return None if posts is None else [p["id"] for p in posts]


@dataclass(frozen=True)
class FeedDifference:
    missing: tuple[str, ...]  # post ids the brute-force answer has and the feed lacks
    extra: tuple[str, ...]
    answered: bool = True
    post_authors: tuple[tuple[str, str], ...] = ()  # (post id, its author's id)

    @property
    def posts(self) -> set[str]:
        return {*self.missing, *self.extra}

    @property
    def authors(self) -> set[str]:
        return {author for _, author in self.post_authors}

    def author(self, post_id: str) -> str | None:
        return dict(self.post_authors).get(post_id)

    def __str__(self) -> str:
        if not self.answered:
            return "no answer"
        if not self.posts:
            return "same posts, another order"
        return f"missing {list(self.missing)}, extra {list(self.extra)}"


def feeds_differing(stack: Stack, users: list[UserClient]) -> dict[str, FeedDifference]:
    """The users whose feed differs from the brute-force answer, and how."""
    differing = {}
    for user in users:
        got, expected = feed_of(user), brute_force_feed(stack.settings, int(user.id))
        if got is None:
            differing[user.id] = FeedDifference((), (), answered=False)
        elif got != expected:
            missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
            differing[user.id] = FeedDifference(tuple(missing), tuple(extra),
                                                post_authors=authors_of(user, missing + extra))
    return differing


def authors_of(user: UserClient, post_ids: list[str]) -> tuple[tuple[str, str], ...]:
    found = ((post_id, user.get(f"/v1/posts/{post_id}")) for post_id in post_ids)
    return tuple((post_id, r.json["author"]["id"]) for post_id, r in found if r.status == 200)


def newly_differing(differing: dict[str, FeedDifference], before: dict[str, FeedDifference]
                    ) -> dict[str, FeedDifference]:
    """The differences an earlier turn did not cause. Not new: a post no feed has that some feed
    already lacked (its event was lost: it goes missing from more feeds as its author gains
    followers), and posts of an author some earlier difference of the same feed was about (a
    lost follow leaves all of that author's posts out, later ones too)."""
    known_posts = {p for d in before.values() for p in d.posts}
    new = {}
    for user, difference in differing.items():
        if not difference.posts:  # no answer, or the order alone
            if user not in before:
                new[user] = difference
            continue
        earlier_authors = before[user].authors if user in before else set()
        if any(difference.author(p) not in earlier_authors for p in difference.posts - known_posts):
            new[user] = difference
    return new


def wait_fanout(stack: Stack) -> bool:
    client = sync_redis(stack.settings.redis_url, socket_timeout=2)
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            try:
                # Outbox first: an event leaves it only once it is on its stream.
                if not outbox_rows(stack.settings) and consumers_caught_up(client, FANOUT_GROUP, FANOUT_TOPICS):
                    return True
            except (redis.RedisError, psycopg.OperationalError):
                pass
            time.sleep(0.1)
        return False
    finally:
        client.close()


def probe(prober: UserClient, post_id: str, media_id: str) -> bool:
    """A call to every service through the gateway, each answering 200."""
    paths = ["/v1/users/me", f"/v1/users/{prober.id}/following", "/v1/feed?page_size=5",
             f"/v1/posts/{post_id}", f"/v1/posts/{post_id}/likes", f"/v1/media/{media_id}"]
    try:
        return all(prober.get(path).status == 200 for path in paths)
    except OSError:
        return False


# --- the run --------------------------------------------------------------------


@dataclass
class Result:
    target: str
    recover_s: float | None
    tally: Tally
    acknowledged: dict[str, int]
    lost: Counter
    feeds_checked: int
    feeds_differing: dict[str, FeedDifference]
    settled: bool
    # Differences no earlier turn showed: this turn's doing (a feed that went wrong stays wrong).
    feeds_newly_differing: dict[str, FeedDifference] = field(default_factory=dict)

    @property
    def whole_run(self) -> bool:
        return self.target == WHOLE_RUN

    @property
    def failed(self) -> bool:
        return bool(sum(self.lost.values()) or self.tally.unexpected_5xx or self.feeds_newly_differing
                    or self.recover_s is None or not self.settled)

    def line(self) -> str:
        lost = sum(self.lost.values())
        recover = "      -" if self.whole_run else (
            f"{self.recover_s:5.1f} s" if self.recover_s is not None else "  never")
        detail = "".join(f" {k}={v}" for k, v in self.lost.items())
        errors = "".join(f" {route}={status}x{n}" for (route, status), n in self.tally.server_errors.items())
        return (f"{'FAIL' if self.failed else 'ok  '} {self.target:<12} recover {recover}  "
                f"requests {self.tally.requests:5d}  acknowledged {sum(self.acknowledged.values()):4d}  "
                f"lost {lost}{detail}  5xx {self.tally.unexpected_5xx}{errors}  "
                f"503 {self.tally.statuses[503]} (slowest {self.tally.slowest_503_s:.2f} s)  "
                f"refused {self.tally.refused}  timeouts {self.tally.timeouts}  "
                f"feeds {len(self.feeds_differing)}/{self.feeds_checked} differ ({len(self.feeds_newly_differing)} new)"
                + ("" if self.settled else "  (fan-out never caught up)")
                + "".join(f"\n       feed of {user}: {how}" for user, how in self.feeds_newly_differing.items()))


def table(results: list[Result]) -> str:
    header = ("| target | recover (s) | requests | acknowledged writes | lost | 5xx other than 503 | 503 "
              "| slowest 503 (s) | refused | feeds differing |")
    rows = [header, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        recover = "-" if r.whole_run else (f"{r.recover_s:.1f}" if r.recover_s is not None else "never")
        rows.append(f"| {r.target} | {recover} | {r.tally.requests} | {sum(r.acknowledged.values())} | "
                    f"{sum(r.lost.values())} | {r.tally.unexpected_5xx} | {r.tally.statuses[503]} | "
                    f"{r.tally.slowest_503_s:.2f} | "
                    f"{r.tally.refused} | {len(r.feeds_differing)} of {r.feeds_checked} "
                    f"({len(r.feeds_newly_differing)} new) |")
    return "\n".join(rows)


def say(text: str) -> None:
    print(text, flush=True)


@dataclass
class Prober:
    user: UserClient
    post_id: str
    media_id: str

    def ok(self) -> bool:
        return probe(self.user, self.post_id, self.media_id)


def turn(stack: Stack, load: Load, target: str, prober: Prober, before_s: float, after_s: float,
         differing_before: dict[str, FeedDifference]) -> Result:
    load.new_turn()
    load.resume()
    time.sleep(before_s)
    child = stack.child(target) if target != CONTROL else None
    restarts = child.restarts if child else 0
    began = time.monotonic()
    if child:
        child.kill()
    recover_s = None
    while time.monotonic() - began < RECOVERY_TIMEOUT_S:
        if (child is None or (child.restarts > restarts and child.running)) and prober.ok():
            recover_s = time.monotonic() - began
            break
        time.sleep(0.05)
    time.sleep(after_s)
    load.pause()
    tally, ledger = load.new_turn()
    settled = wait_fanout(stack)
    lost = lost_writes(ledger, prober.user)
    users = load.users()
    differing = feeds_differing(stack, users)
    return Result(target, recover_s, tally, ledger.counts(), lost, len(users), differing, settled,
                  newly_differing(differing, differing_before))


def run(targets: list[str], *, before_s: float, after_s: float, threads: int, rate: float,
        data_dir: Path | None = None, report=say) -> list[Result]:
    began = time.monotonic()
    folder = data_dir or Path(tempfile.mkdtemp(prefix="pictor-faults-"))
    report(f"starting a stack of its own under {folder} ...")
    with private_stack(folder, PICTOR_EVENTS_CLAIM_IDLE_MS=str(CLAIM_IDLE_MS)) as stack:
        gateway = Gateway(stack.settings.gateway_port, timeout_s=REQUEST_TIMEOUT_S)
        load = Load(gateway, threads, rate)
        for _ in range(8):
            assert load.sign_up() is not None, "the stack does not take sign-ups"
        user = load.users()[0]
        media_id, post_id = load.upload(user), load.create_post(user)
        assert media_id and post_id, "the stack does not take posts"
        prober = Prober(user, post_id, media_id)
        load.start()
        report(f"stack up in {time.monotonic() - began:.0f} s; load: {threads} clients at {rate:g} journeys/s each")
        results: list[Result] = []
        turns_began = time.monotonic()
        for number, target in enumerate(targets, 1):
            turn_began = time.monotonic()
            results.append(turn(stack, load, target, prober, before_s, after_s,
                                results[-1].feeds_differing if results else {}))
            took = time.monotonic() - turn_began
            left = (len(targets) - number) * (time.monotonic() - turns_began) / number
            report(f"[{number}/{len(targets)}] {results[-1].line()}  ({took:.0f} s; about {left:.0f} s left)")
        load.stop()
        # Every write of the run checked again: a later kill (PostgreSQL's, Redis') must not lose earlier ones.
        final = Result(WHOLE_RUN, 0.0, Tally(), load.everything.counts(), lost_writes(load.everything, user),
                       0, {}, True)
        results.append(final)
        report(f"every acknowledged write of the run checked again: {final.line()}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="SIGKILL every process of the platform under load; "
                                                 "count lost writes, 5xx and recovery times.")
    parser.add_argument("--targets", default=",".join(TARGETS),
                        help=f"comma-separated, in order (default: all: {','.join(TARGETS)})")
    parser.add_argument("--before", type=float, default=3.0, help="seconds of load before each kill (3)")
    parser.add_argument("--after", type=float, default=3.0, help="seconds of load after recovery (3)")
    parser.add_argument("--clients", type=int, default=4, help="load threads (4)")
    parser.add_argument("--rate", type=float, default=5.0, help="journeys per second per client (5)")
    args = parser.parse_args(argv)
    targets = [t for t in args.targets.split(",") if t]
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        parser.error(f"unknown targets {unknown}; known: {list(TARGETS)}")
    began = time.monotonic()
    results = run(targets, before_s=args.before, after_s=args.after, threads=args.clients, rate=args.rate)
    say("")
    say(table(results))
    failed = [r.target for r in results if r.failed]
    say(f"\n{len(targets)} targets in {time.monotonic() - began:.0f} s: "
        + (f"FAILED for {', '.join(failed)}" if failed else "every must-be-zero figure is zero"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
