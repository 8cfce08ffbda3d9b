"""Sign-ins per account count the account, not the name a login uses (issue 19).

The gateway's per-account bucket is keyed by the name in the request; the accounts service keeps
the same limit (PICTOR_RATE_LIMIT_SIGN_IN_ACCOUNT) per account id, so a guesser alternating the
username, the email and their cases gets one budget, not one per spelling. On a stack of its own
with that limit small (and the gateway's buckets as they are in production otherwise).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.conftest import private_stack
from tests.e2e.http import Gateway, Response

pytestmark = pytest.mark.e2e

LIMIT, WINDOW_S = 3, 15
PASSWORD = "correct horse"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with private_stack(tmp_path_factory.mktemp("attempts"),
                       PICTOR_RATE_LIMIT_SIGN_IN_ACCOUNT=f"{LIMIT}/{WINDOW_S}") as running:
        yield Gateway(running.settings.gateway_port)


def register(gateway: Gateway, name: str) -> None:
    r = gateway.post("/v1/accounts", {"username": name, "email": f"{name}@example.com", "password": PASSWORD})
    assert r.status == 200, r.body


def sign_in(gateway: Gateway, login: str, password: str = "not the password") -> Response:
    return gateway.post("/v1/sessions", {"username": login, "password": password})


def test_the_username_and_the_email_share_one_budget_and_it_resets(gateway):
    register(gateway, "ada")
    register(gateway, "grace")
    # Three names, one account: each name is under the gateway's bucket, the account is not.
    assert [sign_in(gateway, login).status for login in ("ada", "ada@example.com", "ADA")] == [401] * LIMIT
    over = sign_in(gateway, "Ada@Example.com", PASSWORD)  # even the right password waits
    assert over.status == 429, over.body
    assert over.headers["content-type"].startswith("application/json")
    assert over.json["details"][0]["reason"] == "RATE_LIMITED", over.json
    assert "PICTOR_RATE_LIMIT_SIGN_IN_ACCOUNT" in over.json["message"]
    retry_after = int(over.headers["retry-after"])
    assert 1 <= retry_after <= WINDOW_S
    # Another account is not held back by ada's.
    assert sign_in(gateway, "grace@example.com", PASSWORD).status == 200
    # A name that is no account is told what any wrong login is told.
    assert sign_in(gateway, "nobody@example.com").status == 401

    time.sleep(retry_after + 0.5)
    assert sign_in(gateway, "ada@example.com", PASSWORD).status == 200
