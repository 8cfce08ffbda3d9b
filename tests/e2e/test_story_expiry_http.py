"""Story expiry through the gateway, on a stack of its own with PICTOR_STORY_TTL of a few seconds: at
expires_at a story leaves the tray, the author's stories and views, and stays in the archive and in
highlights."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import pytest

from services.mesh.launcher import Stack
from tests.conftest import private_stack
from tests.e2e.http import sign_up_on
from tests.e2e.media_files import small_jpeg

pytestmark = pytest.mark.e2e

TTL_S = 6


@pytest.fixture(scope="module")
def expiry_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with private_stack(tmp_path_factory.mktemp("stories"), PICTOR_STORY_TTL=str(TTL_S)) as running:
        yield running


@pytest.fixture(scope="module")
def new_user(expiry_stack: Stack):
    return sign_up_on(expiry_stack.settings.gateway_port, "s")


def post_story(user) -> dict:
    media_id = user.upload(small_jpeg(), "image/jpeg").json["id"]
    r = user.post("/v1/stories", {"media_id": media_id})
    assert r.status == 200, r.body
    return r.json


def wait_until_expired(story: dict) -> None:
    """Until the story's expires_at has passed, by this machine's clock (the services')."""
    left = datetime.fromisoformat(story["expires_at"]).timestamp() - time.time()
    if left > 0:
        time.sleep(left + 0.05)


def stories_of(viewer, author) -> list[str]:
    r = viewer.get(f"/v1/users/{author.id}/stories")
    assert r.status == 200, r.body
    return [s["id"] for s in r.json["stories"]]


def tray_ids(user) -> list[str]:
    return [e["user"]["id"] for e in user.get("/v1/stories/tray").json["entries"]]


def test_a_story_is_gone_from_tray_stories_and_views_at_expires_at(new_user):
    author, fan = new_user(), new_user()
    assert fan.post(f"/v1/users/{author.id}/follow").status == 200
    story = post_story(author)
    assert (tray_ids(fan), stories_of(fan, author)) == ([author.id], [story["id"]])
    wait_until_expired(story)
    assert tray_ids(fan) == []
    assert tray_ids(author) == []
    assert stories_of(fan, author) == []
    assert stories_of(author, author) == []
    assert fan.post(f"/v1/stories/{story['id']}:view", {}).status == 404
    assert fan.post(f"/v1/stories/{story['id']}/reactions", {"emoji": "🔥"}).status == 404


def test_an_expired_story_stays_in_its_authors_archive_newest_first_in_pages(new_user):
    author, other = new_user(), new_user()
    stories = [post_story(author) for _ in range(3)]
    archived = author.get("/v1/stories/archive").json["stories"]
    answered = time.time()
    # What was still active when the answer came is not archived (on a starved machine the first
    # stories may have expired while the last were posted).
    still_active = {s["id"] for s in stories if datetime.fromisoformat(s["expires_at"]).timestamp() > answered}
    assert still_active and still_active.isdisjoint(s["id"] for s in archived)
    wait_until_expired(stories[-1])
    first = author.get("/v1/stories/archive?page_size=2").json
    rest = author.get(f"/v1/stories/archive?page_size=2&page_token={first['next_page_token']}").json
    assert [s["id"] for s in first["stories"] + rest["stories"]] == [s["id"] for s in reversed(stories)]
    assert other.get("/v1/stories/archive").json["stories"] == []


def test_an_expired_story_stays_in_highlights(new_user):
    author, fan = new_user(), new_user()
    story = post_story(author)
    h = author.post("/v1/highlights", {"title": "kept", "story_ids": [story["id"]]}).json
    wait_until_expired(story)
    r = fan.get(f"/v1/highlights/{h['id']}")
    assert r.status == 200 and [s["id"] for s in r.json["stories"]] == [story["id"]]


def test_the_author_still_reads_the_viewers_of_an_expired_story(new_user):
    author, fan = new_user(), new_user()
    story = post_story(author)
    assert fan.post(f"/v1/stories/{story['id']}:view", {}).status == 200
    wait_until_expired(story)
    r = author.get(f"/v1/stories/{story['id']}/viewers")
    assert r.status == 200 and [v["user"]["id"] for v in r.json["viewers"]] == [fan.id]
