"""Reports and moderation through the gateway: reporting each kind of target, the moderators' queue,
hiding, suspending, dismissing, the audit log, and who may do what."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import uuid
from urllib.parse import quote

import pytest

from tests.e2e.conftest import waiter
from tests.e2e.media_files import small_jpeg

pytestmark = pytest.mark.e2e


def admin(*args: str) -> subprocess.CompletedProcess:
    """The admin command, against the test stack (its PICTOR_* settings are in the environment)."""
    return subprocess.run([sys.executable, "-m", "services.moderation.admin", *args], check=False,
                          capture_output=True, text=True, timeout=60, env=os.environ.copy())


@pytest.fixture
def moderator(new_user):
    user = new_user()
    done = admin("grant", user.username)
    assert done.returncode == 0, done.stderr
    return user


@pytest.fixture
def applied(stack):
    """Wait until every owner's consumer has applied every moderation event written so far."""
    from services.accounts.moderation import GROUP as ACCOUNTS
    from services.engagement.moderation import GROUP as COMMENTS
    from services.messaging.moderation import GROUP as MESSAGES
    from services.posts.moderation import GROUP as POSTS
    from services.stories.moderation import GROUP as STORIES

    groups = (POSTS, ACCOUNTS, COMMENTS, STORIES, MESSAGES, "feed-fanout", "search-indexer")
    waits = [waiter(stack, group, ["moderation"], group) for group in groups]

    def wait(timeout_s: float = 15.0) -> None:
        for _, one in waits:
            one(timeout_s)

    yield wait
    for client, _ in waits:
        client.close()


def post(user, caption: str = "") -> str:
    media_id = user.upload(small_jpeg(), "image/jpeg").json["id"]
    r = user.post("/v1/posts", {"media_ids": [media_id], "caption": caption})
    assert r.status == 200, r.body
    return r.json["id"]


def report(user, target_type: str, target_id: str, reason: str = "REASON_SPAM"):
    return user.post("/v1/reports", {"target_type": target_type, "target_id": target_id, "reason": reason})


def every_page(user, path: str, items: str, page_size: int) -> list[dict]:
    """Every item of a listing, page by page."""
    found, token = [], ""
    for _ in range(200):
        r = user.get(f"{path}?page_size={page_size}&page_token={quote(token)}")
        assert r.status == 200, r.body
        found += r.json.get(items, [])
        token = r.json.get("next_page_token", "")
        if not token:
            return found
    raise AssertionError(f"{path} never ended")


def queue(user, page_size: int = 100) -> list[dict]:
    return every_page(user, "/v1/moderation/reports", "targets", page_size)


def act(user, target_type: str, target_id: str, action: str, note: str = ""):
    return user.post("/v1/moderation/actions", {"target_type": target_type, "target_id": target_id,
                                                "action": action, "note": note})


def follow(a, b) -> None:
    assert a.post(f"/v1/users/{b.id}/follow").status == 200


def feed_ids(user) -> list[str]:
    r = user.get("/v1/feed?mode=CHRONOLOGICAL&page_size=50")
    assert r.status == 200, r.body
    return [p["id"] for p in r.json.get("posts", [])]


def eventually(check, timeout_s: float = 15.0):
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


# --- reports -----------------------------------------------------------------------------------


def test_a_post_report_is_open_and_a_repeat_answers_the_same_report(new_user):
    author, reporter = new_user(), new_user()
    post_id = post(author)
    first = report(reporter, "TARGET_TYPE_POST", post_id)
    assert first.status == 200, first.body
    assert first.json["status"] == "OPEN" and first.json["target_id"] == post_id
    again = report(reporter, "TARGET_TYPE_POST", post_id, "REASON_NUDITY")
    assert again.status == 200 and again.json["id"] == first.json["id"]


def test_an_account_report_is_taken_and_my_own_account_is_400(new_user):
    target, reporter = new_user(), new_user()
    assert report(reporter, "TARGET_TYPE_ACCOUNT", target.id).status == 200
    mine = report(reporter, "TARGET_TYPE_ACCOUNT", reporter.id)
    assert mine.status == 400 and mine.json["details"][0]["reason"] == "CANNOT_REPORT_SELF"


def test_a_target_the_reporter_cannot_see_is_404(new_user):
    owner, stranger = new_user(private=True), new_user()
    private_post = post(owner)
    r = report(stranger, "TARGET_TYPE_POST", private_post)
    assert r.status == 404 and r.json["details"][0]["reason"] == "TARGET_NOT_FOUND"
    assert owner.post(f"/v1/users/{stranger.id}/block").status == 200
    blocked = report(stranger, "TARGET_TYPE_ACCOUNT", owner.id)
    assert blocked.status == 404, blocked.body


def test_reporting_needs_a_signed_in_caller(gateway, new_user):
    post_id = post(new_user())
    r = gateway.post("/v1/reports", {"target_type": "TARGET_TYPE_POST", "target_id": post_id,
                                     "reason": "REASON_SPAM"})
    assert r.status == 401


def comment(user, post_id: str) -> str:
    r = user.post(f"/v1/posts/{post_id}/comments", {"text": "a comment"})
    assert r.status == 200, r.body
    return r.json["id"]


def comment_ids(user, post_id: str) -> list[str]:
    r = user.get(f"/v1/posts/{post_id}/comments")
    assert r.status == 200, r.body
    return [c["id"] for c in r.json.get("comments", [])]


def story(user) -> str:
    media_id = user.upload(small_jpeg(), "image/jpeg").json["id"]
    r = user.post("/v1/stories", {"media_id": media_id})
    assert r.status == 200, r.body
    return r.json["id"]


def story_ids(viewer, author) -> list[str]:
    r = viewer.get(f"/v1/users/{author.id}/stories")
    assert r.status == 200, r.body
    return [s["id"] for s in r.json.get("stories", [])]


def message(sender, *others) -> tuple[str, str]:
    """(conversation id, message id): a conversation of the sender with the others, and a message in it."""
    r = sender.post("/v1/conversations", {"member_ids": [o.id for o in others]})
    assert r.status == 200, r.body
    conversation_id = r.json["id"]
    sent = sender.post(f"/v1/conversations/{conversation_id}/messages",
                       {"client_message_id": uuid.uuid4().hex, "text": "hello"})
    assert sent.status == 200, sent.body
    return conversation_id, sent.json["id"]


def message_ids(user, conversation_id: str) -> list[str]:
    r = user.get(f"/v1/conversations/{conversation_id}/messages")
    assert r.status == 200, r.body
    return [m["id"] for m in r.json.get("messages", [])]


def test_a_comment_is_reported_by_whoever_sees_it_and_is_404_across_a_block(new_user):
    author, commenter, blocked = new_user(), new_user(), new_user()
    post_id = post(author)
    comment_id = comment(commenter, post_id)
    assert report(author, "TARGET_TYPE_COMMENT", comment_id).status == 200
    assert commenter.post(f"/v1/users/{blocked.id}/block").status == 200
    assert report(blocked, "TARGET_TYPE_COMMENT", comment_id).status == 404


def test_a_story_is_reported_by_whoever_sees_it_and_is_404_to_a_blocked_user(new_user):
    author, viewer, blocked = new_user(), new_user(), new_user()
    story_id = story(author)
    assert report(viewer, "TARGET_TYPE_STORY", story_id).status == 200
    assert author.post(f"/v1/users/{blocked.id}/block").status == 200
    assert report(blocked, "TARGET_TYPE_STORY", story_id).status == 404


def test_a_message_is_reported_only_by_a_member_of_its_conversation(new_user):
    sender, recipient, outsider = new_user(), new_user(), new_user()
    follow(sender, recipient)
    follow(recipient, sender)
    _, message_id = message(sender, recipient)
    assert report(recipient, "TARGET_TYPE_MESSAGE", message_id, "REASON_HARASSMENT").status == 200
    r = report(outsider, "TARGET_TYPE_MESSAGE", message_id)
    assert r.status == 404 and r.json["details"][0]["reason"] == "TARGET_NOT_FOUND"


# --- who may moderate --------------------------------------------------------------------------


@pytest.mark.parametrize("method,path", [
    ("GET", "/v1/moderation/reports"),
    ("GET", "/v1/moderation/audit"),
    ("POST", "/v1/moderation/actions"),
])
def test_moderation_routes_refuse_a_user_who_is_not_a_moderator(new_user, method, path):
    user = new_user()
    body = {"target_type": "TARGET_TYPE_POST", "target_id": "1", "action": "ACTION_DISMISS"}
    r = user.gateway.request(method, path, body if method == "POST" else None, token=user.token)
    assert r.status == 403, r.body
    assert r.json["details"][0]["reason"] == "NOT_A_MODERATOR"


def test_a_revoked_moderator_is_refused_again(moderator):
    assert moderator.get("/v1/moderation/reports").status == 200
    assert admin("revoke", moderator.username).returncode == 0
    assert moderator.get("/v1/moderation/reports").status == 403


def test_the_admin_command_refuses_an_unknown_username():
    done = admin("grant", "nobody_by_this_name_at_all")
    assert done.returncode == 1 and "no user named" in done.stderr


# --- the queue ---------------------------------------------------------------------------------


def test_the_queue_groups_open_reports_per_target_oldest_first_with_counts(new_user, moderator):
    author = new_user()
    older, newer = post(author), post(author)
    reporters = [new_user() for _ in range(3)]
    assert report(reporters[0], "TARGET_TYPE_POST", older).status == 200
    assert report(reporters[0], "TARGET_TYPE_POST", newer).status == 200
    assert report(reporters[1], "TARGET_TYPE_POST", older, "REASON_HATE").status == 200
    assert report(reporters[2], "TARGET_TYPE_POST", older, "REASON_HATE").status == 200
    mine = [t for t in queue(moderator) if t["target_id"] in (older, newer)]
    assert [t["target_id"] for t in mine] == [older, newer]
    assert mine[0]["report_count"] == 3 and mine[0]["owner_id"] == author.id
    assert mine[0]["reasons"] == {"REASON_SPAM": 1, "REASON_HATE": 2}
    assert mine[1]["report_count"] == 1


def test_the_queue_pages_with_tokens_and_never_repeats_or_skips(new_user, moderator):
    author, reporter = new_user(), new_user()
    posts = [post(author) for _ in range(5)]
    for post_id in posts:
        assert report(reporter, "TARGET_TYPE_POST", post_id).status == 200
    whole = [t["target_id"] for t in queue(moderator, page_size=100)]
    paged = [t["target_id"] for t in queue(moderator, page_size=2)]
    assert paged == whole
    assert [p for p in paged if p in posts] == posts


# --- actions -----------------------------------------------------------------------------------


def test_a_hidden_post_is_404_to_others_out_of_feed_and_search_but_seen_by_author_and_moderator(
        new_user, moderator, applied):
    author, follower, reporter = new_user(), new_user(), new_user()
    follow(follower, author)
    follow(reporter, author)
    secret = "q" + "".join(secrets.choice("bcdfghjklmnprstvwz") for _ in range(8))
    post_id = post(author, f"look {secret}")
    applied()
    assert eventually(lambda: post_id in feed_ids(follower))

    def found() -> list[str]:
        return [p["id"] for p in follower.get(f"/v1/search?q={secret}&type=POSTS").json.get("posts", [])]

    assert eventually(lambda: post_id in found())
    assert report(reporter, "TARGET_TYPE_POST", post_id).status == 200

    done = act(moderator, "TARGET_TYPE_POST", post_id, "ACTION_HIDE", "spam link")
    assert done.status == 200, done.body
    assert done.json["action"] == "ACTION_HIDE" and done.json["reports_closed"] == 1
    applied()

    assert follower.get(f"/v1/posts/{post_id}").status == 404
    assert reporter.get(f"/v1/posts/{post_id}").status == 404
    assert post_id not in feed_ids(follower)
    assert post_id not in found()
    assert author.get(f"/v1/posts/{post_id}").status == 200
    assert moderator.get(f"/v1/posts/{post_id}").status == 200
    assert post_id not in [t["target_id"] for t in queue(moderator)]


def test_a_suspended_account_cannot_sign_in_or_refresh_and_its_posts_are_hidden(
        gateway, new_account, new_user, moderator, applied):
    from tests.e2e.http import UserClient

    session = new_account()
    target, viewer = UserClient(gateway, session), new_user()
    post_id = post(target)
    assert report(viewer, "TARGET_TYPE_ACCOUNT", target.id, "REASON_IMPERSONATION").status == 200
    done = act(moderator, "TARGET_TYPE_ACCOUNT", target.id, "ACTION_SUSPEND")
    assert done.status == 200, done.body
    applied()

    signed_in = gateway.post("/v1/sessions", {"username": target.username, "password": "correct horse"})
    assert signed_in.status == 403, signed_in.body
    assert signed_in.json["details"][0]["reason"] == "ACCOUNT_SUSPENDED"
    refreshed = gateway.post("/v1/sessions:refresh", {"refresh_token": session["refresh_token"]})
    assert refreshed.status == 403 and refreshed.json["details"][0]["reason"] == "ACCOUNT_SUSPENDED"
    wrong = gateway.post("/v1/sessions", {"username": target.username, "password": "wrong horse"})
    assert wrong.status == 401  # a guesser learns nothing
    assert viewer.get(f"/v1/posts/{post_id}").status == 404
    assert viewer.get(f"/v1/users/{target.id}").status == 404
    assert moderator.get(f"/v1/posts/{post_id}").status == 200


def test_suspending_the_author_of_a_reported_post_hides_their_posts(new_user, moderator, applied):
    author, reporter = new_user(), new_user()
    reported, other = post(author), post(author)
    assert report(reporter, "TARGET_TYPE_POST", reported).status == 200
    done = act(moderator, "TARGET_TYPE_POST", reported, "ACTION_SUSPEND")
    assert done.status == 200 and done.json["owner_id"] == author.id
    applied()
    assert reporter.get(f"/v1/posts/{other}").status == 404


def test_a_dismissed_report_leaves_the_content_and_the_queue(new_user, moderator, applied):
    author, reporter = new_user(), new_user()
    post_id = post(author)
    assert report(reporter, "TARGET_TYPE_POST", post_id).status == 200
    done = act(moderator, "TARGET_TYPE_POST", post_id, "ACTION_DISMISS")
    assert done.status == 200 and done.json["reports_closed"] == 1
    applied()
    assert reporter.get(f"/v1/posts/{post_id}").status == 200
    assert post_id not in [t["target_id"] for t in queue(moderator)]
    again = act(moderator, "TARGET_TYPE_POST", post_id, "ACTION_DISMISS")
    assert again.status == 404 and again.json["details"][0]["reason"] == "REPORT_NOT_FOUND"
    # Reporting it again opens a new report.
    assert report(reporter, "TARGET_TYPE_POST", post_id).status == 200
    assert post_id in [t["target_id"] for t in queue(moderator)]


def test_every_action_and_grant_is_in_the_audit_log_newest_first(new_user, moderator):
    author, reporter = new_user(), new_user()
    hidden, dismissed = post(author), post(author)
    for post_id in (hidden, dismissed):
        assert report(reporter, "TARGET_TYPE_POST", post_id).status == 200
    assert act(moderator, "TARGET_TYPE_POST", hidden, "ACTION_HIDE", "why: spam").status == 200
    assert act(moderator, "TARGET_TYPE_POST", dismissed, "ACTION_DISMISS").status == 200
    entries = every_page(moderator, "/v1/moderation/audit", "entries", 2)
    ids = [int(e["id"]) for e in entries]
    assert ids == sorted(ids, reverse=True)
    mine = [(e["action"], e["target_id"]) for e in entries
            if e.get("actor_id") == moderator.id or e["target_id"] == moderator.id]
    assert mine[:3] == [("ACTION_DISMISS", dismissed), ("ACTION_HIDE", hidden),
                        ("ACTION_GRANT_MODERATOR", moderator.id)]
    hide = next(e for e in entries if e["target_id"] == hidden)
    assert hide["note"] == "why: spam" and hide["owner_id"] == author.id


def test_a_hidden_comment_story_and_message_are_gone_for_others_and_kept_for_their_authors(
        new_user, moderator, applied):
    author, other = new_user(), new_user()
    follow(author, other)
    follow(other, author)
    post_id = post(other)
    comment_id = comment(author, post_id)
    story_id = story(author)
    conversation_id, message_id = message(author, other)
    for target_type, target_id in (("TARGET_TYPE_COMMENT", comment_id), ("TARGET_TYPE_STORY", story_id),
                                   ("TARGET_TYPE_MESSAGE", message_id)):
        assert report(other, target_type, target_id).status == 200
        done = act(moderator, target_type, target_id, "ACTION_HIDE")
        assert done.status == 200, done.body
    applied()
    assert comment_id not in comment_ids(other, post_id)
    assert comment_id in comment_ids(author, post_id)
    assert story_id not in story_ids(other, author)
    assert story_id in story_ids(author, author)
    assert other.post(f"/v1/stories/{story_id}:view").status == 404
    assert message_id not in message_ids(other, conversation_id)
    assert message_id in message_ids(author, conversation_id)
