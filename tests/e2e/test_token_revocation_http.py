"""Access tokens stop working within seconds, not at their expiry (issue 19; services/common/revocation.py):
a signed-out session's, a deleted account's, a suspended account's. Other tokens keep working."""

from __future__ import annotations

import time

import pytest

from tests.e2e.http import UserClient
from tests.e2e.media_files import small_jpeg
from tests.e2e.test_moderation_http import act, admin, report

pytestmark = pytest.mark.e2e

# Every process reloads its copy each PICTOR_REVOCATION_REFRESH_MS (1 s); generous for a loaded machine.
WITHIN_S = 10.0


def refused(client: UserClient, path: str = "/v1/users/me", body: dict | None = None) -> bool:
    """True once the token is refused as revoked (401 TOKEN_REVOKED); a GET, or a POST of `body`."""
    r = client.get(path) if body is None else client.post(path, body)
    return r.status == 401 and r.json["details"][0]["reason"] == "TOKEN_REVOKED"


def refused_within(client: UserClient, path: str = "/v1/users/me", body: dict | None = None) -> float:
    """How long until every service's copy of the list refuses the token on `path` (each reloads on its own)."""
    began = time.monotonic()
    while not refused(client, path, body):
        assert time.monotonic() - began < WITHIN_S, f"{path} still answers the token after {WITHIN_S} s"
        time.sleep(0.1)
    return time.monotonic() - began


def sign_in(gateway, user: UserClient) -> UserClient:
    r = gateway.post("/v1/sessions", {"username": user.username, "password": "correct horse"})
    assert r.status == 200, r.body
    return UserClient(gateway, r.json)


def test_a_signed_out_sessions_access_token_stops_and_the_others_do_not(gateway, new_user):
    phone = new_user()
    laptop = sign_in(gateway, phone)
    session = next(s["id"] for s in phone.get("/v1/sessions").json["sessions"] if s["current"])
    assert laptop.delete(f"/v1/sessions/{session}").status == 200
    took = refused_within(phone)
    print(f"\nsigned-out session's token refused {took:.2f} s after DELETE /v1/sessions/{{id}}")
    assert laptop.get("/v1/users/me").status == 200
    assert sign_in(gateway, phone).get("/v1/users/me").status == 200


def test_a_revoked_refresh_token_takes_its_access_token_with_it(gateway, new_user):
    user = new_user()
    assert gateway.post("/v1/sessions:revoke", {"refresh_token": user.session["refresh_token"]}).status == 200
    refused_within(user)


def test_a_deleted_accounts_token_is_refused_by_every_service_even_for_an_upload(gateway, new_user):
    user = new_user()
    assert user.delete("/v1/users/me", body={"password": "correct horse"}).status == 200
    refused_within(user, "/v1/feed")
    began = time.monotonic()
    while (r := user.upload(small_jpeg(), "image/jpeg")).status != 401:
        assert r.status == 200 and time.monotonic() - began < WITHIN_S, (r.status, r.body[:200])
        time.sleep(0.1)
    assert r.json["details"][0]["reason"] == "TOKEN_REVOKED"
    refused_within(user, "/v1/sessions")


def test_a_suspended_accounts_token_stops_within_seconds(gateway, new_user):
    target, reporter, moderator = new_user(), new_user(), new_user()
    assert admin("grant", moderator.username).returncode == 0
    assert target.get("/v1/feed").status == 200
    assert report(reporter, "TARGET_TYPE_ACCOUNT", target.id, "REASON_SPAM").status == 200
    assert act(moderator, "TARGET_TYPE_ACCOUNT", target.id, "ACTION_SUSPEND").status == 200
    took = refused_within(target, "/v1/feed")
    print(f"\nsuspended account's token refused {took:.2f} s after the action")
    refused_within(target, "/v1/posts", {"media_ids": ["1"], "caption": "still here?"})
    assert reporter.get("/v1/users/me").status == 200
