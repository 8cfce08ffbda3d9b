"""Exporting one's data through the gateway (POST /v1/users/me:export): a job at once, a worker that
asks every owner over its mesh-only ExportUserData, a signed zip only its owner can reach, and in it
every kind of the user's data and nothing of anyone else's (README: "Your data")."""

from __future__ import annotations

import base64
import io
import json
import time
import uuid
import zipfile
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import grpc
import pytest
from pictor.exports.v1 import exports_pb2
from pictor.posts.v1 import posts_service_pb2_grpc

from services.common.mesh_tls import service_channel
from services.messaging.e2e_client import Device
from tests.e2e.http import UserClient, path_of
from tests.e2e.media_files import unique_jpeg

pytestmark = pytest.mark.e2e


def ok(r) -> dict:
    assert r.status == 200, (r.status, r.body[:300])
    return r.json


def ready(user, export_id: str, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while (job := ok(user.get(f"/v1/users/me/exports/{export_id}")))["state"] in ("PENDING", "RUNNING"):
        assert time.monotonic() < deadline, f"export still {job['state']} after {timeout_s} s: {job}"
        time.sleep(0.2)
    return job


def new_user(gateway) -> UserClient:
    n = uuid.uuid4().hex[:12]
    return UserClient(gateway, ok(gateway.post("/v1/accounts", {
        "username": f"export{n}", "email": f"export{n}@example.com", "password": "correct horse",
        "display_name": "Export"})))


@pytest.fixture(scope="module")
def exported(gateway):
    """alice's life (bob and carol around her), her export, and its archive unzipped."""
    alice, bob, carol, dave = (new_user(gateway) for _ in range(4))
    photo, bob_photo = unique_jpeg(), unique_jpeg()
    media = ok(alice.upload(photo, "image/jpeg"))
    post = ok(alice.post("/v1/posts", {"media_ids": [media["id"]], "caption": "my export"}))
    bob_post = ok(bob.post("/v1/posts", {"media_ids": [ok(bob.upload(bob_photo, "image/jpeg"))["id"]],
                                         "caption": "bob's"}))
    ok(alice.post(f"/v1/users/{bob.id}/follow"))
    ok(bob.post(f"/v1/users/{alice.id}/follow"))
    ok(alice.post(f"/v1/users/{dave.id}/block"))
    ok(alice.post(f"/v1/posts/{bob_post['id']}/like"))
    ok(alice.post(f"/v1/posts/{bob_post['id']}/save"))
    mine = ok(alice.post(f"/v1/posts/{bob_post['id']}/comments", {"text": "alice's comment"}))
    theirs = ok(bob.post(f"/v1/posts/{post['id']}/comments", {"text": "bob's comment"}))
    story_media = ok(alice.upload(unique_jpeg(), "image/jpeg"))
    story = ok(alice.post("/v1/stories", {"media_id": story_media["id"]}))
    highlight = ok(alice.post("/v1/highlights", {"title": "mine", "story_ids": [story["id"]]}))
    conversation = ok(alice.post("/v1/conversations", {"member_ids": [bob.id]}))
    sent = ok(alice.post(f"/v1/conversations/{conversation['id']}/messages",
                         {"client_message_id": "e1", "text": "alice says hi"}))
    received = ok(bob.post(f"/v1/conversations/{conversation['id']}/messages",
                           {"client_message_id": "e2", "text": "bob answers"}))
    ok(carol.post(f"/v1/posts/{post['id']}/like"))
    # What she keeps of her relations and her looking around.
    erin, fran = new_user(gateway), new_user(gateway)
    ok(alice.post(f"/v1/users/{fran.id}/mute"))
    ok(fran.patch("/v1/users/me", {"is_private": True}))
    assert ok(alice.post(f"/v1/users/{fran.id}/follow"))["state"] == "REQUESTED"
    ok(alice.patch("/v1/users/me", {"is_private": True}))
    assert ok(erin.post(f"/v1/users/{alice.id}/follow"))["state"] == "REQUESTED"
    ok(alice.gateway.request("PUT", f"/v1/users/me/close-friends/{bob.id}", {}, token=alice.token))
    bob_story = ok(bob.post("/v1/stories", {"media_id": ok(bob.upload(unique_jpeg(), "image/jpeg"))["id"]}))
    ok(alice.post(f"/v1/stories/{bob_story['id']}:view", {}))
    ok(alice.post(f"/v1/stories/{bob_story['id']}/reactions", {"emoji": "🔥"}))
    ok(alice.post(f"/v1/messages/{sent['id']}/reactions", {"emoji": "👍"}))
    device = ok(alice.post("/v1/users/me/devices", {"public_key": base64.b64encode(Device.new().public_key).decode()}))
    ok(alice.patch("/v1/users/me/notification-settings", {"muted_types": ["LIKE"],
                                                          "email_digest": False}))
    report = ok(alice.post("/v1/reports", {"target_type": "TARGET_TYPE_POST", "target_id": bob_post["id"],
                                           "reason": "REASON_SPAM", "note": "looks like spam"}))

    began = time.monotonic()
    first = ok(alice.post("/v1/users/me:export", {}))
    again = ok(alice.post("/v1/users/me:export", {}))
    job = ready(alice, first["id"])
    print(f"\nexport READY {time.monotonic() - began:.2f} s after POST /v1/users/me:export "
          f"({job['items_done']} items, {job['size_bytes']} bytes)")
    r = gateway.get(path_of(job["download_url"]))
    assert r.status == 200, (r.status, r.body[:300])
    archive = zipfile.ZipFile(io.BytesIO(r.body))
    return {"alice": alice, "bob": bob, "carol": carol, "dave": dave, "first": first, "again": again,
            "job": job, "response": r, "archive": archive, "photo": photo, "media": media, "post": post,
            "bob_post": bob_post, "mine": mine, "theirs": theirs, "story": story, "story_media": story_media,
            "highlight": highlight, "conversation": conversation, "sent": sent, "received": received,
            "bob_story": bob_story, "device": device, "erin": erin, "fran": fran, "report": report}


def when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def table(archive: zipfile.ZipFile, name: str) -> list[dict]:
    return json.loads(archive.read(name))


def test_the_request_answers_at_once_with_a_job(exported):
    first = exported["first"]
    assert first["state"] in ("PENDING", "RUNNING", "READY"), first
    assert first["id"] and first["created_at"], first


def test_a_second_request_while_one_runs_returns_the_running_one(exported):
    first, again = exported["first"], exported["again"]
    if again["id"] != first["id"]:
        # Only once the first had finished may a new one start.
        job = exported["job"]
        assert when(job["finished_at"]) <= when(again["created_at"]), (job, again)
    else:
        assert again["state"] in ("PENDING", "RUNNING"), again


def test_a_ready_job_shows_its_progress_size_expiry_and_a_signed_url(exported):
    job = exported["job"]
    assert job["state"] == "READY", job
    assert int(job["items_done"]) >= 10, job
    assert int(job["size_bytes"]) == len(exported["response"].body)
    assert when(job["expires_at"]) > when(job["finished_at"])
    query = parse_qs(urlsplit(job["download_url"]).query)
    assert set(query) == {"exp", "sig"}


def test_the_archive_is_a_zip_download_kept_private(exported):
    headers = exported["response"].headers
    assert headers["content-type"] == "application/zip"
    assert headers["content-disposition"].startswith("attachment; filename=\"pictor-export-")
    assert headers["cache-control"] == "private, no-store"


def test_every_kind_of_data_is_in_the_archive(exported):
    archive = exported["archive"]
    names = set(archive.namelist())
    assert {"README.txt", "profile.json", "sessions.json", "posts.json", "comments.json", "likes.json",
            "saves.json", "following.json", "followers.json", "blocks.json", "stories.json", "highlights.json",
            "messages.json", "media.json"} <= names
    alice, bob, dave = exported["alice"], exported["bob"], exported["dave"]
    profile = json.loads(archive.read("profile.json"))
    assert (profile["id"], profile["username"]) == (alice.id, alice.username)
    assert "password_hash" not in profile
    assert len(table(archive, "sessions.json")) >= 1
    assert [p["id"] for p in table(archive, "posts.json")] == [exported["post"]["id"]]
    assert table(archive, "posts.json")[0]["caption"] == "my export"
    assert [(c["id"], c["text"]) for c in table(archive, "comments.json")] == [(exported["mine"]["id"],
                                                                                 "alice's comment")]
    assert [x["post_id"] for x in table(archive, "likes.json")] == [exported["bob_post"]["id"]]
    assert [x["post_id"] for x in table(archive, "saves.json")] == [exported["bob_post"]["id"]]
    assert [x["user_id"] for x in table(archive, "following.json")] == [bob.id]
    assert [x["user_id"] for x in table(archive, "followers.json")] == [bob.id]
    assert [x["user_id"] for x in table(archive, "blocks.json")] == [dave.id]
    assert [s["id"] for s in table(archive, "stories.json")] == [exported["story"]["id"]]
    highlights = table(archive, "highlights.json")
    assert [(h["id"], h["story_ids"]) for h in highlights] == [(exported["highlight"]["id"], [exported["story"]["id"]])]
    assert [(m["id"], m["text"]) for m in table(archive, "messages.json")] == [(exported["sent"]["id"], "alice says hi")]
    media_ids = {m["id"] for m in table(archive, "media.json")}
    assert media_ids == {exported["media"]["id"], exported["story_media"]["id"]}


def test_her_relations_views_reactions_and_devices_are_in_the_archive(exported):
    archive, bob, erin, fran = exported["archive"], exported["bob"], exported["erin"], exported["fran"]
    assert [x["user_id"] for x in table(archive, "mutes.json")] == [fran.id]
    assert [x["user_id"] for x in table(archive, "follow_requests_sent.json")] == [fran.id]
    assert [x["user_id"] for x in table(archive, "follow_requests_received.json")] == [erin.id]
    assert [x["user_id"] for x in table(archive, "close_friends.json")] == [bob.id]
    views = table(archive, "story_views.json")
    assert [(v["story_id"], v["reaction"]) for v in views] == [(exported["bob_story"]["id"], "🔥")]
    assert [c["conversation_id"] for c in table(archive, "conversations.json")] == [exported["conversation"]["id"]]
    assert [(r["message_id"], r["emoji"]) for r in table(archive, "message_reactions.json")] == [
        (exported["sent"]["id"], "👍")]
    assert [d["id"] for d in table(archive, "devices.json")] == [exported["device"]["id"]]


def test_her_notification_settings_and_reports_are_in_the_archive(exported):
    archive, bob_post = exported["archive"], exported["bob_post"]
    [settings] = table(archive, "notification_settings.json")
    assert (settings["muted_types"], settings["email_digest"]) == (["LIKE"], False), settings
    [report] = table(archive, "reports.json")
    assert (report["id"], report["target_id"], report["note"], report["status"]) == (
        exported["report"]["id"], bob_post["id"], "looks like spam", "OPEN")
    assert "closed_by" not in report and "owner_id" not in report  # moderators and the reported are not hers
    assert table(archive, "moderation_actions.json") == []


# Tables that hold rows naming the user and are, on purpose, not in the archive: what each is.
NOT_IN_ARCHIVE = {
    "users": "profile.json and sessions.json come from accounts' own reads, not a kind's SELECT",
    "usernames": "the username, in profile.json", "emails": "the email, in profile.json",
    "refresh_tokens": "sessions.json (the devices signed in, never the tokens)",
    "exports": "the export job itself",
    "members": "graph's copy of who exists and is private: in profile.json",
    "blocked_by": "the blocked side of blocks.json",
    "media_attachments": "which post uses which media: in posts.json",
    "media_variants": "derived images of media.json's items", "uploads": "upload sessions, finished or expired",
    "post_counts": "counts, in profile.json", "counter_flushes": "counter bookkeeping",
    "conversations": "the conversation's own row: conversations.json has her membership",
    "user_conversations": "the inbox's index of conversations.json",
    "direct_conversations": "the pair index of conversations.json",
    "notifications": "what others did, told to me: derived from their actions",
    "notification_groups": "notifications' grouping", "notification_digests": "e-mail digests sent",
    "moderation_reports": "reports others filed on her things: theirs (hers are in reports.json)",
    "presence": "last seen, kept minutes", "user_classes": "realtime's activity class",
    "user_class_history": "realtime's activity class history",
    "outbox": "events not relayed yet", "search_users": "search's copy of the profile",
    "search_posts": "search's copy of posts.json", "search_following": "search's copy of following.json",
    "search_followers": "search's copy of followers.json", "search_likes": "search's copy of likes.json",
    "search_popular": "search's ranking", "search_neighbors": "explore's model",
}


def test_every_table_naming_her_is_in_the_archive_or_said_why_not(exported, settings):
    """Table by table: each row naming her is an archive file's (a kind's SELECT names its table) or
    its table is in NOT_IN_ARCHIVE with what it is."""
    import re

    from services.accounts.owners import KINDS as ARCHIVE_KINDS
    from services.engagement.exports import KINDS as ENGAGEMENT
    from services.graph.exports import KINDS as GRAPH
    from services.media.exports import KINDS as MEDIA
    from services.messaging.exports import KINDS as MESSAGING
    from services.moderation.exports import KINDS as MODERATION
    from services.notifications.exports import KINDS as NOTIFICATIONS
    from services.posts.exports import KINDS as POSTS
    from services.stories.exports import KINDS as STORIES
    from tests.e2e.test_account_deletion_http import rows_naming

    owners = {"engagement": ENGAGEMENT, "graph": GRAPH, "media": MEDIA, "messaging": MESSAGING,
              "moderation": MODERATION, "notifications": NOTIFICATIONS, "posts": POSTS, "stories": STORIES}
    exported_tables = {table_name for owner, kind in ARCHIVE_KINDS
                       for table_name in re.findall(r"\{schema\}\.(\w+)", owners[owner][kind].sql)}
    assert {"mutes", "close_friends", "story_views", "devices", "notification_settings",
            "moderation_reports"} <= exported_tables
    naming = {found.split(".")[1] for found in rows_naming(settings, int(exported["alice"].id))}
    assert {"mutes", "follow_requests", "close_friends", "story_views", "devices"} <= naming
    assert sorted(naming - exported_tables - set(NOT_IN_ARCHIVE)) == []


def test_the_original_files_are_in_the_archive_byte_for_byte(exported):
    archive = exported["archive"]
    media = {m["id"]: m for m in table(archive, "media.json")}
    for media_id, item in media.items():
        assert f"media/{media_id}.{item['original_format']}" in archive.namelist()
    assert archive.read(f"media/{exported['media']['id']}.{media[exported['media']['id']]['original_format']}") \
        == exported["photo"]


def test_nothing_of_anyone_else_is_in_the_archive(exported):
    """Others' comments on her posts, the messages they sent her, their likes: theirs, not hers."""
    archive = exported["archive"]
    everything = b"".join(archive.read(n) for n in archive.namelist() if n.endswith(".json"))
    assert b"bob's comment" not in everything
    assert b"bob answers" not in everything
    assert exported["theirs"]["id"].encode() not in everything
    assert exported["received"]["id"].encode() not in everything
    assert exported["carol"].id.encode() not in everything
    assert f"media/{exported['bob_post']['media'][0]['id']}".encode() not in b" ".join(
        n.encode() for n in archive.namelist())


def test_another_user_cannot_see_the_job_or_reach_the_archive(exported, gateway):
    job, bob = exported["job"], exported["bob"]
    r = bob.get(f"/v1/users/me/exports/{job['id']}")
    assert r.status == 404, r.body
    assert r.json["details"][0]["reason"] == "EXPORT_NOT_FOUND"
    assert gateway.get(f"/v1/users/me/exports/{job['id']}").status == 401
    query = parse_qs(urlsplit(job["download_url"]).query)
    exp, sig = query["exp"][0], query["sig"][0]
    tampered = sig[:-2] + ("AA" if not sig.endswith("AA") else "BB")
    for path in (f"/v1/exports/{job['id']}/archive?exp={exp}&sig={tampered}",
                 f"/v1/exports/{job['id']}/archive?exp={int(exp) + 1}&sig={sig}",
                 f"/v1/exports/{job['id']}/archive",
                 f"/v1/exports/{int(job['id']) + 1}/archive?exp={exp}&sig={sig}"):
        r = gateway.get(path, token=bob.token)
        assert r.status == 404, (path, r.status, r.body[:200])
        assert b"PK" not in r.body[:2]


def test_an_expired_url_is_404(exported, gateway):
    job = exported["job"]
    sig = parse_qs(urlsplit(job["download_url"]).query)["sig"][0]
    r = gateway.get(f"/v1/exports/{job['id']}/archive?exp={int(time.time()) - 1}&sig={sig}")
    assert r.status == 404, r.body


def test_each_read_of_a_ready_job_signs_a_fresh_url_that_works(exported, gateway):
    alice = exported["alice"]
    job = ok(alice.get(f"/v1/users/me/exports/{exported['job']['id']}"))
    r = gateway.get(path_of(job["download_url"]))
    assert r.status == 200
    assert r.body == exported["response"].body


@pytest.mark.parametrize("path, field", [
    ("/v1/users/me/exports/abc", "export_id"),
    ("/v1/users/me/exports/-5", "export_id"),
])
def test_a_malformed_export_id_is_400_naming_it(exported, path, field):
    r = exported["alice"].get(path)
    assert r.status == 400, (r.status, r.body)
    assert field in r.body.decode()


def test_an_unknown_export_id_is_404(exported):
    assert exported["alice"].get("/v1/users/me/exports/123456789").status == 404


def test_a_malformed_expiry_is_400(exported, gateway):
    r = gateway.get(f"/v1/exports/{exported['job']['id']}/archive?exp=soon&sig=x")
    assert r.status == 400, (r.status, r.body)


def test_an_owners_export_method_pages_and_refuses_unknown_kinds(settings, exported):
    """posts' ExportUserData, called as accounts (its exporter's identity) over the mesh."""
    alice = exported["alice"]
    with service_channel(settings, "posts", "accounts", aio=False) as channel:
        stub = posts_service_pb2_grpc.PostsServiceStub(channel)
        pages, token = [], ""
        while True:
            reply = stub.ExportUserData(exports_pb2.ExportUserDataRequest(
                user_id=int(alice.id), kind="posts", page_size=1, page_token=token), timeout=30)
            pages.append(list(reply.records))
            token = reply.next_page_token
            if not token:
                break
        assert [json.loads(r)["id"] for page in pages for r in page] == [exported["post"]["id"]]
        with pytest.raises(grpc.RpcError) as error:
            stub.ExportUserData(exports_pb2.ExportUserDataRequest(user_id=int(alice.id), kind="passwords"),
                                timeout=30)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as error:
            stub.ExportUserData(exports_pb2.ExportUserDataRequest(user_id=int(alice.id), kind="posts",
                                                                  page_token="garbage"), timeout=30)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
