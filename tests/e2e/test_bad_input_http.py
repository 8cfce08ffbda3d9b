"""Bad ids and altered page tokens on every route the gateway serves: a 4xx JSON error naming the field.

The routes come from the protos' google.api.http rules (services.mesh.http_rules),
so a new route is tried here without being listed. Every id in a path, a query
string or a JSON body gets each bad id; every page_token gets each altered token.
"""

from __future__ import annotations

import base64
import json
import os
from urllib.parse import quote

import pytest
from google.protobuf.descriptor import FieldDescriptor

from services.mesh.http_rules import HttpRoute, http_routes
from tests.e2e.media_files import small_jpeg

pytestmark = pytest.mark.e2e

INT64 = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64}
ROUTES = http_routes()
# Not a number, past int64 either way, negative, zero, not an integer.
BAD_IDS = ["abc", "9223372036854775808", "99999999999999999999", "-9223372036854775809", "-1", "0", "1.5", "1e3"]
# Zero is a fine offset or "none" for an optional id in a body; the rest are bad everywhere.
BAD_NUMBERS = [v for v in BAD_IDS if v != "0"]


def _is_id(name: str) -> bool:
    return name == "id" or name.endswith(("_id", "_ids"))


def _path_cases() -> list[tuple[HttpRoute, str, str]]:
    return [(r, f.name, bad) for r in ROUTES for f in r.path_fields if f.type in INT64 for bad in BAD_IDS]


def _query_cases() -> list[tuple[HttpRoute, str, str]]:
    return [(r, name, bad) for r in ROUTES for name, f in r.query_fields if f.type in INT64
            for bad in (BAD_IDS if _is_id(name) else BAD_NUMBERS)]


def _body_cases() -> list[tuple[HttpRoute, str, object]]:
    cases = []
    for r in ROUTES:
        if r.body != "*":
            continue
        for f in r.body_fields:
            if f.type not in INT64:
                continue
            bad = BAD_IDS if f.is_repeated else BAD_NUMBERS
            for value in bad:
                # As the JSON string ids travel as, and as a bare JSON number where it is one
                # (1e3 as a number is 1000, a fine integer).
                as_json: list[object] = [value]
                if value.lstrip("-").replace(".", "").isdigit():
                    as_json.append(json.loads(value))
                for v in as_json:
                    cases.append((r, f.name, [v] if f.is_repeated else v))
    return cases


def _text_cases() -> list[tuple[HttpRoute, str, str]]:
    """Every string a client may send in a path or a JSON body, with NUL and a lone surrogate's bytes."""
    cases = []
    for r in ROUTES:
        fields = [(f.name, "path") for f in r.path_fields if f.type == FieldDescriptor.TYPE_STRING]
        if r.body == "*":
            fields += [(f.name, "body") for f in r.body_fields if f.type == FieldDescriptor.TYPE_STRING
                       and not f.is_repeated]
        cases += [(r, f"{name} in the {where}", bad) for name, where in fields for bad in ("a\x00b", "a\udcffb")]
    return cases


def _token_routes() -> list[HttpRoute]:
    return [r for r in ROUTES if any(name == "page_token" for name, _ in r.query_fields)]


def _case_id(case: tuple) -> str:
    route, field, value = case
    return f"{route.name} {field}={value!r}"


@pytest.fixture(scope="module")
def world(gateway):
    """A signed-in user with real ids to fill the fields a case does not spoil."""
    name = f"badinput{os.getpid()}"
    r = gateway.post("/v1/accounts", {"username": name, "email": f"{name}@example.com", "password": "correct horse"})
    assert r.status == 200, r.body
    token = r.json["access_token"]
    user_id = r.json["user"]["id"]
    media = gateway.post("/v1/media", raw=small_jpeg(), headers={"content-type": "image/jpeg"}, token=token)
    assert media.status == 200, media.body
    post = gateway.post("/v1/posts", {"media_ids": [media.json["id"]], "caption": "bad input"}, token=token)
    assert post.status == 200, post.body
    post_id = post.json["id"]
    comments = [gateway.post(f"/v1/posts/{post_id}/comments", {"text": f"c{i}"}, token=token) for i in range(2)]
    assert all(c.status == 200 for c in comments)
    page = gateway.get(f"/v1/posts/{post_id}/comments?page_size=1", token=token).json
    assert page["next_page_token"]
    return {"token": token, "user_id": user_id, "post_id": post_id, "comment_id": comments[0].json["id"],
            "media_id": media.json["id"], "upload_id": "0", "file": "640.jpg",
            "comments_token": page["next_page_token"]}


def _fill(route: HttpRoute, world: dict, **spoiled: object) -> str:
    values = {f.name: spoiled.get(f.name, world.get(f.name, "1")) for f in route.path_fields}
    return route.path(**{k: quote(str(v), safe="") for k, v in values.items()})


# Query parameters a route needs besides the one a case spoils (a search needs something to search).
REQUIRED_QUERY = {"/v1/search": "q=ada&type=USERS&"}


def _send(gateway, route: HttpRoute, world: dict, path: str, body: object = None):
    if route.raw_body:
        return gateway.request(route.verb.upper(), path, raw=small_jpeg(), token=world["token"],
                               headers={"content-type": "image/jpeg"})
    if body is None and route.body:
        body = {}
    return gateway.request(route.verb.upper(), path, body, token=world["token"])


def assert_names_the_field(response, field: str) -> dict:
    """A 4xx JSON error whose message or ErrorInfo names `field`."""
    assert 400 <= response.status < 500, (response.status, response.body)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json
    assert isinstance(body["code"], int) and isinstance(body["message"], str), body
    named = {d.get("metadata", {}).get("field") for d in body.get("details", [])}
    assert field in named or body["message"].startswith(f"{field}") or f" {field}" in body["message"], body
    return body


def test_every_route_is_enumerated():
    names = {r.name for r in ROUTES}
    assert {"GET /v1/users/{user_id}", "POST /v1/posts/{post_id}/comments", "GET /v1/feed"} <= names
    assert len(_path_cases()) > 200 and _token_routes()


@pytest.mark.parametrize("case", _path_cases(), ids=_case_id)
def test_a_bad_id_in_a_path_is_400_naming_it(gateway, world, case):
    route, field, bad = case
    response = _send(gateway, route, world, _fill(route, world, **{field: bad}))
    assert response.status == 400, (response.status, response.body)
    assert_names_the_field(response, field)


@pytest.mark.parametrize("case", _query_cases(), ids=_case_id)
def test_a_bad_number_in_a_query_string_is_400_naming_it(gateway, world, case):
    route, field, bad = case
    response = _send(gateway, route, world, f"{_fill(route, world)}?{field}={quote(bad)}")
    assert response.status == 400, (response.status, response.body)
    assert_names_the_field(response, field)


@pytest.mark.parametrize("case", _body_cases(), ids=_case_id)
def test_a_bad_id_in_a_body_is_400_naming_it(gateway, world, case):
    route, field, bad = case
    response = _send(gateway, route, world, _fill(route, world), {field: bad})
    assert response.status == 400, (response.status, response.body)
    assert_names_the_field(response, field)


@pytest.mark.parametrize("case", _text_cases(), ids=_case_id)
def test_text_with_nul_or_bad_utf8_is_never_a_5xx(gateway, world, case):
    """Refused as a 4xx JSON error, or harmless (revoking a token that is none succeeds)."""
    route, where, bad = case
    field = where.split()[0]
    if where.endswith("path"):
        # Bad UTF-8 as a path carries it: percent-encoded bytes.
        spoiled = quote(bad.encode("utf-8", "surrogateescape"), safe="")
        response = _send(gateway, route, world, route.path(**{f.name: spoiled if f.name == field else
                                                               quote(str(world.get(f.name, "1")), safe="")
                                                               for f in route.path_fields}))
    else:
        body = json.dumps({field: bad}).encode()  # a lone surrogate escaped as JSON allows: \udcff
        response = gateway.request(route.verb.upper(), _fill(route, world), raw=body, token=world["token"])
    assert response.status < 500, (response.status, response.body)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    if response.status == 200:
        return
    # Envoy refuses a NUL in a path before routing, with a reason and no message.
    assert response.json["message"] or response.json["details"][0]["reason"], response.json


def _altered_tokens(valid: str) -> dict[str, str]:
    raw = base64.urlsafe_b64decode(valid + "=" * (-len(valid) % 4))
    return {
        "not base64": "garbage!",
        "truncated": valid[: len(valid) // 2],
        "one character off": valid[:-1] + ("A" if valid[-1] != "A" else "B"),
        "re-encoded (standard base64 of the token)": base64.b64encode(valid.encode()).decode(),
        "base64 of junk": base64.urlsafe_b64encode(os.urandom(48)).decode().rstrip("="),
        "base64 of a JSON list": base64.urlsafe_b64encode(b"[1, 2, 3]").decode(),
        "a cursor with a wrong type": base64.urlsafe_b64encode(
            json.dumps({**json.loads(raw), "after": "x"}).encode()).decode(),
        "a raw offset": "20",
        "huge": "A" * 30_000,
    }


def _token_cases() -> list[tuple[HttpRoute, str]]:
    return [(r, label) for r in _token_routes() for label in _altered_tokens("e30")]


@pytest.mark.parametrize("case", _token_cases(), ids=lambda c: f"{c[0].name} {c[1]}")
def test_an_altered_page_token_is_400_naming_it(gateway, world, case):
    route, label = case
    token = _altered_tokens(world["comments_token"])[label]
    query = REQUIRED_QUERY.get(route.template, "")
    response = _send(gateway, route, world, f"{_fill(route, world)}?{query}page_token={quote(token, safe='')}")
    assert response.status == 400, (response.status, response.body)
    assert_names_the_field(response, "page_token")


@pytest.mark.parametrize("route", [r for r in _token_routes() if r.template != "/v1/posts/{post_id}/comments"],
                         ids=lambda r: r.name)
def test_a_page_token_of_another_route_is_400_naming_it(gateway, world, route):
    path = f"{_fill(route, world)}?{REQUIRED_QUERY.get(route.template, '')}page_token={world['comments_token']}"
    body = assert_names_the_field(_send(gateway, route, world, path), "page_token")
    assert body["details"][0]["reason"] == "INVALID_PAGE_TOKEN"


def test_a_page_token_of_another_users_listing_is_400(gateway, new_user):
    alice, bob = new_user(), new_user()
    for _ in range(2):
        follower = new_user()
        assert follower.post(f"/v1/users/{alice.id}/follow", {}).status == 200
        assert follower.post(f"/v1/users/{bob.id}/follow", {}).status == 200
    token = alice.get(f"/v1/users/{alice.id}/followers?page_size=1").json["next_page_token"]
    assert token
    assert alice.get(f"/v1/users/{alice.id}/followers?page_size=1&page_token={token}").status == 200
    response = alice.get(f"/v1/users/{bob.id}/followers?page_size=1&page_token={token}")
    assert assert_names_the_field(response, "page_token")["details"][0]["reason"] == "INVALID_PAGE_TOKEN"


def test_a_page_token_of_another_users_feed_is_400(new_user, settle):
    author, alice, bob = new_user(), new_user(), new_user()
    for reader in (alice, bob):
        assert reader.post(f"/v1/users/{author.id}/follow", {}).status == 200
    for i in range(2):
        media = author.upload(small_jpeg(), "image/jpeg")
        assert author.post("/v1/posts", {"media_ids": [media.json["id"]], "caption": f"p{i}"}).status == 200
    settle()
    token = alice.get("/v1/feed?page_size=1&mode=CHRONOLOGICAL").json["next_page_token"]
    assert token
    response = bob.get(f"/v1/feed?page_size=1&mode=CHRONOLOGICAL&page_token={token}")
    assert assert_names_the_field(response, "page_token")["details"][0]["reason"] == "INVALID_PAGE_TOKEN"


# Ids carried as strings (upload ids, the id part of a refresh token): Unicode digits that
# str.isdigit() accepts but int() refuses, and numbers past int64. Found by `make fuzz`.
ODD_DIGITS = ["³", "٣٣", "１２", "99999999999999999999", "9223372036854775808"]


@pytest.mark.parametrize("raw", ODD_DIGITS)
def test_an_upload_id_of_odd_digits_is_404_not_500(new_user, raw):
    alice = new_user()
    for response in (alice.get(f"/v1/uploads/{quote(raw)}"),
                     alice.post(f"/v1/uploads/{quote(raw)}:complete", {})):
        assert response.status == 404, response.body
        assert response.json["details"][0]["reason"] == "UPLOAD_NOT_FOUND"


@pytest.mark.parametrize("raw", ODD_DIGITS)
def test_a_refresh_token_of_odd_digits_is_401_not_500(gateway, raw):
    response = gateway.post("/v1/sessions:refresh", {"refresh_token": f"{raw}.secret"})
    assert response.status == 401, response.body
    assert response.json["details"][0]["reason"] == "REFRESH_TOKEN_INVALID"


# Reports and moderation: enums, notes and actions a client got wrong.
REPORT = {"target_type": "TARGET_TYPE_POST", "target_id": "1", "reason": "REASON_SPAM"}
BAD_REPORTS = [
    ({"target_type": "TARGET_TYPE_UNSPECIFIED"}, "target_type", "INVALID_TARGET_TYPE"),
    ({"target_type": None}, "target_type", "INVALID_TARGET_TYPE"),
    ({"target_type": 99}, "target_type", "INVALID_TARGET_TYPE"),
    ({"target_type": "TARGET_TYPE_PICTURE"}, "target_type", None),
    ({"reason": None}, "reason", "INVALID_REASON"),
    ({"reason": "REASON_BORED"}, "reason", None),
    ({"reason": 42}, "reason", "INVALID_REASON"),
    ({"target_id": None}, "target_id", "INVALID_ID"),
    ({"note": "x" * 1001}, "note", "INVALID_ARGUMENT"),
]


@pytest.mark.parametrize("change,field,reason", BAD_REPORTS, ids=lambda v: repr(v)[:40])
def test_a_bad_report_is_400_naming_the_field(gateway, world, change, field, reason):
    body = {k: v for k, v in {**REPORT, "target_id": world["post_id"], **change}.items() if v is not None}
    response = gateway.post("/v1/reports", body, token=world["token"])
    assert response.status == 400, (response.status, response.body)
    error = assert_names_the_field(response, field)
    if reason is not None:  # None: the gateway's own (a name the enum does not have)
        assert error["details"][0]["reason"] == reason, error


BAD_ACTIONS = [
    ({"action": "ACTION_UNSPECIFIED"}, "action", "INVALID_ACTION"),
    ({"action": "ACTION_GRANT_MODERATOR"}, "action", "INVALID_ACTION"),
    ({"action": "ACTION_HIDE", "target_type": "TARGET_TYPE_ACCOUNT"}, "action", "INVALID_ACTION"),
    ({"action": "ACTION_EXPLODE"}, "action", None),
    ({"target_type": "TARGET_TYPE_UNSPECIFIED"}, "target_type", "INVALID_TARGET_TYPE"),
    ({"note": "a\x00b"}, "note", "INVALID_ARGUMENT"),
]


@pytest.mark.parametrize("change,field,reason", BAD_ACTIONS, ids=lambda v: repr(v)[:40])
def test_a_bad_moderator_action_is_400_naming_the_field_whoever_sends_it(gateway, world, change, field, reason):
    body = {"target_type": "TARGET_TYPE_POST", "target_id": world["post_id"], "action": "ACTION_DISMISS", **change}
    response = gateway.post("/v1/moderation/actions", body, token=world["token"])
    assert response.status == 400, (response.status, response.body)
    error = assert_names_the_field(response, field)
    if reason is not None:
        assert error["details"][0]["reason"] == reason, error


def test_reporting_a_target_that_does_not_exist_is_404(gateway, world):
    for target_type in ("TARGET_TYPE_POST", "TARGET_TYPE_COMMENT", "TARGET_TYPE_STORY", "TARGET_TYPE_MESSAGE",
                        "TARGET_TYPE_ACCOUNT"):
        for target_id in ("1", "9223372036854775807"):
            response = gateway.post("/v1/reports", {**REPORT, "target_type": target_type, "target_id": target_id},
                                    token=world["token"])
            assert response.status == 404, (target_type, target_id, response.body)
            assert response.json["details"][0]["reason"] == "TARGET_NOT_FOUND"
