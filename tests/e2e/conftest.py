from __future__ import annotations

import itertools
import os

import pytest

from tests.e2e.http import Gateway

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
