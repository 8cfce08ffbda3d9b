"""End-to-end encrypted conversations through the gateway: devices' public keys, a message sealed per
device, and the plaintext nowhere on the server: not in PostgreSQL, Redis, the blob store or a log."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import psycopg
import pytest
import redis

from services.common.dependencies import sync_redis
from services.messaging.e2e_client import Device, SecretClient
from tests.e2e.sse import SseStream
from tests.e2e.test_messaging_http import reason, start

pytestmark = pytest.mark.e2e


def client(gateway, user, device: Device | None = None) -> SecretClient:
    c = SecretClient(gateway.port, user.token, user.id, device)
    c.register()
    return c


def test_a_device_publishes_its_public_key_and_others_read_it(gateway, new_user):
    alice, bob = new_user(), new_user()
    device = Device.new()
    r = alice.post("/v1/users/me/devices", {"public_key": base64.b64encode(device.public_key).decode()})
    assert r.status == 200, r.body
    listed = bob.get(f"/v1/users/{alice.id}/devices").json["devices"]
    assert [(d["id"], base64.b64decode(d["public_key"])) for d in listed] == [(r.json["id"], device.public_key)]


def test_a_public_key_that_is_not_32_bytes_is_refused(new_user):
    alice = new_user()
    r = alice.post("/v1/users/me/devices", {"public_key": base64.b64encode(b"short").decode()})
    assert r.status == 400 and reason(r) == "INVALID_PUBLIC_KEY"


def test_devices_across_a_block_are_not_found(new_user):
    alice, bob = new_user(), new_user()
    assert alice.post(f"/v1/users/{bob.id}/block", {}).status == 200
    r = bob.get(f"/v1/users/{alice.id}/devices")
    assert r.status == 404 and reason(r) == "USER_NOT_FOUND"


def test_a_secret_conversation_is_its_own_and_one_to_one(new_user):
    alice, bob, carol = new_user(), new_user(), new_user()
    plain, secret = start(alice, bob), start(alice, bob, secret=True)
    assert secret["secret"] is True and secret["id"] != plain["id"]
    assert start(bob, alice, secret=True)["id"] == secret["id"]
    r = alice.post("/v1/conversations", {"member_ids": [bob.id, carol.id], "title": "x", "secret": True})
    assert r.status == 400 and reason(r) == "SECRET_NEEDS_ONE_MEMBER"


def test_every_device_reads_a_secret_message_but_the_server_holds_only_envelopes(gateway, new_user):
    alice, bob = new_user(), new_user()
    alice_phone, alice_laptop, bob_phone = client(gateway, alice), client(gateway, alice), client(gateway, bob)
    conversation = alice_phone.start(bob.id)
    sent = alice_phone.send(conversation, "the key is under the mat")
    assert sent["kind"] == "MESSAGE_KIND_ENCRYPTED" and sent.get("text", "") == ""
    assert bob_phone.read(bob_phone.messages(conversation["id"])[0]) == "the key is under the mat"
    assert alice_laptop.read(alice_laptop.messages(conversation["id"])[0]) == "the key is under the mat"
    # Each reader gets only its own user's envelopes.
    shown = bob_phone.messages(conversation["id"])[0]
    assert [e["device_id"] for e in shown["envelopes"]] == [bob_phone.device.device_id]


def test_a_secret_message_reaches_the_stream_sealed_for_the_reader(gateway, new_user):
    alice, bob = new_user(), new_user()
    alice_phone, bob_phone = client(gateway, alice), client(gateway, bob)
    conversation = alice_phone.start(bob.id)
    with SseStream(gateway.port, token=bob.token, timeout_s=20) as stream:
        assert stream.status == 200
        stream.wait_for_heartbeat(timeout_s=15)
        alice_phone.send(conversation, "see you at eight")
        event = stream.events_until(1, skip=("heartbeat", "notification", "unread_count", "presence"),
                                    timeout_s=15)[0]
    assert event.event == "message" and "see you at eight" not in event.data
    assert bob_phone.read(event.json["data"]) == "see you at eight"


def test_a_secret_message_missing_a_device_or_carrying_text_is_refused(gateway, new_user):
    alice, bob = new_user(), new_user()
    alice_phone = client(gateway, alice)
    client(gateway, bob)
    client(gateway, bob)
    conversation = alice_phone.start(bob.id)
    one = next(iter(alice_phone.devices_of(bob.id)))
    r = alice.post(f"/v1/conversations/{conversation['id']}/messages", {
        "client_message_id": "m", "sender_device_id": alice_phone.device.device_id,
        "envelopes": [{"device_id": one, "ciphertext": base64.b64encode(b"x" * 80).decode()}]})
    assert r.status == 400 and reason(r) == "MISSING_ENVELOPES"
    r = alice.post(f"/v1/conversations/{conversation['id']}/messages", {"client_message_id": "m", "text": "plain"})
    assert r.status == 400 and reason(r) == "SECRET_NEEDS_ENVELOPES"


# --- the plaintext is nowhere on the server ------------------------------------------------


def forms(plaintext: str) -> list[bytes]:
    """The plaintext as it could sit in storage: raw, hex (bytea as text), base64 (bytes in JSON)."""
    raw = plaintext.encode()
    return [raw, raw.hex().encode(), base64.b64encode(raw)[:-4]]


def in_postgres(settings, needles: list[bytes]) -> list[str]:
    """Every row of every table of every schema of every database, as text (bytea as hex): where a
    needle is."""
    found = []
    for url in settings.database_urls:
        with psycopg.connect(url, autocommit=True) as conn:
            tables = conn.execute(
                "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
                "AND table_schema NOT IN ('pg_catalog', 'information_schema')").fetchall()
            for schema, table in tables:
                for needle in needles:
                    hit = conn.execute(f'SELECT 1 FROM "{schema}"."{table}" t WHERE position(%s in t::text) > 0 '
                                       "LIMIT 1", (needle.decode(),)).fetchone()
                    if hit:
                        found.append(f"{schema}.{table}")
    return found


def checkpoint(settings) -> None:
    """Every page on disk too, in every database, for the file scan."""
    for url in settings.database_urls:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")


def redis_values(client: redis.Redis, key: bytes) -> list[bytes]:
    kind = client.type(key).decode()
    if kind == "string":
        return [client.get(key) or b""]
    if kind == "hash":
        return [b for pair in client.hgetall(key).items() for b in pair]
    if kind == "list":
        return client.lrange(key, 0, -1)
    if kind == "set":
        return list(client.smembers(key))
    if kind == "zset":
        return [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
    if kind == "stream":
        return [b for _, fields in client.xrange(key) for pair in fields.items() for b in pair]
    return []


def in_redis(settings, needles: list[bytes]) -> list[str]:
    client = sync_redis(settings.redis_url)
    try:
        return [key.decode() for key in client.scan_iter(count=1000)
                if any(n in value for value in redis_values(client, key) for n in needles)]
    finally:
        client.close()


def in_files(root: Path, needles: list[bytes]) -> list[str]:
    """Every file under `root`, byte for byte: PostgreSQL's data and WAL, Redis' files, blobs, logs."""
    found = []
    for path in root.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue  # a socket, or a file that went meanwhile
        if any(n in data for n in needles):
            found.append(str(path.relative_to(root)))
    return found


def test_the_plaintext_of_a_secret_message_is_nowhere_on_the_server(gateway, new_user, stack):
    alice, bob = new_user(), new_user()
    alice_phone, bob_phone = client(gateway, alice), client(gateway, bob)
    conversation = alice_phone.start(bob.id)
    plaintext = f"launch code {uuid.uuid4().hex}"
    alice_phone.send(conversation, plaintext)
    assert bob_phone.read(bob_phone.messages(conversation["id"])[0]) == plaintext
    checkpoint(stack.settings)
    needles = forms(plaintext)
    settings = stack.settings
    assert in_postgres(settings, needles) == []
    assert in_redis(settings, needles) == []
    logs = settings.data_dir / "logs"
    assert list(logs.glob("*.log")), "no logs to search"
    assert in_files(settings.data_dir, needles) == []


def test_the_same_search_finds_the_text_of_a_message_that_is_not_secret(gateway, new_user, stack):
    """The control: the search above can fail (a plain message's text is in PostgreSQL and its files)."""
    alice, bob = new_user(), new_user()
    conversation = start(alice, bob)
    text = f"plain words {uuid.uuid4().hex}"
    r = alice.post(f"/v1/conversations/{conversation['id']}/messages", {"client_message_id": "m", "text": text})
    assert r.status == 200, r.body
    checkpoint(stack.settings)
    assert any(t.endswith(".messages") for t in in_postgres(stack.settings, forms(text)))
    assert in_files(stack.settings.data_dir, forms(text)) != []
