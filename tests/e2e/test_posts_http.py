"""Posts through the gateway: create, read, edit, delete, grids and who may see them."""

from __future__ import annotations

import urllib.request

import pytest

from tests.e2e.http import path_of
from tests.e2e.media_files import small_jpeg

pytestmark = pytest.mark.e2e


def upload(user) -> str:
    r = user.upload(small_jpeg(), "image/jpeg")
    assert r.status == 200, r.body
    return r.json["id"]


def create_post(user, caption: str = "hello", n_media: int = 1, **extra) -> dict:
    r = user.post("/v1/posts", {"media_ids": [upload(user) for _ in range(n_media)], "caption": caption, **extra})
    assert r.status == 200, r.body
    return r.json


def test_create_post_returns_the_full_post(new_user, settle_counts):
    alice = new_user()
    post = create_post(alice, "Sunset with @bob at #Beach #sea", n_media=2,
                       location={"name": "Brighton", "lat": 50.82, "lng": -0.14})
    assert set(post) >= {"id", "author", "media", "caption", "hashtags", "mentions", "location", "like_count",
                         "comment_count", "liked_by_me", "saved_by_me", "created_at"}
    assert post["author"] == {"id": alice.id, "username": alice.username,
                              "display_name": alice.session["user"]["display_name"], "avatar_url": ""}
    assert post["hashtags"] == ["beach", "sea"] and post["mentions"] == ["bob"]
    assert post["location"] == {"name": "Brighton", "lat": 50.82, "lng": -0.14}
    assert len(post["media"]) == 2 and post["like_count"] == "0"
    settle_counts()
    assert alice.get(f"/v1/users/{alice.id}").json["post_count"] == "1"


def test_every_variant_url_of_a_post_serves_an_image(new_user):
    post = create_post(new_user())
    variants = post["media"][0]["variants"]
    assert {(v["size"], v["format"]) for v in variants} == {
        (s, f) for s in (150, 320, 640, 1080) for f in ("jpeg", "webp")}
    for v in variants:
        with urllib.request.urlopen(v["url"], timeout=10) as r:
            assert r.headers["content-type"] == f"image/{v['format']}"
            assert r.read(4)


@pytest.mark.parametrize("body, field", [
    ({"media_ids": [], "caption": "x"}, "media_ids"),
    ({"media_ids": ["1"] * 11, "caption": "x"}, "media_ids"),
    ({"media_ids": ["424242"], "caption": "x"}, "media_ids"),
])
def test_bad_media_lists_are_400(new_user, body, field):
    r = new_user().post("/v1/posts", body)
    assert r.status == 400, r.body
    assert r.json["details"][0]["metadata"]["field"] == field


def test_caption_over_2200_characters_is_400(new_user):
    alice = new_user()
    r = alice.post("/v1/posts", {"media_ids": [upload(alice)], "caption": "x" * 2201})
    assert r.status == 400 and r.json["details"][0]["metadata"]["field"] == "caption"


def test_bad_location_is_400(new_user):
    alice = new_user()
    r = alice.post("/v1/posts", {"media_ids": [upload(alice)], "location": {"name": "Nowhere", "lat": 91, "lng": 0}})
    assert r.status == 400 and r.json["details"][0]["metadata"]["field"] == "location.lat"


def test_someone_elses_media_cannot_be_posted(new_user):
    alice, mallory = new_user(), new_user()
    r = mallory.post("/v1/posts", {"media_ids": [upload(alice)]})
    assert r.status == 400


def test_request_id_makes_create_retries_safe(new_user, settle_counts):
    alice = new_user()
    body = {"media_ids": [upload(alice)], "caption": "once", "request_id": "retry-1"}
    first, second = alice.post("/v1/posts", body), alice.post("/v1/posts", body)
    assert first.json["id"] == second.json["id"]
    settle_counts()
    assert alice.get(f"/v1/users/{alice.id}").json["post_count"] == "1"


def test_edit_caption_updates_tags(new_user):
    alice = new_user()
    post = create_post(alice, "#old")
    r = alice.patch(f"/v1/posts/{post['id']}", {"caption": "now #new with @ada"})
    assert r.status == 200, r.body
    assert r.json["hashtags"] == ["new"] and r.json["mentions"] == ["ada"]
    assert alice.get(f"/v1/posts/{post['id']}").json["caption"] == "now #new with @ada"


def test_only_the_author_edits_or_deletes(new_user):
    alice, bob = new_user(), new_user()
    post = create_post(alice)
    assert bob.patch(f"/v1/posts/{post['id']}", {"caption": "mine now"}).status == 403
    assert bob.delete(f"/v1/posts/{post['id']}").status == 403


def test_delete_hides_at_once_and_is_idempotent(new_user, settle_counts):
    alice, bob = new_user(), new_user()
    post = create_post(alice)
    assert alice.delete(f"/v1/posts/{post['id']}").status == 200
    assert alice.delete(f"/v1/posts/{post['id']}").status == 200
    for viewer in (alice, bob):
        assert viewer.get(f"/v1/posts/{post['id']}").status == 404
    assert alice.get(f"/v1/users/{alice.id}/posts").json["posts"] == []
    settle_counts()
    assert alice.get(f"/v1/users/{alice.id}").json["post_count"] == "0"


def test_user_posts_are_newest_first_and_paged(new_user):
    alice = new_user()
    made = [create_post(alice, f"post {i}")["id"] for i in range(3)]
    first = alice.get(f"/v1/users/{alice.id}/posts?page_size=2")
    assert [p["id"] for p in first.json["posts"]] == made[::-1][:2]
    second = alice.get(f"/v1/users/{alice.id}/posts?page_size=2&page_token={first.json['next_page_token']}")
    assert [p["id"] for p in second.json["posts"]] == made[:1]
    assert second.json["next_page_token"] == ""



def test_a_post_read_again_asks_engagement_nothing_and_shows_a_like_at_once(stack, new_user):
    """The counts and the viewer's like come from engagement's cache once engagement filled it (the first
    read), and a like or an unlike shows on the next read."""
    from tests.e2e.test_metrics_http import scrape, value

    author, fan = new_user(), new_user()
    post_id = create_post(author)["id"]
    states = {"grpc_service": "pictor.engagement.v1.EngagementService", "grpc_method": "GetPostStates",
              "grpc_code": "OK"}

    def read(get) -> tuple[float, dict]:
        before = value(scrape(stack, "engagement"), "grpc_server_handled_total", **states)
        r = get(f"/v1/posts/{post_id}")
        assert r.status == 200, r.body
        return value(scrape(stack, "engagement"), "grpc_server_handled_total", **states) - before, r.json

    assert fan.post(f"/v1/posts/{post_id}/like").status == 200
    read(fan.get)
    reads = [read(fan.get) for _ in range(3)]  # the fewest of three: other work may ask engagement meanwhile
    assert min(asked for asked, _ in reads) == 0
    assert all((post["like_count"], post["liked_by_me"]) == ("1", True) for _, post in reads)
    assert fan.delete(f"/v1/posts/{post_id}/like").status == 200
    _, post = read(fan.get)
    assert (post["like_count"], post["liked_by_me"]) == ("0", False)

def test_grids_send_compact_media_and_the_post_has_every_variant(new_user):
    alice, bob = new_user(), new_user()
    post = create_post(alice, "grid #compact")
    assert bob.post(f"/v1/posts/{post['id']}/save").status == 200
    grids = {"profile": bob.get(f"/v1/users/{alice.id}/posts").json["posts"],
             "saved": bob.get("/v1/users/me/saved").json["posts"]}
    for name, grid in grids.items():
        assert [p["id"] for p in grid] == [post["id"]], name
        media = grid[0]["media"][0]
        # One signed template per item instead of eight signed URLs; a photo without kind, state, owner.
        # (The gateway prints an empty list as [].)
        assert not any(media.get(k) for k in ("variants", "kind", "state", "owner_id", "created_at")), (name, media)
        assert media["sizes"] == [150, 320, 640, 1080] and (media["width"], media["height"]) == (
            post["media"][0]["width"], post["media"][0]["height"]), name
        for size in media["sizes"]:
            assert bob.get(path_of(media["url_template"].replace("{variant}", f"{size}.webp"))).status == 200
    assert len(bob.get(f"/v1/posts/{post['id']}").json["media"][0]["variants"]) == 8


def test_private_posts_only_for_approved_followers(new_user, gateway):
    owner, fan, stranger = new_user(private=True), new_user(), new_user()
    post = create_post(owner)
    fan.post(f"/v1/users/{owner.id}/follow")
    assert fan.get(f"/v1/posts/{post['id']}").status == 404  # requested, not approved
    owner.post(f"/v1/follow-requests/{fan.id}:approve")
    assert fan.get(f"/v1/posts/{post['id']}").status == 200
    assert stranger.get(f"/v1/posts/{post['id']}").status == 404
    assert gateway.get(f"/v1/posts/{post['id']}").status == 404  # signed out
    assert stranger.get(f"/v1/users/{owner.id}/posts").status == 403
    assert len(fan.get(f"/v1/users/{owner.id}/posts").json["posts"]) == 1


def test_blocked_users_see_nothing_of_each_others_posts(new_user):
    alice, bob = new_user(), new_user()
    post = create_post(alice)
    alice.post(f"/v1/users/{bob.id}/block")
    assert bob.get(f"/v1/posts/{post['id']}").status == 404
    assert bob.get(f"/v1/users/{alice.id}/posts").status == 404
    bob_post = create_post(bob)
    assert alice.get(f"/v1/posts/{bob_post['id']}").status == 404


def test_public_posts_are_readable_signed_out(new_user, gateway):
    post = create_post(new_user())
    assert gateway.get(f"/v1/posts/{post['id']}").status == 200


def test_mesh_only_batch_read_is_refused_at_the_gateway(settings):
    import grpc
    from pictor.posts.v1 import posts_service_pb2 as pb
    from pictor.posts.v1 import posts_service_pb2_grpc

    from services.common.mesh_tls import gateway_channel

    with gateway_channel(settings, aio=False) as channel:
        stub = posts_service_pb2_grpc.PostsServiceStub(channel)
        with pytest.raises(grpc.RpcError):
            stub.BatchGetPosts(pb.BatchGetPostsRequest(viewer_id=1, post_ids=[1]), timeout=5)


def check_post_access(settings, viewer_id: int, post_ids: list[int], port: int | None = None) -> list[tuple[int, int]]:
    """PostsService/CheckPostAccess on the posts service's own port (or on `port`), as engagement
    (one of its callers) calls it."""
    from pictor.posts.v1 import posts_service_pb2 as pb
    from pictor.posts.v1 import posts_service_pb2_grpc

    from services.common.mesh_tls import service_channel

    with service_channel(settings, "posts", "engagement", port=port, aio=False) as channel:
        reply = posts_service_pb2_grpc.PostsServiceStub(channel).CheckPostAccess(
            pb.CheckPostAccessRequest(viewer_id=viewer_id, post_ids=post_ids), timeout=5)
    return [(p.post_id, p.author_id) for p in reply.posts]


def test_check_post_access_answers_the_visible_posts_and_their_authors_only(settings, new_user):
    public, private, fan, stranger = new_user(), new_user(private=True), new_user(), new_user()
    fan.post(f"/v1/users/{private.id}/follow")
    private.post(f"/v1/follow-requests/{fan.id}:approve")
    shown, hidden, gone = (int(create_post(public)["id"]), int(create_post(private)["id"]),
                           int(create_post(public)["id"]))
    public.delete(f"/v1/posts/{gone}")
    public.post(f"/v1/users/{stranger.id}/block")
    asked = [hidden, gone, shown, 12345]
    assert check_post_access(settings, int(fan.id), asked) == [(hidden, int(private.id)), (shown, int(public.id))]
    assert check_post_access(settings, int(stranger.id), asked) == []
    assert check_post_access(settings, 0, asked) == [(shown, int(public.id))]


def test_batch_get_posts_leaves_the_viewer_state_out_when_the_caller_has_it(settings, new_user):
    """As the feed asks (it has counts, likes and saves from engagement already): the shapes alone."""
    from pictor.posts.v1 import posts_service_pb2 as pb
    from pictor.posts.v1 import posts_service_pb2_grpc

    from services.common.mesh_tls import service_channel

    author, fan = new_user(), new_user()
    post_id = int(create_post(author)["id"])
    assert fan.post(f"/v1/posts/{post_id}/like").status == 200
    with service_channel(settings, "posts", "feed", aio=False) as channel:
        stub = posts_service_pb2_grpc.PostsServiceStub(channel)
        full, bare = (stub.BatchGetPosts(pb.BatchGetPostsRequest(viewer_id=int(fan.id), post_ids=[post_id],
                                                                 without_viewer_state=without), timeout=5).posts
                      for without in (False, True))
    assert [(p.id, p.like_count, p.liked_by_me) for p in full] == [(post_id, 1, True)]
    assert [(p.id, p.like_count, p.liked_by_me, p.caption) for p in bare] == [(post_id, 0, False, full[0].caption)]


def test_check_post_access_is_refused_at_the_gateway(settings):
    import grpc

    with pytest.raises(grpc.RpcError):
        check_post_access(settings, 1, [1], port=settings.gateway_port)


# Negative and zero ids are 400 naming the field (tests/e2e/test_bad_input_http.py).
def test_post_ids_in_a_shard_not_configured_are_404_never_500(new_user):
    alice, bad_id = new_user(), str((1 << 62) + (5000 << 10))
    for r in (alice.get(f"/v1/posts/{bad_id}"), alice.patch(f"/v1/posts/{bad_id}", {"caption": "x"}),
              alice.delete(f"/v1/posts/{bad_id}"), alice.get(f"/v1/users/{bad_id}/posts")):
        assert r.status == 404, (r.status, r.body)


def test_cached_posts_still_obey_privacy_at_once(new_user):
    """The shape of a post is cached; who may see it never is."""
    owner, stranger = new_user(), new_user()
    post = create_post(owner)
    assert stranger.get(f"/v1/posts/{post['id']}").status == 200  # now cached
    owner.patch("/v1/users/me", {"is_private": True})
    assert stranger.get(f"/v1/posts/{post['id']}").status == 404
    owner.patch("/v1/users/me", {"is_private": False})
    assert stranger.get(f"/v1/posts/{post['id']}").status == 200
    owner.post(f"/v1/users/{stranger.id}/block")
    assert stranger.get(f"/v1/posts/{post['id']}").status == 404
