"""Deleting an account through the gateway (DELETE /v1/users/me): the password is checked, the
account stops at once, every owner erases what names the user (checked over every column of
every table of every schema, and every Redis key, so a new table or key family is covered without
touching this test), the counts others see fall, and the username is free after its grace period
(PICTOR_USERNAME_GRACE_DAYS, a few seconds in the test stack)."""

from __future__ import annotations

import base64
import time

import psycopg
import pytest
import redis

from services.common.db import GLOBAL_SCHEMA
from services.common.dependencies import sync_redis
from services.common.revocation import KEY as REVOKED_TOKENS
from services.messaging.e2e_client import Device
from tests.conftest import GRACE_DAYS
from tests.e2e.http import eventually, path_of
from tests.e2e.media_files import unique_jpeg
from tests.e2e.test_two_factor_http import turned_on

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse"
# Tables that may name a deleted user and why (docs/SECURITY.md, "Your data"):
# consumed_events holds the event plumbing's idempotence markers (consumer, event id, entity id),
# no personal data, pruned after their retention.
EXEMPT_TABLES = {"consumed_events"}
# Redis keys that may: the event streams (the bus, capped) and the replay buffers of other users'
# open streams (their last events, capped and expiring), which are logs of what happened; the
# revoked access tokens (services/common/revocation.py: the deleted user's entry voids their tokens
# until the last expires, and is pruned a minute later).
EXEMPT_KEY_PREFIXES = ("events:", REVOKED_TOKENS)


def ok(r) -> dict:
    assert r.status == 200, r.body
    return r.json


def user_columns(conn: psycopg.Connection) -> list[tuple[str, str, str, bool]]:
    """(schema, table, column, is_array) of every bigint or bigint[] column of Pictor's schemas."""
    rows = conn.execute(
        "SELECT c.table_schema, c.table_name, c.column_name, c.data_type = 'ARRAY' "
        "FROM information_schema.columns c JOIN information_schema.tables t "
        "ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE' "
        "WHERE (c.table_schema LIKE 'shard\\_%%' OR c.table_schema = %s) "
        "AND (c.data_type = 'bigint' OR (c.data_type = 'ARRAY' AND c.udt_name = '_int8')) "
        "ORDER BY 1, 2, 3", (GLOBAL_SCHEMA,)).fetchall()
    return [r for r in rows if r[1] not in EXEMPT_TABLES]


def rows_naming(settings, user_id: int) -> list[str]:
    """Every (schema.table.column) with a row whose value is, or holds, `user_id`."""
    found = []
    for url in settings.database_urls:
        with psycopg.connect(url, autocommit=True) as conn:
            for schema, table, column, is_array in user_columns(conn):
                test = f"%s = ANY({column})" if is_array else f"{column} = %s"
                n = conn.execute(f'SELECT count(*) FROM "{schema}"."{table}" WHERE {test}', (user_id,)).fetchone()[0]
                if n:
                    found.append(f"{schema}.{table}.{column} ({n})")
    return found


def keys_naming(client: redis.Redis, user_id: int) -> list[str]:
    """Every Redis key whose name or content names `user_id` (streams aside)."""
    needle = str(user_id).encode()
    found = []
    for key in client.scan_iter(count=1000):
        if key.decode(errors="replace").startswith(EXEMPT_KEY_PREFIXES):
            continue
        if needle in key:
            found.append(key.decode(errors="replace"))
            continue
        kind = client.type(key)
        if kind == b"set":
            items = list(client.smembers(key))
        elif kind == b"zset":
            items = client.zrange(key, 0, -1)
        elif kind == b"hash":
            items = [x for pair in client.hgetall(key).items() for x in pair]
        elif kind == b"list":
            items = client.lrange(key, 0, -1)
        elif kind == b"string":
            items = [client.get(key) or b""]
        else:
            continue
        if any(needle in item for item in items):
            found.append(f"{key.decode(errors='replace')} ({kind.decode()})")
    return found


def leftovers(settings, client, user_id: int) -> list[str]:
    return rows_naming(settings, user_id) + keys_naming(client, user_id)


@pytest.fixture
def store(stack):
    client = sync_redis(stack.settings.redis_url)
    yield client
    client.close()


def make_a_life(alice, bob, carol, dave) -> dict:
    """Alice makes or owns something of every kind, and touches others' things."""
    media = ok(alice.upload(unique_jpeg(), "image/jpeg"))
    post = ok(alice.post("/v1/posts", {"media_ids": [media["id"]], "caption": "my #erasure test"}))
    bob_post = ok(bob.post("/v1/posts", {"media_ids": [ok(bob.upload(unique_jpeg(), "image/jpeg"))["id"]],
                                         "caption": "bob's"}))
    ok(alice.post(f"/v1/users/{bob.id}/follow"))
    ok(bob.post(f"/v1/users/{alice.id}/follow"))
    ok(carol.patch("/v1/users/me", {"is_private": True}))
    assert ok(alice.post(f"/v1/users/{carol.id}/follow"))["state"] == "REQUESTED"
    ok(alice.post(f"/v1/users/{dave.id}/block"))
    ok(carol.post(f"/v1/users/{alice.id}/mute"))
    ok(alice.post(f"/v1/posts/{bob_post['id']}/like"))
    ok(bob.post(f"/v1/posts/{post['id']}/like"))
    ok(alice.post(f"/v1/posts/{bob_post['id']}/comments", {"text": "nice @" + bob.username}))
    ok(bob.post(f"/v1/posts/{post['id']}/comments", {"text": "thanks"}))
    ok(alice.post(f"/v1/posts/{bob_post['id']}/save"))
    story = ok(alice.post("/v1/stories", {"media_id": ok(alice.upload(unique_jpeg(), "image/jpeg"))["id"]}))
    bob_story = ok(bob.post("/v1/stories", {"media_id": ok(bob.upload(unique_jpeg(), "image/jpeg"))["id"]}))
    ok(bob.post(f"/v1/stories/{story['id']}:view", {}))
    ok(alice.post(f"/v1/stories/{bob_story['id']}:view", {}))
    ok(alice.gateway.request("PUT", f"/v1/users/me/close-friends/{bob.id}", {}, token=alice.token))
    ok(alice.post("/v1/highlights", {"title": "mine", "story_ids": [story["id"]]}))
    conversation = ok(alice.post("/v1/conversations", {"member_ids": [bob.id]}))
    ok(alice.post(f"/v1/conversations/{conversation['id']}/messages", {"client_message_id": "m1", "text": "hi"}))
    ok(alice.post("/v1/users/me/devices", {"public_key": base64.b64encode(Device.new().public_key).decode()}))
    # Reports by her and about her post (moderation's rows name her both ways).
    for reporter, post_id in ((alice, bob_post["id"]), (bob, post["id"])):
        ok(reporter.post("/v1/reports", {"target_type": "TARGET_TYPE_POST", "target_id": post_id,
                                         "reason": "REASON_SPAM"}))
    ok(alice.patch("/v1/users/me/notification-settings", {"email_digest": False}))
    return {"post": post, "bob_post": bob_post, "media": media, "bob_story": bob_story}


def test_deleting_an_account_erases_every_row_and_key_that_names_it(settings, store, new_user, gateway):
    alice, bob, carol, dave = new_user(), new_user(), new_user(), new_user()
    made = make_a_life(alice, bob, carol, dave)
    bob_post = made["bob_post"]["id"]
    eventually(lambda: ok(bob.get(f"/v1/posts/{bob_post}"))["like_count"], "1", timeout_s=10)
    eventually(lambda: ok(bob.get("/v1/users/me")).get("follower_count"), "1", timeout_s=10)
    photo = path_of(made["media"]["variants"][0]["url"])
    assert gateway.get(photo).status == 200
    uid = int(alice.id)
    assert rows_naming(settings, uid), "the scan must see the user before the deletion"

    began = time.monotonic()
    ok(alice.delete("/v1/users/me", body={"password": PASSWORD}))
    # At once: no sign-in, no refresh.
    r = gateway.post("/v1/sessions", {"username": alice.username, "password": PASSWORD})
    assert r.status == 401, r.body
    r = gateway.post("/v1/sessions:refresh", {"refresh_token": alice.session["refresh_token"]})
    assert r.status == 401, r.body

    deadline = time.monotonic() + 120
    while left := leftovers(settings, store, uid):
        assert time.monotonic() < deadline, f"still naming the user after 120 s: {left}"
        time.sleep(0.2)
    print(f"\naccount erased everywhere {time.monotonic() - began:.2f} s after DELETE /v1/users/me")

    assert gateway.get(photo).status != 200
    assert gateway.get(f"/v1/users/{alice.id}", token=bob.token).status == 404
    eventually(lambda: ok(bob.get(f"/v1/posts/{bob_post}"))["like_count"], "0", timeout_s=10)
    eventually(lambda: ok(bob.get(f"/v1/posts/{bob_post}")).get("comment_count", "0"), "0", timeout_s=10)
    eventually(lambda: ok(bob.get("/v1/users/me")).get("follower_count", "0"), "0", timeout_s=10)
    eventually(lambda: ok(bob.get("/v1/users/me")).get("following_count", "0"), "0", timeout_s=10)
    assert ok(bob.get(f"/v1/stories/{made['bob_story']['id']}/viewers")).get("viewers", []) == []


def test_a_wrong_password_deletes_nothing(new_user, gateway):
    alice = new_user()
    r = alice.delete("/v1/users/me", body={"password": "not the password"})
    assert r.status == 403, r.body
    assert r.json["details"][0]["reason"] == "BAD_CREDENTIALS"
    r = alice.delete("/v1/users/me", body={})
    assert r.status == 400, r.body
    ok(gateway.post("/v1/sessions", {"username": alice.username, "password": PASSWORD}))


def test_the_username_is_free_only_after_the_grace_period(new_user, new_account):
    alice = new_user()
    ok(alice.delete("/v1/users/me", body={"password": PASSWORD}))
    r = alice.gateway.post("/v1/accounts", {"username": alice.username, "email": f"again.{alice.username}@example.com",
                                            "password": PASSWORD, "display_name": "Again"})
    assert r.status == 409, r.body
    assert r.json["details"][0]["reason"] == "USERNAME_TAKEN"
    time.sleep(GRACE_DAYS * 86400)
    again = new_account(username=alice.username, email=f"again.{alice.username}@example.com")
    assert again["user"]["username"] == alice.username
    assert again["user"]["id"] != alice.id


def test_with_two_factor_on_deletion_needs_a_code_too(gateway, new_account):
    account = new_account()
    _, recovery_codes = turned_on(gateway, account)
    r = gateway.delete("/v1/users/me", body={"password": PASSWORD}, token=account["access_token"])
    assert r.status == 401, r.body
    assert r.json["details"][0]["reason"] == "TWO_FACTOR_REQUIRED"
    r = gateway.delete("/v1/users/me", body={"password": PASSWORD, "recovery_code": "not-a-code"},
                       token=account["access_token"])
    assert r.status == 401, r.body
    ok(gateway.delete("/v1/users/me", body={"password": PASSWORD, "recovery_code": recovery_codes[0]},
                      token=account["access_token"]))
    assert gateway.post("/v1/sessions", {"username": account["user"]["username"], "password": PASSWORD,
                                         "recovery_code": recovery_codes[1]}).status == 401
