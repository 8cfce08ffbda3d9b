"""The home feed through the gateway, checked against a brute-force answer from PostgreSQL.

The session's stack runs with PICTOR_FEED_CELEBRITY_THRESHOLD=3, so accounts
with 3+ followers are pulled at read time and the others are pushed.
"""

from __future__ import annotations

import random

import psycopg
import pytest

from services.common.db import shard_schema
from services.common.dependencies import sync_redis
from services.common.ids import shard_of
from tests.e2e.http import path_of
from tests.e2e.media_files import small_jpeg

pytestmark = pytest.mark.e2e


def read_feed(user, mode: str = "CHRONOLOGICAL", page_size: int = 5) -> list[str]:
    """Every post id of the user's feed, page by page."""
    seen, token = [], ""
    for _ in range(100):
        r = user.get(f"/v1/feed?mode={mode}&page_size={page_size}&page_token={token}")
        assert r.status == 200, r.body
        assert len(r.json["posts"]) <= page_size
        seen += [p["id"] for p in r.json["posts"]]
        token = r.json["next_page_token"]
        if not token:
            return seen
    raise AssertionError("feed never ended")


def brute_force_feed(settings, user_id: int) -> list[str]:
    """Posts of the accounts the user follows (approved) and their own, minus muted and blocked
    authors and deleted posts, newest first: straight from the tables, in whichever database the
    shard map puts each shard."""
    s = shard_schema(shard_of(user_id))
    with psycopg.connect(settings.database_for_shard(shard_of(user_id))) as conn:
        follows = {r[0] for r in conn.execute(f"SELECT target_id FROM {s}.following WHERE user_id = %s", (user_id,))}
        hidden = {r[0] for r in conn.execute(
            f"SELECT target_id FROM {s}.mutes WHERE user_id = %(u)s UNION SELECT target_id FROM {s}.blocks "
            f"WHERE user_id = %(u)s UNION SELECT blocker_id FROM {s}.blocked_by WHERE user_id = %(u)s",
            {"u": user_id})}
    posts = []
    for author in (follows | {user_id}) - hidden:
        with psycopg.connect(settings.database_for_shard(shard_of(author))) as conn:
            posts += [r[0] for r in conn.execute(
                f"SELECT id FROM {shard_schema(shard_of(author))}.posts WHERE author_id = %s AND deleted_at IS NULL",
                (author,))]
    return [str(p) for p in sorted(posts, reverse=True)]


def post(user, media_id: str, caption: str = "") -> str:
    r = user.post("/v1/posts", {"media_ids": [media_id], "caption": caption})
    assert r.status == 200, r.body
    return r.json["id"]


def test_every_users_feed_matches_brute_force_before_and_after_redis_is_flushed(stack, new_user, settle):
    rng = random.Random(7)
    users = [new_user(private=(i % 5 == 4)) for i in range(12)]
    media = {u.id: u.upload(small_jpeg(), "image/jpeg").json["id"] for u in users}
    # A skewed follow graph: the first accounts gather many followers (celebrities).
    for follower in users:
        for target in rng.sample(users, 5):
            if target is follower or rng.random() > 1 / (1 + users.index(target) * 0.4):
                continue
            if follower.post(f"/v1/users/{target.id}/follow").json["state"] == "REQUESTED":
                target.post(f"/v1/follow-requests/{follower.id}:approve")
    posts = [post(u, media[u.id], f"post {n}") for u in users for n in range(rng.randint(0, 3))]
    for victim in rng.sample(posts, 3):
        author = next(u for u in users if u.get(f"/v1/posts/{victim}").json.get("author", {}).get("id") == u.id)
        author.delete(f"/v1/posts/{victim}")
    users[1].post(f"/v1/users/{users[0].id}/mute")
    users[2].post(f"/v1/users/{users[3].id}/block")
    settle()
    for _ in range(2):
        for user in users:
            expected = brute_force_feed(stack.settings, int(user.id))
            assert read_feed(user) == expected, f"feed of user {users.index(user)}"
            assert sorted(read_feed(user, "RANKED")) == sorted(expected)
        sync_redis(stack.settings.redis_url).flushall()


def test_new_post_reaches_followers_and_the_author_at_once(new_user, settle):
    author, fan = new_user(), new_user()
    fan.post(f"/v1/users/{author.id}/follow")
    read_feed(fan)  # builds the fan's feed: an active user
    post_id = post(author, author.upload(small_jpeg(), "image/jpeg").json["id"])
    assert read_feed(author) == [post_id]  # no waiting for fan-out
    settle()
    assert read_feed(fan) == [post_id]


def test_an_author_who_became_a_celebrity_since_posting_is_pushed_at_a_rebuild_then_pulled(new_user, settle):
    """Whom a rebuild pushes is whom the pages do not pull: the authors the fan-out has not marked as
    celebrities at their last post, however many followers they have now (the threshold is 3)."""
    author, fans = new_user(), [new_user() for _ in range(3)]
    media = author.upload(small_jpeg(), "image/jpeg").json["id"]
    first = post(author, media, "before the followers")
    settle()  # marked not a celebrity: no followers then
    for fan in fans:
        fan.post(f"/v1/users/{author.id}/follow")
    settle()
    assert read_feed(fans[0]) == [first]  # a rebuild: pushed, though the author has 3 followers now
    second = post(author, media, "a celebrity now")
    settle()
    assert read_feed(fans[0]) == [second, first]  # the new one pulled from the timeline, none twice
    assert read_feed(fans[1]) == [second, first]  # built after the mark: both pulled


def test_unfollow_delete_block_and_mute_take_posts_out(new_user, settle):
    author, fan = new_user(), new_user()
    media_id = author.upload(small_jpeg(), "image/jpeg").json["id"]
    fan.post(f"/v1/users/{author.id}/follow")
    read_feed(fan)
    kept, deleted = post(author, media_id), post(author, media_id)
    settle()
    assert read_feed(fan) == [deleted, kept]
    author.delete(f"/v1/posts/{deleted}")
    settle()
    assert read_feed(fan) == [kept]
    fan.post(f"/v1/users/{author.id}/mute")
    settle()  # the feed learns of the mute from its event, as of the rest
    assert read_feed(fan) == []
    fan.delete(f"/v1/users/{author.id}/mute")
    settle()
    assert read_feed(fan) == [kept]
    fan.delete(f"/v1/users/{author.id}/follow")
    settle()
    assert read_feed(fan) == []
    fan.post(f"/v1/users/{author.id}/follow")
    settle()
    assert read_feed(fan) == [kept]
    author.post(f"/v1/users/{fan.id}/block")
    settle()
    assert read_feed(fan) == []


def test_private_posts_reach_only_approved_followers_and_approval_backfills(new_user, settle):
    owner, fan = new_user(private=True), new_user()
    earlier = post(owner, owner.upload(small_jpeg(), "image/jpeg").json["id"])
    fan.post(f"/v1/users/{owner.id}/follow")
    read_feed(fan)
    settle()
    assert read_feed(fan) == []
    owner.post(f"/v1/follow-requests/{fan.id}:approve")
    settle()
    assert read_feed(fan) == [earlier]


def test_pages_never_repeat_or_skip_while_new_posts_arrive(new_user, settle):
    author, fan = new_user(), new_user()
    media_id = author.upload(small_jpeg(), "image/jpeg").json["id"]
    fan.post(f"/v1/users/{author.id}/follow")
    read_feed(fan)
    made = [post(author, media_id) for _ in range(7)]
    settle()
    for mode in ("CHRONOLOGICAL", "RANKED"):
        first = fan.get(f"/v1/feed?mode={mode}&page_size=3")
        seen = [p["id"] for p in first.json["posts"]]
        newer = post(author, media_id)  # arrives mid-scroll
        settle()
        token = first.json["next_page_token"]
        while token:
            r = fan.get(f"/v1/feed?mode={mode}&page_size=3&page_token={token}")
            seen += [p["id"] for p in r.json["posts"]]
            token = r.json["next_page_token"]
        assert sorted(seen) == sorted(made) and len(seen) == len(set(seen)), mode
        made.append(newer)


def test_feed_posts_carry_the_full_post_shape_with_compact_media(new_user, settle):
    author, fan = new_user(), new_user()
    fan.post(f"/v1/users/{author.id}/follow")
    post_id = post(author, author.upload(small_jpeg(), "image/jpeg").json["id"], "hi #there")
    fan.post(f"/v1/posts/{post_id}/like")
    fan.post(f"/v1/posts/{post_id}/save")
    settle()
    item = fan.get("/v1/feed").json["posts"][0]
    assert item["author"]["id"] == author.id and item["hashtags"] == ["there"]
    assert (item["like_count"], item["liked_by_me"], item["saved_by_me"]) == ("1", True, True)
    # One signed template per media item in place of eight signed variant URLs: every size reachable.
    media = item["media"][0]
    assert not media.get("variants") and media["sizes"] == [150, 320, 640, 1080]
    # A photo goes without what only a video or its owner's reads need (PHOTO and READY when absent).
    assert not {"kind", "state", "failure_reason", "duration_ms", "has_audio", "owner_id"} & set(media)
    assert author.get(f"/v1/media/{media['id']}").json["kind"] == "PHOTO"
    # An empty alt text and an author without an avatar go out of lists; the post itself says "" for both.
    assert "alt_text" not in media and "avatar_url" not in item["author"]
    full = fan.get(f"/v1/posts/{post_id}").json
    assert full["media"][0]["alt_text"] == "" and full["author"]["avatar_url"] == ""
    for size in media["sizes"]:
        for ext in ("jpg", "webp"):
            assert fan.get(path_of(media["url_template"].replace("{variant}", f"{size}.{ext}"))).status == 200



def test_a_warm_page_asks_engagement_nothing_and_shows_likes_and_saves_at_once(stack, new_user, settle):
    """Counts, likes and saves come from engagement's cache once it holds all of a page's (a cold page
    asks engagement, which fills it). Then no page asks engagement, and each shows the reader's own
    like and save, and another's like, as soon as they are answered."""
    from tests.e2e.test_metrics_http import scrape, value

    author, fan, other = new_user(), new_user(), new_user()
    fan.post(f"/v1/users/{author.id}/follow")
    first, second = (post(author, author.upload(small_jpeg(), "image/jpeg").json["id"]) for _ in range(2))
    settle()
    assert [p["id"] for p in fan.get("/v1/feed").json["posts"]] == [second, first]
    states = {"grpc_service": "pictor.engagement.v1.EngagementService", "grpc_method": "GetPostStates",
              "grpc_code": "OK"}

    def read() -> tuple[float, dict[str, dict]]:
        """The feed's first page, and how often engagement answered GetPostStates meanwhile."""
        before = value(scrape(stack, "engagement"), "grpc_server_handled_total", **states)
        page = fan.get("/v1/feed")
        assert page.status == 200, page.body
        return (value(scrape(stack, "engagement"), "grpc_server_handled_total", **states) - before,
                {p["id"]: p for p in page.json["posts"]})

    # The fewest of three reads: other work of the stack may ask engagement meanwhile.
    assert min(read()[0] for _ in range(3)) == 0
    for user, path in ((fan, f"/v1/posts/{first}/like"), (fan, f"/v1/posts/{second}/save"),
                       (other, f"/v1/posts/{first}/like")):
        assert user.post(path).status == 200
    reads = [read() for _ in range(3)]
    assert min(asked for asked, _ in reads) == 0
    for _, page in reads:
        assert (page[first]["like_count"], page[first]["liked_by_me"], page[first].get("saved_by_me", False)) \
            == ("2", True, False)
        assert (page[second].get("like_count", "0"), page[second].get("liked_by_me", False),
                page[second]["saved_by_me"]) == ("0", False, True)

def test_a_page_spliced_from_cached_shapes_follows_unlikes_edits_and_deletes_and_reads_over_grpc(
        settings, new_user, settle):
    """The feed sends each post as its compact shape's bytes with the viewer's fields written after
    (services.feed.pages): an unlike shows as zeros written over, an edit as the new shape at once, a
    delete as no post; the reply parses as a GetFeedResponse for a gRPC client too."""
    import grpc
    from pictor.feed.v1 import feed_service_pb2 as feed_pb
    from pictor.feed.v1 import feed_service_pb2_grpc

    from services.common.mesh_tls import gateway_channel

    author, fan = new_user(), new_user()
    fan.post(f"/v1/users/{author.id}/follow")
    post_id = post(author, author.upload(small_jpeg(), "image/jpeg").json["id"], "first #one")
    assert fan.post(f"/v1/posts/{post_id}/like").status == 200
    settle()

    def shown() -> dict:
        page = fan.get("/v1/feed")
        assert page.status == 200, page.body
        return next(p for p in page.json["posts"] if p["id"] == post_id)

    for _ in range(2):  # the second read is made from the shape the first one made
        item = shown()
        assert (item["caption"], item["hashtags"], item["like_count"], item["liked_by_me"]) \
            == ("first #one", ["one"], "1", True)
    assert fan.delete(f"/v1/posts/{post_id}/like").status == 200
    assert (shown()["like_count"], shown()["liked_by_me"]) == ("0", False)
    assert author.patch(f"/v1/posts/{post_id}", {"caption": "second #two"}).status == 200
    assert (shown()["caption"], shown()["hashtags"]) == ("second #two", ["two"])

    with gateway_channel(settings, aio=False) as channel:
        reply = feed_service_pb2_grpc.FeedServiceStub(channel).GetFeed(
            feed_pb.GetFeedRequest(page_size=1), metadata=[("authorization", f"Bearer {fan.token}")], timeout=10)
        assert isinstance(reply, feed_pb.GetFeedResponse) and reply.next_page_token == ""
        item, = reply.posts
        assert (item.id, item.author.id, item.caption, item.like_count, item.liked_by_me) \
            == (int(post_id), int(author.id), "second #two", 0, False)
        assert item.media[0].url_template and not item.media[0].variants
        with pytest.raises(grpc.RpcError) as refused:
            feed_service_pb2_grpc.FeedServiceStub(channel).GetFeed(feed_pb.GetFeedRequest(), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

    assert author.delete(f"/v1/posts/{post_id}").status == 200
    settle()
    assert post_id not in [p["id"] for p in fan.get("/v1/feed").json["posts"]]


def test_the_feeds_json_is_the_typed_pages_json_as_the_gateway_prints_it(settings, new_user, settle):
    """GET /v1/feed is GetFeedJson: the feed writes the page's JSON itself and the gateway sends it on.
    It must be what the gateway printed of the typed page (GetFeed over gRPC, same reader, same pages):
    every field, defaults included, int64 as strings, a place, text beyond ASCII, likes and saves, both
    modes, page after page."""
    from google.protobuf import json_format
    from pictor.feed.v1 import feed_service_pb2 as feed_pb
    from pictor.feed.v1 import feed_service_pb2_grpc

    from services.common.mesh_tls import gateway_channel

    author, fan = new_user(), new_user()
    fan.post(f"/v1/users/{author.id}/follow")
    made = [post(author, author.upload(small_jpeg(), "image/jpeg").json["id"], f"n°{n} #ünï 🌊 \"q\" @{fan.username}")
            for n in range(3)]
    placed = author.post("/v1/posts", {"media_ids": [author.upload(small_jpeg(), "image/jpeg").json["id"]],
                                       "location": {"name": "Lisboa", "lat": 38.7223, "lng": -9.1393}})
    assert placed.status == 200, placed.body
    assert fan.post(f"/v1/posts/{made[0]}/like").status == 200
    assert fan.post(f"/v1/posts/{made[1]}/save").status == 200
    settle()

    with gateway_channel(settings, aio=False) as channel:
        stub = feed_service_pb2_grpc.FeedServiceStub(channel)
        for mode in ("RANKED", "CHRONOLOGICAL"):
            token, seen = "", []
            for _ in range(4):
                page = fan.get(f"/v1/feed?mode={mode}&page_size=2&page_token={token}")
                assert page.status == 200 and page.headers["content-type"].startswith("application/json"), page.body
                typed = stub.GetFeed(feed_pb.GetFeedRequest(page_size=2, mode=feed_pb.FeedMode.Value(mode),
                                                            page_token=token),
                                     metadata=[("authorization", f"Bearer {fan.token}")], timeout=10)
                printed = json_format.MessageToDict(typed, always_print_fields_with_no_presence=True,
                                                    preserving_proto_field_name=True)
                assert page.json["posts"] == printed["posts"]
                if mode == "CHRONOLOGICAL":  # a ranked token holds scores of its moment: equal only when present
                    assert page.json["next_page_token"] == printed["next_page_token"]
                assert bool(page.json["next_page_token"]) == bool(printed["next_page_token"])
                seen += [p["id"] for p in page.json["posts"]]
                token = page.json["next_page_token"]
                if not token:
                    break
            assert sorted(seen) == sorted([*made, placed.json["id"]])
            shown = {p["id"]: p for p in fan.get(f"/v1/feed?mode={mode}&page_size=10").json["posts"]}
            assert (shown[made[0]]["like_count"], shown[made[0]]["liked_by_me"], shown[made[1]]["saved_by_me"]) \
                == ("1", True, True)
            assert shown[placed.json["id"]]["location"] == {"name": "Lisboa", "lat": 38.7223, "lng": -9.1393}
            assert shown[made[2]]["caption"] == f"n°2 #ünï 🌊 \"q\" @{fan.username}"


def test_feed_needs_a_token_and_rejects_foreign_page_tokens(gateway, new_user):
    assert gateway.get("/v1/feed").status == 401
    fan = new_user()
    assert fan.get("/v1/feed?mode=RANKED&page_token=c123").status == 400
    assert fan.get("/v1/feed?mode=CHRONOLOGICAL&page_token=rzzz").status == 400
    assert fan.get("/v1/feed?page_size=-1").status == 400
