"""Accounts through the real Envoy, as a curl user would call them."""

from __future__ import annotations

import base64
import json

import pytest

pytestmark = pytest.mark.e2e


def test_register_returns_user_and_tokens(gateway):
    r = gateway.post("/v1/accounts", {"username": "Alice_1", "email": "Alice1@Example.com",
                                      "password": "s3cret-pass", "display_name": "Alice"})
    assert r.status == 200, r.body
    body = r.json
    assert body["user"]["username"] == "alice_1"
    assert isinstance(body["user"]["id"], str) and int(body["user"]["id"]) > 0
    assert body["user"]["display_name"] == "Alice"
    assert body["user"]["is_private"] is False and body["user"]["follower_count"] == "0"
    assert body["access_token"].count(".") == 2 and body["refresh_token"]
    assert body["expires_in"] == 900


def test_me_reads_back_the_registered_user(gateway, new_account):
    session = new_account()
    r = gateway.get("/v1/users/me", token=session["access_token"])
    assert r.status == 200, r.body
    assert r.json["id"] == session["user"]["id"]
    assert set(r.json) == {"id", "username", "display_name", "bio", "avatar_url", "is_private",
                           "follower_count", "following_count", "post_count", "created_at", "show_activity_status"}


def test_get_user_by_id_and_by_username(gateway, new_account):
    session = new_account()
    user = session["user"]
    assert gateway.get(f"/v1/users/{user['id']}").json["username"] == user["username"]
    assert gateway.get(f"/v1/usernames/{user['username'].upper()}").json["id"] == user["id"]


def test_unknown_user_is_404_json(gateway):
    r = gateway.get("/v1/users/123456789")
    assert r.status == 404
    assert r.json["code"] == 5 and "not found" in r.json["message"]
    assert r.json["details"][0]["reason"] == "USER_NOT_FOUND"


def test_login_with_username_or_email(gateway, new_account):
    session = new_account()
    name = session["user"]["username"]
    by_name = gateway.post("/v1/sessions", {"username": name, "password": "correct horse"})
    by_email = gateway.post("/v1/sessions", {"username": f"{name}@EXAMPLE.com", "password": "correct horse"})
    assert by_name.status == 200 and by_email.status == 200
    assert by_name.json["user"]["id"] == by_email.json["user"]["id"] == session["user"]["id"]


def test_wrong_password_and_unknown_user_answer_the_same_401(gateway, new_account):
    session = new_account()
    wrong = gateway.post("/v1/sessions", {"username": session["user"]["username"], "password": "not it at all"})
    unknown = gateway.post("/v1/sessions", {"username": "nobody_here_at_all", "password": "not it at all"})
    assert wrong.status == unknown.status == 401
    assert wrong.json["message"] == unknown.json["message"]


@pytest.mark.parametrize("field, body", [
    ("username", {"username": "bad name!", "email": "a@example.com", "password": "long enough"}),
    ("username", {"username": "x" * 31, "email": "a@example.com", "password": "long enough"}),
    ("email", {"username": "okname", "email": "not-an-email", "password": "long enough"}),
    ("password", {"username": "okname", "email": "a@example.com", "password": "short"}),
])
def test_bad_registration_is_400_naming_the_field(gateway, field, body):
    r = gateway.post("/v1/accounts", body)
    assert r.status == 400, r.body
    assert r.json["details"][0]["metadata"]["field"] == field
    assert field in r.json["message"]


def test_taken_username_is_409_regardless_of_case(gateway, new_account):
    session = new_account()
    r = gateway.post("/v1/accounts", {"username": session["user"]["username"].upper(),
                                      "email": "fresh-address@example.com", "password": "long enough"})
    assert r.status == 409
    assert r.json["details"][0]["reason"] == "USERNAME_TAKEN"


def test_taken_email_is_409(gateway, new_account):
    session = new_account()
    me = gateway.get("/v1/users/me", token=session["access_token"]).json
    email = f"{me['username']}@example.com"
    r = gateway.post("/v1/accounts", {"username": f"{me['username']}x", "email": email.upper(),
                                      "password": "long enough"})
    assert r.status == 409
    assert r.json["details"][0]["reason"] == "EMAIL_TAKEN"


def test_patch_me_changes_only_the_fields_sent(gateway, new_account):
    session = new_account()
    token = session["access_token"]
    r = gateway.patch("/v1/users/me", {"bio": "hello there", "is_private": True}, token=token)
    assert r.status == 200, r.body
    assert r.json["bio"] == "hello there" and r.json["is_private"] is True
    assert r.json["display_name"] == session["user"]["display_name"]
    # false and empty are real values when sent
    r = gateway.patch("/v1/users/me", {"is_private": False, "bio": ""}, token=token)
    assert r.json["is_private"] is False and r.json["bio"] == ""


def test_patch_me_with_update_mask_ignores_other_fields(gateway, new_account):
    session = new_account()
    r = gateway.patch("/v1/users/me?update_mask=display_name", {"display_name": "New Name", "bio": "ignored"},
                      token=session["access_token"])
    assert r.status == 200, r.body
    assert r.json["display_name"] == "New Name" and r.json["bio"] == ""


def test_patch_me_rejects_read_only_fields(gateway, new_account):
    session = new_account()
    r = gateway.patch("/v1/users/me", {"follower_count": "1000000"}, token=session["access_token"])
    assert r.status == 400
    assert "follower_count" in r.json["message"]


def test_patch_me_rejects_over_long_bio(gateway, new_account):
    session = new_account()
    r = gateway.patch("/v1/users/me", {"bio": "b" * 151}, token=session["access_token"])
    assert r.status == 400 and r.json["details"][0]["metadata"]["field"] == "bio"


def test_refresh_rotates_and_reuse_revokes_the_family(gateway, new_account):
    session = new_account()
    first = session["refresh_token"]
    r = gateway.post("/v1/sessions:refresh", {"refresh_token": first})
    assert r.status == 200, r.body
    second = r.json["refresh_token"]
    assert second != first
    reused = gateway.post("/v1/sessions:refresh", {"refresh_token": first})
    assert reused.status == 401 and reused.json["details"][0]["reason"] == "REFRESH_TOKEN_REUSED"
    # the family is gone: even the newest token no longer works
    assert gateway.post("/v1/sessions:refresh", {"refresh_token": second}).status == 401


def test_revoke_logs_out(gateway, new_account):
    session = new_account()
    assert gateway.post("/v1/sessions:revoke", {"refresh_token": session["refresh_token"]}).status == 200
    r = gateway.post("/v1/sessions:refresh", {"refresh_token": session["refresh_token"]})
    assert r.status == 401


def test_me_without_token_is_401_json(gateway):
    r = gateway.get("/v1/users/me")
    assert r.status == 401
    assert r.json["code"] == 16 and r.json["message"]


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "1"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize("make_token", [
    lambda t: _tampered(t),
    lambda t: "not.a.jwt",
    lambda t: t[:-4] + "AAAA",
], ids=["tampered-claims", "garbage", "bad-signature"])
def test_bad_tokens_are_401_json_from_the_gateway(gateway, new_account, make_token):
    session = new_account()
    r = gateway.get("/v1/users/me", token=make_token(session["access_token"]))
    assert r.status == 401
    assert r.headers["content-type"].startswith("application/json")
    assert r.json["code"] == 16 and r.json["message"]


def test_a_profile_says_how_the_viewer_stands_with_its_owner(new_user):
    viewer, owner, private = new_user(), new_user(), new_user(private=True)
    assert viewer.post(f"/v1/users/{owner.id}/follow").status == 200
    assert viewer.post(f"/v1/users/{owner.id}/mute").status == 200
    assert viewer.post(f"/v1/users/{private.id}/follow").status == 200
    assert viewer.get(f"/v1/users/{owner.id}").json["viewer"] == {"following": True, "requested": False, "muted": True}
    assert viewer.get(f"/v1/usernames/{private.username}").json["viewer"] == {
        "following": False, "requested": True, "muted": False}
    # Only a signed-in viewer looking at someone else gets it.
    assert "viewer" not in viewer.get(f"/v1/users/{viewer.id}").json
    assert "viewer" not in viewer.gateway.get(f"/v1/users/{owner.id}").json
