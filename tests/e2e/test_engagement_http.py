"""Likes, comments and saves through the gateway, and the counts and flags they leave on posts."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from services.common.config import REPO_ROOT
from services.common.db import shard_schema
from services.common.dependencies import sync_redis
from services.common.events import decode
from services.common.ids import shard_of
from services.common.mesh_tls import gateway_channel
from services.engagement.bench import Client, seed_users
from services.feed.keys import affinity_key, features_key
from tests.e2e.http import eventually
from tests.e2e.media_files import small_jpeg

pytestmark = pytest.mark.e2e

COMMENT_FIELDS = {"id", "post_id", "author", "text", "parent_comment_id", "reply_count", "mentions", "created_at"}


def create_post(user, caption: str = "") -> str:
    media_id = user.upload(small_jpeg(), "image/jpeg").json["id"]
    r = user.post("/v1/posts", {"media_ids": [media_id], "caption": caption})
    assert r.status == 200, r.body
    return r.json["id"]


def comment(user, post_id: str, text: str = "nice", parent: str | None = None) -> dict:
    body = {"text": text, **({"parent_comment_id": parent} if parent else {})}
    r = user.post(f"/v1/posts/{post_id}/comments", body)
    assert r.status == 200, r.body
    return r.json


def post_field(user, post_id: str, name: str):
    return user.get(f"/v1/posts/{post_id}").json[name]


def ids(items: list[dict]) -> list[str]:
    return [i["id"] for i in items]


# --- likes ------------------------------------------------------------------------------


def test_like_and_unlike_answer_the_state_and_count(new_user):
    author, fan = new_user(), new_user()
    post = create_post(author)
    assert fan.post(f"/v1/posts/{post}/like").json == {"liked": True, "like_count": "1"}
    assert fan.delete(f"/v1/posts/{post}/like").json == {"liked": False, "like_count": "0"}


def test_liking_twice_is_one_like(new_user):
    author, fan = new_user(), new_user()
    post = create_post(author)
    fan.post(f"/v1/posts/{post}/like")
    assert fan.post(f"/v1/posts/{post}/like").json["like_count"] == "1"
    assert ids(fan.get(f"/v1/posts/{post}/likes").json["users"]) == [fan.id]


def test_like_count_on_the_post_catches_up_within_a_second(new_user):
    author = new_user()
    post = create_post(author)
    for fan in (new_user(), new_user(), author):
        fan.post(f"/v1/posts/{post}/like")
    eventually(lambda: post_field(author, post, "like_count"), "3", timeout_s=1.5)


def test_liked_by_me_is_right_at_once_only_for_the_liker(new_user):
    author, fan = new_user(), new_user()
    post = create_post(author)
    fan.post(f"/v1/posts/{post}/like")
    assert post_field(fan, post, "liked_by_me") is True
    assert post_field(author, post, "liked_by_me") is False


def test_liked_by_me_shows_in_the_authors_grid(new_user):
    author, fan = new_user(), new_user()
    post = create_post(author)
    fan.post(f"/v1/posts/{post}/like")
    grid = fan.get(f"/v1/users/{author.id}/posts").json["posts"]
    assert [(p["id"], p["liked_by_me"]) for p in grid] == [(post, True)]


def test_likes_need_a_token(gateway, new_user):
    post = create_post(new_user())
    assert gateway.post(f"/v1/posts/{post}/like").status == 401


def test_invisible_posts_answer_like_posts_that_do_not_exist(new_user):
    owner, stranger, blocked, author = new_user(private=True), new_user(), new_user(), new_user()
    private_post, blocking_post, deleted_post = create_post(owner), create_post(author), create_post(author)
    author.post(f"/v1/users/{blocked.id}/block")
    author.delete(f"/v1/posts/{deleted_post}")
    missing = stranger.post("/v1/posts/424242/like")
    assert missing.status == 404
    for user, post in ((stranger, private_post), (blocked, blocking_post), (stranger, deleted_post)):
        for r in (user.post(f"/v1/posts/{post}/like"), user.post(f"/v1/posts/{post}/comments", {"text": "hi"}),
                  user.post(f"/v1/posts/{post}/save"), user.get(f"/v1/posts/{post}/likes"),
                  user.get(f"/v1/posts/{post}/comments")):
            assert r.status == 404, r.body
            assert r.json["details"][0]["reason"] == missing.json["details"][0]["reason"] == "POST_NOT_FOUND"


def test_an_approved_follower_may_like_a_private_post(new_user):
    owner, fan = new_user(private=True), new_user()
    post = create_post(owner)
    fan.post(f"/v1/users/{owner.id}/follow")
    owner.post(f"/v1/follow-requests/{fan.id}:approve")
    assert fan.post(f"/v1/posts/{post}/like").status == 200


def test_likers_are_newest_first_and_paged(new_user):
    author = new_user()
    post = create_post(author)
    fans = [new_user() for _ in range(3)]
    for fan in fans:
        fan.post(f"/v1/posts/{post}/like")
    first = author.get(f"/v1/posts/{post}/likes?page_size=2").json
    second = author.get(f"/v1/posts/{post}/likes?page_size=2&page_token={first['next_page_token']}").json
    assert ids(first["users"] + second["users"]) == [f.id for f in reversed(fans)]
    assert second["next_page_token"] == ""
    assert first["users"][0]["username"] == fans[-1].username


@pytest.mark.parametrize("query", ["page_size=-1", "page_token=bogus"])
def test_bad_list_parameters_are_400(new_user, query):
    author = new_user()
    post = create_post(author)
    r = author.get(f"/v1/posts/{post}/likes?{query}")
    assert r.status == 400 and r.json["details"][0]["metadata"]["field"] == query.split("=")[0]


# --- comments ---------------------------------------------------------------------------


def test_a_comment_has_the_contract_shape(new_user):
    author, fan = new_user(), new_user()
    post = create_post(author)
    made = comment(fan, post, "  love it @Ada!  ")
    assert set(made) == COMMENT_FIELDS
    assert made["post_id"] == post and made["text"] == "love it @Ada!" and made["mentions"] == ["ada"]
    assert made["author"] == {"id": fan.id, "username": fan.username,
                              "display_name": fan.session["user"]["display_name"], "avatar_url": ""}
    assert made["parent_comment_id"] == "0" and made["reply_count"] == "0"


@pytest.mark.parametrize("body, reason", [
    ({"text": ""}, "INVALID_ARGUMENT"),
    ({"text": "x" * 2201}, "INVALID_ARGUMENT"),
    ({"text": "hi", "parent_comment_id": "424242"}, "PARENT_NOT_FOUND"),
])
def test_bad_comments_are_400_naming_the_field(new_user, body, reason):
    author = new_user()
    post = create_post(author)
    r = author.post(f"/v1/posts/{post}/comments", body)
    assert r.status == 400, r.body
    detail = r.json["details"][0]
    assert detail["reason"] == reason and detail["metadata"]["field"] == ("parent_comment_id" if "parent_comment_id"
                                                                          in body else "text")


def test_a_reply_to_a_reply_is_400(new_user):
    author = new_user()
    post = create_post(author)
    top = comment(author, post, "top")
    reply = comment(author, post, "reply", top["id"])
    r = author.post(f"/v1/posts/{post}/comments", {"text": "deeper", "parent_comment_id": reply["id"]})
    assert r.status == 400 and r.json["details"][0]["reason"] == "REPLY_TO_REPLY"


def test_comments_list_newest_first_by_default_and_oldest_when_asked(new_user):
    author = new_user()
    post = create_post(author)
    made = [comment(author, post, f"c{i}")["id"] for i in range(3)]
    assert ids(author.get(f"/v1/posts/{post}/comments").json["comments"]) == made[::-1]
    assert ids(author.get(f"/v1/posts/{post}/comments?order=NEWEST").json["comments"]) == made[::-1]
    assert ids(author.get(f"/v1/posts/{post}/comments?order=OLDEST").json["comments"]) == made


def test_comment_pages_never_repeat_or_skip(new_user):
    author = new_user()
    post = create_post(author)
    made = [comment(author, post, f"c{i}")["id"] for i in range(5)]
    seen, token = [], ""
    while True:
        page = author.get(f"/v1/posts/{post}/comments?order=OLDEST&page_size=2&page_token={token}").json
        seen += ids(page["comments"])
        token = page["next_page_token"]
        if not token:
            break
    assert seen == made


def test_top_level_comments_carry_their_reply_counts_and_replies_list_apart(new_user):
    author, fan = new_user(), new_user()
    post = create_post(author)
    top = comment(author, post, "top")
    replies = [comment(fan, post, f"re {i}", top["id"])["id"] for i in range(2)]
    listed = author.get(f"/v1/posts/{post}/comments").json["comments"]
    assert ids(listed) == [top["id"]] and listed[0]["reply_count"] == "2"
    r = author.get(f"/v1/comments/{top['id']}/replies")
    assert ids(r.json["comments"]) == replies
    assert {c["parent_comment_id"] for c in r.json["comments"]} == {top["id"]}


def test_deleting_a_comment_takes_its_replies_and_their_count(new_user):
    author, fan = new_user(), new_user()
    post = create_post(author)
    top = comment(fan, post, "top")
    comment(author, post, "reply", top["id"])
    kept = comment(author, post, "kept")
    eventually(lambda: post_field(author, post, "comment_count"), "3")
    assert fan.delete(f"/v1/comments/{top['id']}").json == {}
    assert ids(author.get(f"/v1/posts/{post}/comments").json["comments"]) == [kept["id"]]
    assert author.get(f"/v1/comments/{top['id']}/replies").status == 404
    eventually(lambda: post_field(author, post, "comment_count"), "1")


def test_the_post_author_may_delete_any_comment_and_a_stranger_none(new_user):
    author, fan, stranger = new_user(), new_user(), new_user()
    post = create_post(author)
    first, second = comment(fan, post, "one"), comment(fan, post, "two")
    assert stranger.delete(f"/v1/comments/{first['id']}").status == 403
    assert author.delete(f"/v1/comments/{first['id']}").status == 200
    assert fan.delete(f"/v1/comments/{second['id']}").status == 200
    assert author.get(f"/v1/posts/{post}/comments").json["comments"] == []


def test_deleting_a_deleted_comment_is_404(new_user):
    author = new_user()
    made = comment(author, create_post(author))
    author.delete(f"/v1/comments/{made['id']}")
    assert author.delete(f"/v1/comments/{made['id']}").status == 404


# --- saves ------------------------------------------------------------------------------


def test_save_and_unsave_answer_the_state(new_user):
    author, fan = new_user(), new_user()
    post = create_post(author)
    assert fan.post(f"/v1/posts/{post}/save").json == {"saved": True}
    assert fan.post(f"/v1/posts/{post}/save").json == {"saved": True}
    assert fan.delete(f"/v1/posts/{post}/save").json == {"saved": False}
    assert fan.get("/v1/users/me/saved").json == {"posts": [], "next_page_token": ""}


def test_saved_posts_are_newest_saved_first_paged_and_flagged(new_user):
    author, fan = new_user(), new_user()
    posts = [create_post(author, f"p{i}") for i in range(3)]
    for post in (posts[1], posts[0], posts[2]):
        fan.post(f"/v1/posts/{post}/save")
    first = fan.get("/v1/users/me/saved?page_size=2").json
    second = fan.get(f"/v1/users/me/saved?page_size=2&page_token={first['next_page_token']}").json
    assert ids(first["posts"] + second["posts"]) == [posts[2], posts[0], posts[1]]
    assert all(p["saved_by_me"] for p in first["posts"] + second["posts"])


def test_nobody_else_sees_my_saved_posts(gateway, new_user):
    author, fan, other = new_user(), new_user(), new_user()
    fan.post(f"/v1/posts/{create_post(author)}/save")
    assert other.get("/v1/users/me/saved").json["posts"] == []
    assert gateway.get("/v1/users/me/saved").status == 401


@pytest.mark.parametrize("query", ["page_token=garbage", "page_size=-1"], ids=["bad-token", "negative-size"])
def test_a_bad_saved_posts_page_is_400_naming_the_field(new_user, query):
    r = new_user().get(f"/v1/users/me/saved?{query}")
    assert r.status == 400, r.body
    assert r.json["details"][0]["metadata"]["field"] == query.split("=")[0]


def test_saved_posts_leave_out_posts_deleted_since(new_user):
    author, fan = new_user(), new_user()
    post = create_post(author)
    fan.post(f"/v1/posts/{post}/save")
    author.delete(f"/v1/posts/{post}")
    assert fan.get("/v1/users/me/saved").json["posts"] == []


def test_saved_by_me_is_right_at_once_only_for_the_saver(new_user):
    author, fan = new_user(), new_user()
    post = create_post(author)
    fan.post(f"/v1/posts/{post}/save")
    assert post_field(fan, post, "saved_by_me") is True
    assert post_field(author, post, "saved_by_me") is False


# --- the feed, its ranker's signals, events --------------------------------------------


def test_feed_posts_carry_liked_and_saved_by_me(new_user, settle):
    author, fan = new_user(), new_user()
    fan.post(f"/v1/users/{author.id}/follow")
    fan.get("/v1/feed")
    liked, saved = create_post(author, "liked"), create_post(author, "saved")
    settle()
    fan.post(f"/v1/posts/{liked}/like")
    fan.post(f"/v1/posts/{saved}/save")
    flags = {p["id"]: (p["liked_by_me"], p["saved_by_me"]) for p in fan.get("/v1/feed?mode=CHRONOLOGICAL").json["posts"]}
    assert flags == {liked: (True, False), saved: (False, True)}


def test_likes_and_comments_reach_the_feeds_own_ranking_features(stack, new_user, settle):
    client = sync_redis(stack.settings.redis_url)
    author, fan = new_user(), new_user()
    post = create_post(author)
    fan.post(f"/v1/posts/{post}/like")
    comment(fan, post)
    settle()  # the feed's worker counts them from engagement's events
    assert client.get(features_key(int(post))) == b"1:1"
    assert float(client.hget(affinity_key(int(fan.id)), author.id)) == pytest.approx(0.2)
    client.close()


def test_likes_and_comments_publish_engagement_events(stack, new_user):
    client = sync_redis(stack.settings.redis_url)
    author, fan = new_user(), new_user()
    post = create_post(author)
    fan.post(f"/v1/posts/{post}/like")
    made = comment(fan, post, "hi @someone")
    fan.delete(f"/v1/posts/{post}/like")


    def last_three() -> list[tuple[str, dict]]:
        return [(e.type, e.data) for e in (decode("engagement", i, f)
                                           for i, f in client.xrevrange("events:engagement", count=3)[::-1])]

    eventually(last_three, [
        ("like", {"post_id": int(post), "user_id": int(fan.id), "author_id": int(author.id)}),
        ("comment", {"post_id": int(post), "user_id": int(fan.id), "author_id": int(author.id),
                     "comment_id": int(made["id"]), "parent_comment_id": 0, "mentions": ["someone"],
                     "parent_author_id": 0}),
        ("unlike", {"post_id": int(post), "user_id": int(fan.id), "author_id": int(author.id)}),
    ])
    client.close()


def test_mesh_only_post_states_are_refused_at_the_gateway(settings):
    import grpc
    from pictor.engagement.v1 import engagement_service_pb2 as pb
    from pictor.engagement.v1 import engagement_service_pb2_grpc

    with gateway_channel(settings, aio=False) as channel:
        stub = engagement_service_pb2_grpc.EngagementServiceStub(channel)
        with pytest.raises(grpc.RpcError):
            stub.GetPostStates(pb.GetPostStatesRequest(viewer_id=1, post_ids=[1]), timeout=5)


# --- counts under load, and their repair -----------------------------------------------


def like_rows(settings, post_id: str) -> tuple[int, int]:
    """(rows in likes, like_count in post_counts) straight from the post's shard."""
    shard = shard_of(int(post_id))
    with psycopg.connect(settings.database_for_shard(shard)) as conn:
        rows = conn.execute(f"SELECT count(*) FROM {shard_schema(shard)}.likes WHERE post_id = %s",
                            (int(post_id),)).fetchone()[0]
        count = conn.execute(f"SELECT like_count FROM {shard_schema(shard)}.post_counts WHERE post_id = %s",
                             (int(post_id),)).fetchone()
    return rows, count[0] if count else 0


def test_reconcile_command_repairs_corrupted_counts(stack, new_user):
    author, fan = new_user(), new_user()
    post = create_post(author)
    shard = shard_of(int(post))
    # The like's row and a wrong count, straight in the shard: no event, so no recheck of the
    # counters worker races the command to the repair.
    with psycopg.connect(stack.settings.database_for_shard(shard)) as conn:
        conn.execute(f"INSERT INTO {shard_schema(shard)}.likes (post_id, user_id) VALUES (%s, %s)",
                     (int(post), int(fan.id)))
        conn.execute(f"INSERT INTO {shard_schema(shard)}.post_counts (post_id, like_count) VALUES (%s, 500)",
                     (int(post),))
    result = subprocess.run([sys.executable, "-m", "services.engagement.reconcile", post], env=stack.env,
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"posts_checked": 1, "posts_repaired": 1}
    assert like_rows(stack.settings, post) == (1, 1) and post_field(fan, post, "like_count") == "1"


def test_a_like_whose_delta_never_reached_redis_is_counted_within_seconds(stack, new_user):
    """What a crash of engagement between the like's commit and its Redis delta leaves: the row and its
    event (written together), no delta. The worker's recheck, scheduled from the event, repairs it."""
    import asyncio

    from services.common.db import Database
    from services.engagement.repository import PostgresEngagementRepository

    author, fan = new_user(), new_user()
    post = create_post(author)

    async def like_without_delta() -> None:
        db = Database(stack.settings, max_size=1)
        await db.open()
        try:
            assert await PostgresEngagementRepository(db).like(int(post), int(fan.id), int(author.id))
        finally:
            await db.close()

    asyncio.run(like_without_delta())
    assert post_field(author, post, "like_count") == "0"
    eventually(lambda: post_field(author, post, "like_count"), "1", timeout_s=10)
    assert like_rows(stack.settings, post) == (1, 1)


VIRAL_LIKERS, VIRAL_UNLIKERS = 2000, 300


def test_a_viral_post_counts_every_like_exactly(stack, new_user):
    """2,000 distinct users like one post at once through the gateway (300 take it back, 100 like twice)."""
    author = new_user()
    post = create_post(author)
    likers = seed_users(stack.settings, VIRAL_LIKERS, prefix="viral")
    unlikers = {u.id for u in likers[:VIRAL_UNLIKERS]}
    twice = {u.id for u in likers[-100:]}
    local = threading.local()

    def act(user) -> list[int]:
        if not hasattr(local, "client"):
            local.client = Client(stack.settings.gateway_port)
        methods = ["POST"] * (2 if user.id in twice else 1) + ["DELETE"] * (user.id in unlikers)
        return [local.client.call(m, f"/v1/posts/{post}/like", user.token, b"{}" if m == "POST" else None)[0]
                for m in methods]

    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = [s for result in pool.map(act, likers) for s in result]
    assert statuses.count(200) == len(statuses) == VIRAL_LIKERS + VIRAL_UNLIKERS + 100
    expected = VIRAL_LIKERS - VIRAL_UNLIKERS
    eventually(lambda: like_rows(stack.settings, post), (expected, expected), timeout_s=10)
    assert post_field(author, post, "like_count") == str(expected)
