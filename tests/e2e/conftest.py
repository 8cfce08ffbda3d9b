from __future__ import annotations

import itertools
import os

import pytest

from tests.e2e.http import Gateway, UserClient

_counter = itertools.count()


@pytest.fixture(scope="session")
def gateway(stack) -> Gateway:
    return Gateway(stack.settings.gateway_port)


@pytest.fixture
def new_account(gateway: Gateway):
    """Register a fresh user through the gateway; returns the session JSON."""

    def register(**overrides: str) -> dict:
        n = f"{os.getpid()}{next(_counter)}"
        body = {"username": f"user{n}", "email": f"user{n}@example.com", "password": "correct horse",
                "display_name": f"User {n}", **overrides}
        r = gateway.post("/v1/accounts", body)
        assert r.status == 200, r.body
        return r.json

    return register


@pytest.fixture
def new_user(gateway: Gateway, new_account):
    """A fresh signed-in user as a client: `alice = new_user()`; `new_user(private=True)`."""

    def make(private: bool = False, **overrides: str) -> UserClient:
        user = UserClient(gateway, new_account(**overrides))
        if private:
            r = user.patch("/v1/users/me", {"is_private": True})
            assert r.status == 200, r.body
        return user

    return make


@pytest.fixture
def settle(stack):
    """Wait until the feed's fan-out workers have handled every event published so far."""
    import time

    import redis

    from services.feed.worker import GROUP, TOPICS
    from tests.conftest import consumers_caught_up

    client = redis.Redis.from_url(stack.settings.redis_url)

    def wait(timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if consumers_caught_up(client, GROUP, TOPICS):
                return
            assert time.monotonic() < deadline, "fan-out did not catch up"
            time.sleep(0.02)

    yield wait
    client.close()
