"""Realistic journeys against a running, seeded stack: `make loadtest`.

Two kinds of users:
- `AppUser`: a phone app, JSON through Envoy. Weighted journeys: open the
  feed and scroll a few pages (most traffic), open a post and its comments,
  open a profile, like / unlike, comment, follow, and post a new photo
  (resumable upload, then create the post).
- `MeshUser`: an internal client calling the services through the mesh with
  the generated gRPC stubs, timed by a client interceptor that fires Locust's
  request events.

Every simulated user signs in as a seeded account (`seed_NNNNNNN`, password
SEED_PASSWORD) drawn from SEED_USERS. Requests are named by route template
(`/v1/posts/[id]`) so statistics group. LOADTEST_SHAPE=steps replaces the
fixed user count with a stepped load that finds the knee (see StepLoad).

A sign-in storm is shed by accounts (503 with Retry-After, or UNAVAILABLE with
a retry-after trailer on gRPC): a user told so waits that long and tries
again, as the app does. A shed attempt is the designed answer to too many
sign-ins at once, not a failure of the product, so it counts as a success
under a name of its own (SIGN_IN_SHED) and is never hidden; what the person
waited in all, from the first attempt to a session, is reported as
SIGN_IN_WHOLE.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import time
from collections.abc import Callable

import gevent
import grpc
import grpc.experimental.gevent as grpc_gevent
from locust import FastHttpUser, LoadTestShape, User, between, events, task

from services.common.stats import percentiles

# gRPC's C core waits for a call outside gevent's hub unless told of it: each MeshUser call then stalled
# every simulated user for its whole duration, and the HTTP requests in flight counted that stall as
# their latency. After locust's monkey-patching (its import), before any channel.
grpc_gevent.init_gevent()

SEED_USERS = int(os.environ.get("SEED_USERS") or 100_000)
SEED_PASSWORD = os.environ.get("SEED_PASSWORD") or "pictor-seed"
FEED = "GET /v1/feed"
SIGN_IN = "POST /v1/sessions"
SIGN_IN_SHED = "POST /v1/sessions (shed: 503, Retry-After)"
SIGN_IN_WHOLE = "sign-in, Retry-After waits included"
# Attempts before a user gives up signing in (each shed one waits its Retry-After first).
MAX_SIGN_IN_ATTEMPTS = 10


def retry_after_s(raw: str | None) -> float | None:
    """Seconds from a Retry-After value (the delay form; a date is not what the gateway sends)."""
    return float(raw) if raw and raw.strip().isdigit() else None


def grpc_retry_after_s(error: BaseException | None) -> float | None:
    """Seconds from the retry-after trailer of an UNAVAILABLE call; None for any other outcome."""
    if not isinstance(error, grpc.Call) or error.code() != grpc.StatusCode.UNAVAILABLE:
        return None
    return retry_after_s(dict(error.trailing_metadata() or ()).get("retry-after"))


def sign_in_patiently(environment, rng: random.Random, attempt: Callable[[], float | None]) -> None:
    """Call `attempt` until it signs in (returns None), waiting the seconds it returns otherwise (a
    shed attempt's Retry-After; 0 to try again at once); report the whole as SIGN_IN_WHOLE."""
    began = time.perf_counter()
    exception = None
    for _ in range(MAX_SIGN_IN_ATTEMPTS):
        wait_s = attempt()
        if wait_s is None:
            break
        # A little jitter on top of the server's own spread, as a real client adds.
        gevent.sleep(wait_s * rng.uniform(1.0, 1.2))
    else:
        exception = RuntimeError(f"no session after {MAX_SIGN_IN_ATTEMPTS} attempts")
    environment.events.request.fire(request_type="journey", name=SIGN_IN_WHOLE,
                                    response_time=(time.perf_counter() - began) * 1000, response_length=0,
                                    exception=exception, context={})


def seeded_username(rng: random.Random) -> str:
    return f"seed_{rng.randrange(1, SEED_USERS):07d}"


def photo(rng: random.Random) -> bytes:
    """A small JPEG made on the spot (each upload a new image)."""
    from PIL import Image

    image = Image.new("RGB", (640, 480), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


class AppUser(FastHttpUser):
    """The app as a person uses it: JSON through the gateway."""

    weight = 9
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.token = ""
        self.me = ""
        self.seen_posts: list[str] = []
        self.seen_users: list[str] = []
        self.username = seeded_username(self.rng)
        sign_in_patiently(self.environment, self.rng, self.try_sign_in)

    def try_sign_in(self) -> float | None:
        with self.client.post("/v1/sessions", json={"username": self.username, "password": SEED_PASSWORD},
                              name=SIGN_IN, catch_response=True) as r:
            if r.status_code == 200:
                body = r.json()
                self.token, self.me = body["access_token"], body["user"]["id"]
                r.success()
                return None
            wait_s = retry_after_s(r.headers.get("retry-after")) if r.status_code == 503 else None
            if wait_s is None:
                r.failure(f"sign-in failed: {r.status_code}: {r.text[:120]}")
                self.username = seeded_username(self.rng)  # a username taken by no one is rare but possible
                return 0.0
            r.request_meta["name"] = SIGN_IN_SHED
            r.success()
            return wait_s

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}

    def _json(self, method: str, path: str, name: str, body: dict | None = None, ok: tuple[int, ...] = (200,)):
        with self.client.request(method, path, json=body, headers=self.auth, name=name, catch_response=True) as r:
            if r.status_code in ok:
                r.success()
                return r.json() if r.status_code == 200 and r.content else None
            r.failure(f"{r.status_code}: {r.text[:120]}")
            return None

    def _remember(self, posts: list[dict]) -> None:
        for post in posts:
            self.seen_posts.append(post["id"])
            self.seen_users.append(post["author"]["id"])
        del self.seen_posts[:-200], self.seen_users[:-200]

    @task(10)
    def scroll_feed(self) -> None:
        token = ""
        for _ in range(self.rng.randint(1, 4)):
            page = self._json("GET", f"/v1/feed?page_size=20&page_token={token}", FEED)
            if not page:
                return
            self._remember(page["posts"])
            token = page["next_page_token"]
            if not token:
                return

    @task(3)
    def open_post(self) -> None:
        if self.seen_posts:
            post_id = self.rng.choice(self.seen_posts)
            self._json("GET", f"/v1/posts/{post_id}", "GET /v1/posts/[id]", ok=(200, 404))
            self._json("GET", f"/v1/posts/{post_id}/comments", "GET /v1/posts/[id]/comments", ok=(200, 404))

    @task(2)
    def open_profile(self) -> None:
        if self.seen_users:
            user_id = self.rng.choice(self.seen_users)
            self._json("GET", f"/v1/users/{user_id}", "GET /v1/users/[id]")
            self._json("GET", f"/v1/users/{user_id}/posts", "GET /v1/users/[id]/posts", ok=(200, 403, 404))

    @task(3)
    def like(self) -> None:
        if self.seen_posts:
            post_id = self.rng.choice(self.seen_posts)
            self._json("POST", f"/v1/posts/{post_id}/like", "POST /v1/posts/[id]/like", {}, ok=(200, 404))
            if self.rng.random() < 0.2:
                self._json("DELETE", f"/v1/posts/{post_id}/like", "DELETE /v1/posts/[id]/like", ok=(200, 404))

    @task(1)
    def comment(self) -> None:
        if self.seen_posts:
            post_id = self.rng.choice(self.seen_posts)
            self._json("POST", f"/v1/posts/{post_id}/comments", "POST /v1/posts/[id]/comments",
                       {"text": f"nice one #{self.rng.randrange(50)}"}, ok=(200, 404))

    @task(1)
    def follow(self) -> None:
        with self.client.get(f"/v1/usernames/{seeded_username(self.rng)}", headers=self.auth,
                             name="GET /v1/usernames/[name]", catch_response=True) as r:
            if r.status_code != 200:
                r.success() if r.status_code == 404 else r.failure(str(r.status_code))
                return
            r.success()
            target = r.json()["id"]
        if target != self.me:
            self._json("POST", f"/v1/users/{target}/follow", "POST /v1/users/[id]/follow", {})

    @task(1)
    def post_photo(self) -> None:
        data = photo(self.rng)
        upload = self._json("POST", "/v1/uploads", "POST /v1/uploads", {
            "content_type": "image/jpeg", "size_bytes": str(len(data)), "sha256": hashlib.sha256(data).hexdigest()})
        if not upload:
            return
        chunk = int(upload["chunk_size"])
        for offset in range(0, len(data), chunk):
            with self.client.put(f"/v1/uploads/{upload['upload_id']}?offset={offset}", data=data[offset:offset + chunk],
                                 headers={**self.auth, "content-type": "application/octet-stream"},
                                 name="PUT /v1/uploads/[id]", catch_response=True) as r:
                if r.status_code != 200:
                    r.failure(f"{r.status_code}: {r.text[:120]}")
                    return
        media = self._json("POST", f"/v1/uploads/{upload['upload_id']}:complete", "POST /v1/uploads/[id]:complete", {})
        if media:
            self._json("POST", "/v1/posts", "POST /v1/posts", {"media_ids": [media["id"]], "caption": "from locust"})


class GrpcTimer(grpc.UnaryUnaryClientInterceptor):
    """Fires a Locust request event for every unary call made through the channel."""

    def __init__(self, environment) -> None:
        self.environment = environment

    def intercept_unary_unary(self, continuation, client_call_details, request):
        started = time.perf_counter()
        outcome = continuation(client_call_details, request)
        exception = outcome.exception()
        response = outcome.result() if exception is None else None
        name = client_call_details.method
        if grpc_retry_after_s(exception) is not None:
            # Shed on purpose, with a time to come back: counted apart (see the module's docstring).
            name, exception = f"{name} (shed: UNAVAILABLE, retry-after)", None
        self.environment.events.request.fire(
            request_type="grpc", name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=response.ByteSize() if response is not None else 0,
            exception=exception, context={})
        return outcome


class MeshUser(User):
    """An internal client: the generated stubs through the mesh (the gateway's gRPC side)."""

    weight = 1
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        from pictor.accounts.v1 import accounts_service_pb2 as accounts_pb
        from pictor.accounts.v1 import accounts_service_pb2_grpc
        from pictor.feed.v1 import feed_service_pb2 as feed_pb
        from pictor.feed.v1 import feed_service_pb2_grpc
        from pictor.posts.v1 import posts_service_pb2 as posts_pb
        from pictor.posts.v1 import posts_service_pb2_grpc

        self.rng = random.Random()
        address = self.host.removeprefix("http://").removeprefix("https://").rstrip("/")
        self.channel = grpc.intercept_channel(grpc.insecure_channel(address), GrpcTimer(self.environment))
        self.accounts = accounts_service_pb2_grpc.AccountsServiceStub(self.channel)
        self.feed = feed_service_pb2_grpc.FeedServiceStub(self.channel)
        self.posts = posts_service_pb2_grpc.PostsServiceStub(self.channel)
        self.pb = (accounts_pb, feed_pb, posts_pb)
        self.metadata: list[tuple[str, str]] = []
        self.post_ids: list[int] = []
        request = accounts_pb.CreateSessionRequest(username=seeded_username(self.rng), password=SEED_PASSWORD)

        def try_sign_in() -> float | None:
            try:
                session = self.accounts.CreateSession(request, timeout=10)
            except grpc.RpcError as error:
                wait_s = grpc_retry_after_s(error)
                if wait_s is None:
                    raise
                return wait_s
            self.metadata = [("authorization", f"Bearer {session.access_token}")]
            return None

        sign_in_patiently(self.environment, self.rng, try_sign_in)

    def on_stop(self) -> None:
        self.channel.close()

    @task(5)
    def get_feed(self) -> None:
        try:
            reply = self.feed.GetFeed(self.pb[1].GetFeedRequest(page_size=20), metadata=self.metadata, timeout=5)
            self.post_ids = [p.id for p in reply.posts] or self.post_ids
        except grpc.RpcError:
            pass  # recorded by the interceptor

    @task(2)
    def get_post(self) -> None:
        if self.post_ids:
            try:
                self.posts.GetPost(self.pb[2].GetPostRequest(post_id=self.rng.choice(self.post_ids)),
                                   metadata=self.metadata, timeout=5)
            except grpc.RpcError:
                pass

    @task(1)
    def get_me(self) -> None:
        try:
            self.accounts.GetMe(self.pb[0].GetMeRequest(), metadata=self.metadata, timeout=5)
        except grpc.RpcError:
            pass


if os.environ.get("LOADTEST_SHAPE") == "steps":

    class StepLoad(LoadTestShape):
        """Users in steps (LOADTEST_STEP users every LOADTEST_STEP_SECONDS, up to LOADTEST_USERS):
        the per-step feed percentiles in the summary show where p99 crosses 200 ms (the knee)."""

        step = int(os.environ.get("LOADTEST_STEP") or 10)
        step_seconds = int(os.environ.get("LOADTEST_STEP_SECONDS") or 30)
        max_users = int(os.environ.get("LOADTEST_USERS") or 100)

        def tick(self):
            run_time = self.get_run_time()
            users = self.step * (int(run_time // self.step_seconds) + 1)
            if users > self.max_users:
                return None
            return users, self.step


SETTLE_SECONDS = float(os.environ.get("LOADTEST_SETTLE_SECONDS") or 10)


@events.init.add_listener
def _step_stats(environment, **_kwargs) -> None:
    """Per-step feed latencies in steady state, kept for the summary (see loadtest/summary.py).

    A sample counts for a user count once that count has held for LOADTEST_SETTLE_SECONDS:
    new users sign in (argon2, deliberately costly) as they start, and that burst is not
    the steady load the knee is about.
    """
    environment.step_feed_latencies = {}
    environment.step_started, environment.step_ended = {}, {}
    current = {"users": -1, "since": 0.0}

    @environment.events.request.add_listener
    def on_request(request_type, name, response_time, exception, **_kw) -> None:
        if name != FEED:
            return
        users = environment.runner.user_count if environment.runner else 0
        now = time.monotonic()
        if users != current["users"]:
            current.update(users=users, since=now)
        if now - current["since"] >= SETTLE_SECONDS:
            samples = environment.step_feed_latencies.setdefault(users, [])
            if not samples:
                environment.step_started[users] = now
            environment.step_ended[users] = now
            samples.append(response_time)

    @environment.events.quitting.add_listener
    def on_quit(environment, **_kw) -> None:
        steps = {}
        for users, samples in sorted(environment.step_feed_latencies.items()):
            seconds = environment.step_ended[users] - environment.step_started[users]
            steps[str(users)] = {"requests": len(samples),
                                 "requests_per_s": round(len(samples) / seconds, 2) if seconds > 0 else None,
                                 **percentiles(samples)}
        write_result("feed_by_users.json", steps)


@events.init.add_listener
def _ramp_stats(environment, **_kwargs) -> None:
    """The feed's latencies during the ramp (users starting, hence signing in, and LOADTEST_SETTLE_SECONDS
    after the last one started) and after it: what the sign-in storm costs the feed. Written to
    feed_ramp.json beside the summary."""
    samples: dict[str, list[float]] = {"ramp": [], "after": []}
    spawned = {"at": None}

    @environment.events.spawning_complete.add_listener
    def on_spawned(user_count, **_kw) -> None:
        spawned["at"] = spawned["at"] or time.monotonic()

    @environment.events.request.add_listener
    def on_request(request_type, name, response_time, exception, **_kw) -> None:
        if name == FEED:
            ramp = spawned["at"] is None or time.monotonic() - spawned["at"] < SETTLE_SECONDS
            samples["ramp" if ramp else "after"].append(response_time)

    @environment.events.quitting.add_listener
    def on_quit(environment, **_kw) -> None:
        write_result("feed_ramp.json", {phase: {"requests": len(s), **percentiles(s)} for phase, s in samples.items()
                                        if s})


def write_result(name: str, content: dict) -> None:
    import json
    import pathlib

    out = pathlib.Path(os.environ.get("LOADTEST_RESULTS") or "loadtest/results")
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_text(json.dumps(content, indent=2))
