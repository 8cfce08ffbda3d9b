from __future__ import annotations

import itertools
import os

import pytest

from services.common.dependencies import sync_redis
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


def waiter(stack, group: str, topics: list[str], what: str):
    """wait(timeout_s): until every event written so far is relayed and handled by `group`."""
    import time

    from tests.conftest import consumers_caught_up, outbox_rows

    client = sync_redis(stack.settings.redis_url)

    def wait(timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        # Outbox first: a row leaves it only after its XADD.
        while outbox_rows(stack.settings) or not consumers_caught_up(client, group, topics):
            assert time.monotonic() < deadline, f"{what} did not catch up"
            time.sleep(0.02)

    return client, wait


@pytest.fixture
def settle(stack):
    """Wait until the feed's fan-out workers have handled every event written so far."""
    from services.feed.worker import GROUP, TOPICS

    client, wait = waiter(stack, GROUP, TOPICS, "fan-out")
    yield wait
    client.close()


@pytest.fixture
def settle_counts(stack):
    """Wait until the profile counts (accounts' worker) have taken in every event written so far."""
    from services.accounts.counts import GROUP, TOPICS

    client, wait = waiter(stack, GROUP, TOPICS, "profile counts")
    yield wait
    client.close()


@pytest.fixture
def settle_notifications(stack):
    """Wait until the notifier (notifications' worker) has handled every event written so far."""
    from services.notifications.inbox import GROUP, TOPICS

    client, wait = waiter(stack, GROUP, TOPICS, "notifier")
    yield wait
    client.close()
