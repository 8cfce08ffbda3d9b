"""Two-factor sign-in (TOTP, RFC 6238) through Envoy, with the codes an authenticator app would show
(computed here from the secret the setup answered)."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import pytest

from services.accounts import totp

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse"


def reason(r) -> str:
    return r.json["details"][0]["reason"]


def sign_in(gateway, account: dict, **extra: str):
    return gateway.post("/v1/sessions", {"username": account["user"]["username"], "password": PASSWORD, **extra})


def turned_on(gateway, account: dict) -> tuple[str, list[str]]:
    """Two-factor sign-in on for the account: (its secret, its recovery codes)."""
    token = account["access_token"]
    setup = gateway.post("/v1/users/me/two-factor:setup", {}, token=token)
    assert setup.status == 200, setup.body
    secret = setup.json["secret"]
    r = gateway.post("/v1/users/me/two-factor:enable", {"totp_code": totp.code_at(secret, time.time())}, token=token)
    assert r.status == 200, r.body
    return secret, r.json["recovery_codes"]


def next_code(secret: str) -> str:
    """The app's code for the next step: the step that turned it on (or signed in) is spent."""
    return totp.code_at(secret, time.time() + totp.STEP_S)


def test_setup_answers_a_secret_and_an_otpauth_uri_and_changes_nothing_until_enabled(gateway, new_account):
    account = new_account()
    r = gateway.post("/v1/users/me/two-factor:setup", {}, token=account["access_token"])
    assert r.status == 200, r.body
    uri = urlparse(r.json["otpauth_uri"])
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    assert parse_qs(uri.query)["secret"] == [r.json["secret"]]
    assert account["user"]["username"] in uri.path
    assert gateway.get("/v1/users/me/two-factor", token=account["access_token"]).json.get("enabled", False) is False
    assert sign_in(gateway, account).status == 200


def test_enabling_needs_a_code_from_the_secret_and_answers_ten_recovery_codes(gateway, new_account):
    account = new_account()
    token = account["access_token"]
    r = gateway.post("/v1/users/me/two-factor:enable", {"totp_code": "123456"}, token=token)
    assert r.status == 400 and reason(r) == "TWO_FACTOR_NOT_SET_UP"
    gateway.post("/v1/users/me/two-factor:setup", {}, token=token)
    r = gateway.post("/v1/users/me/two-factor:enable", {"totp_code": "000000"}, token=token)
    assert r.status == 400 and reason(r) == "TOTP_INVALID"
    _, codes = turned_on(gateway, account)
    assert len(codes) == 10 and len(set(codes)) == 10
    status = gateway.get("/v1/users/me/two-factor", token=token).json
    assert status == {"enabled": True, "recovery_codes_left": 10}


def test_with_it_on_a_right_password_alone_is_not_enough_and_a_wrong_one_says_nothing_more(gateway, new_account):
    account = new_account()
    turned_on(gateway, account)
    r = sign_in(gateway, account)
    assert r.status == 401 and reason(r) == "TWO_FACTOR_REQUIRED"
    wrong = gateway.post("/v1/sessions", {"username": account["user"]["username"], "password": "wrong horse"})
    assert wrong.status == 401 and reason(wrong) == "BAD_CREDENTIALS"


def test_a_code_signs_in_once(gateway, new_account):
    account = new_account()
    secret, _ = turned_on(gateway, account)
    code = next_code(secret)
    assert sign_in(gateway, account, totp_code=code).status == 200
    again = sign_in(gateway, account, totp_code=code)
    assert again.status == 401 and reason(again) == "TOTP_INVALID"
    assert reason(sign_in(gateway, account, totp_code="000000")) == "TOTP_INVALID"


def test_a_recovery_code_signs_in_once(gateway, new_account):
    account = new_account()
    _, codes = turned_on(gateway, account)
    assert sign_in(gateway, account, recovery_code=codes[0].upper()).status == 200
    again = sign_in(gateway, account, recovery_code=codes[0])
    assert again.status == 401 and reason(again) == "RECOVERY_CODE_INVALID"
    assert gateway.get("/v1/users/me/two-factor", token=account["access_token"]).json["recovery_codes_left"] == 9


def test_turning_it_off_takes_the_password_and_a_code(gateway, new_account):
    account = new_account()
    token = account["access_token"]
    secret, codes = turned_on(gateway, account)
    r = gateway.post("/v1/users/me/two-factor:setup", {}, token=token)
    assert r.status == 409 and reason(r) == "TWO_FACTOR_ENABLED"
    r = gateway.post("/v1/users/me/two-factor:disable", {"password": "wrong horse", "recovery_code": codes[0]},
                     token=token)
    assert r.status == 403 and reason(r) == "BAD_CREDENTIALS"
    r = gateway.post("/v1/users/me/two-factor:disable", {"password": PASSWORD, "totp_code": "000000"}, token=token)
    assert r.status == 401 and reason(r) == "TOTP_INVALID"
    r = gateway.post("/v1/users/me/two-factor:disable", {"password": PASSWORD, "totp_code": next_code(secret)},
                     token=token)
    assert r.status == 200, r.body
    assert sign_in(gateway, account).status == 200


def test_two_factor_routes_need_a_token(gateway):
    assert gateway.get("/v1/users/me/two-factor").status == 401
    assert gateway.post("/v1/users/me/two-factor:setup", {}).status == 401
