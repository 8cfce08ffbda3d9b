"""A sign-in storm through the gateway, on a stack of its own with a small password pool.

One password worker and a 200 ms admission wait (PICTOR_PASSWORD_WORKERS,
PICTOR_PASSWORD_QUEUE_TIMEOUT_MS), so that a few dozen simultaneous sign-ins
are beyond what the pool takes. What holds: every answer is a session or a
503 in the JSON error envelope with a Retry-After header (never a 500, never a
hang), and a client that waits its Retry-After and tries again signs in.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from tests.conftest import private_stack
from tests.e2e.http import Gateway, Response

pytestmark = pytest.mark.e2e

STORM = 40
PASSWORD = "correct horse"
# Longer than any answer should take: a call still unanswered by then is a hang.
HANG_S = 20.0


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with private_stack(tmp_path_factory.mktemp("storm"), PICTOR_PASSWORD_WORKERS="1",
                       PICTOR_PASSWORD_QUEUE_TIMEOUT_MS="200") as running:
        yield Gateway(running.settings.gateway_port, timeout_s=HANG_S)


@pytest.fixture(scope="module")
def username(gateway: Gateway) -> str:
    r = gateway.post("/v1/accounts", {"username": "stormy", "email": "stormy@example.com", "password": PASSWORD})
    assert r.status == 200, r.body
    return "stormy"


def sign_in(gateway: Gateway, username: str) -> Response:
    return gateway.post("/v1/sessions", {"username": username, "password": PASSWORD})


def storm(call) -> list:
    """`call()` from STORM threads at once."""
    with ThreadPoolExecutor(STORM) as threads:
        return list(threads.map(lambda _: call(), range(STORM)))


def test_a_storm_gets_sessions_and_503s_with_retry_after_in_the_json_envelope_and_nothing_else(gateway, username):
    responses = storm(lambda: sign_in(gateway, username))
    shed = [r for r in responses if r.status != 200]
    assert shed and len(shed) < STORM, [r.status for r in responses]
    for r in shed:
        assert r.status == 503, (r.status, r.body)
        assert r.headers["content-type"].startswith("application/json")
        retry_after = int(r.headers["retry-after"])
        body = r.json
        assert body["code"] == grpc.StatusCode.UNAVAILABLE.value[0] and "PICTOR_PASSWORD_WORKERS" in body["message"]
        error_info, retry_info = body["details"]
        assert error_info["reason"] == "PASSWORD_HASHING_BUSY"
        assert retry_after >= 1 and retry_info["retry_delay"] == f"{retry_after}s"


def test_a_client_that_waits_its_retry_after_and_tries_again_signs_in(gateway, username):
    def patient_sign_in() -> int:
        for _ in range(10):
            r = sign_in(gateway, username)
            if r.status != 503:
                return r.status
            time.sleep(int(r.headers["retry-after"]))
        return r.status

    assert storm(patient_sign_in) == [200] * STORM
