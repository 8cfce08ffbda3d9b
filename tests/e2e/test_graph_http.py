"""The follow graph through the gateway: follows, requests, blocks, mutes, lists."""

from __future__ import annotations

import pytest

from services.common.mesh_tls import gateway_channel

pytestmark = pytest.mark.e2e


@pytest.fixture
def counts(settle_counts):
    """(follower_count, following_count) of a user once the profile counts took in every event so far."""

    def read(client, user_id: str) -> tuple[int, int]:
        settle_counts()
        user = client.get(f"/v1/users/{user_id}").json
        return int(user["follower_count"]), int(user["following_count"])

    return read


def ids(response) -> list[str]:
    return [u["id"] for u in response.json["users"]]


def test_follow_public_account_is_immediate_and_counted_once(new_user, counts):
    alice, bob = new_user(), new_user()
    for _ in range(2):  # idempotent
        r = alice.post(f"/v1/users/{bob.id}/follow")
        assert r.status == 200 and r.json == {"state": "FOLLOWING"}
    assert counts(alice, bob.id) == (1, 0)
    assert counts(alice, alice.id) == (0, 1)
    assert ids(alice.get(f"/v1/users/{bob.id}/followers")) == [alice.id]
    assert ids(alice.get(f"/v1/users/{alice.id}/following")) == [bob.id]


def test_unfollow_is_idempotent_and_uncounts(new_user, counts):
    alice, bob = new_user(), new_user()
    alice.post(f"/v1/users/{bob.id}/follow")
    for _ in range(2):
        r = alice.delete(f"/v1/users/{bob.id}/follow")
        assert r.status == 200 and r.json == {"state": "NOT_FOLLOWING"}
    assert counts(alice, bob.id) == (0, 0)
    assert counts(alice, alice.id) == (0, 0)


def test_follow_needs_a_token(gateway, new_user):
    bob = new_user()
    assert gateway.post(f"/v1/users/{bob.id}/follow").status == 401


def test_following_yourself_is_400(new_user):
    alice = new_user()
    assert alice.post(f"/v1/users/{alice.id}/follow").status == 400


def test_following_an_unknown_user_is_404(new_user):
    assert new_user().post("/v1/users/4242/follow").status == 404


def test_private_account_gets_a_request_the_owner_approves(new_user, counts):
    owner, fan = new_user(private=True), new_user()
    r = fan.post(f"/v1/users/{owner.id}/follow")
    assert r.json == {"state": "REQUESTED"}
    assert counts(owner, owner.id) == (0, 0)
    assert ids(owner.get("/v1/follow-requests")) == [fan.id]
    assert owner.post(f"/v1/follow-requests/{fan.id}:approve").status == 200
    assert counts(owner, owner.id) == (1, 0)
    assert ids(owner.get("/v1/follow-requests")) == []
    assert fan.post(f"/v1/users/{owner.id}/follow").json == {"state": "FOLLOWING"}


def test_rejected_request_leaves_no_follow(new_user, counts):
    owner, fan = new_user(private=True), new_user()
    fan.post(f"/v1/users/{owner.id}/follow")
    assert owner.post(f"/v1/follow-requests/{fan.id}:reject").status == 200
    assert counts(owner, owner.id) == (0, 0)
    assert owner.post(f"/v1/follow-requests/{fan.id}:approve").status == 404


def test_withdrawing_a_request_by_unfollowing(new_user):
    owner, fan = new_user(private=True), new_user()
    fan.post(f"/v1/users/{owner.id}/follow")
    fan.delete(f"/v1/users/{owner.id}/follow")
    assert ids(owner.get("/v1/follow-requests")) == []


def test_owner_removes_a_follower(new_user, counts):
    owner, fan = new_user(), new_user()
    fan.post(f"/v1/users/{owner.id}/follow")
    assert owner.delete(f"/v1/users/me/followers/{fan.id}").status == 200
    assert counts(owner, owner.id) == (0, 0)
    assert counts(owner, fan.id) == (0, 0)


def test_private_lists_are_for_followers_only(new_user):
    owner, fan, stranger = new_user(private=True), new_user(), new_user()
    fan.post(f"/v1/users/{owner.id}/follow")
    owner.post(f"/v1/follow-requests/{fan.id}:approve")
    assert stranger.get(f"/v1/users/{owner.id}/followers").status == 403
    assert ids(fan.get(f"/v1/users/{owner.id}/followers")) == [fan.id]
    assert ids(owner.get(f"/v1/users/{owner.id}/followers")) == [fan.id]


def test_follower_pages_cover_everyone_once_newest_first(new_user):
    star = new_user()
    fans = [new_user() for _ in range(5)]
    for fan in fans:
        fan.post(f"/v1/users/{star.id}/follow")
    seen, token = [], ""
    while True:
        r = star.get(f"/v1/users/{star.id}/followers?page_size=2&page_token={token}")
        assert r.status == 200, r.body
        assert len(r.json["users"]) <= 2
        seen += ids(r)
        token = r.json["next_page_token"]
        if not token:
            break
    assert seen == [f.id for f in reversed(fans)]


def test_bad_page_token_and_negative_page_size_are_400(new_user):
    alice = new_user()
    assert alice.get(f"/v1/users/{alice.id}/followers?page_token=garbage").status == 400
    assert alice.get(f"/v1/users/{alice.id}/followers?page_size=-1").status == 400


def test_block_removes_follows_both_ways_and_hides_each_from_the_other(new_user, counts):
    alice, bob = new_user(), new_user()
    alice.post(f"/v1/users/{bob.id}/follow")
    bob.post(f"/v1/users/{alice.id}/follow")
    assert alice.post(f"/v1/users/{bob.id}/block").status == 200
    assert counts(alice, alice.id) == (0, 0)
    assert counts(bob, bob.id) == (0, 0)
    # neither sees the other, as if they did not exist
    for viewer, other in ((alice, bob), (bob, alice)):
        assert viewer.get(f"/v1/users/{other.id}").status == 404
        assert viewer.get(f"/v1/usernames/{other.username}").status == 404
        assert viewer.get(f"/v1/users/{other.id}/followers").status == 404
        assert viewer.post(f"/v1/users/{other.id}/follow").status == 404
    # unblocking restores visibility, not the follows
    assert alice.delete(f"/v1/users/{bob.id}/block").status == 200
    assert bob.get(f"/v1/users/{alice.id}").status == 200
    assert counts(alice, alice.id) == (0, 0)


def test_block_drops_pending_requests(new_user):
    owner, fan = new_user(private=True), new_user()
    fan.post(f"/v1/users/{owner.id}/follow")
    owner.post(f"/v1/users/{fan.id}/block")
    assert ids(owner.get("/v1/follow-requests")) == []


def test_blocked_users_vanish_from_lists(new_user):
    star, fan, blocker = new_user(), new_user(), new_user()
    fan.post(f"/v1/users/{star.id}/follow")
    blocker.post(f"/v1/users/{star.id}/follow")
    blocker.post(f"/v1/users/{fan.id}/block")
    assert fan.id not in ids(blocker.get(f"/v1/users/{star.id}/followers"))
    assert blocker.id not in ids(fan.get(f"/v1/users/{star.id}/followers"))


def test_my_blocked_list_is_newest_first_in_pages_and_unblocking_removes_from_it(new_user):
    me, first, second, third = new_user(), new_user(), new_user(), new_user()
    for other in (first, second, third):
        assert me.post(f"/v1/users/{other.id}/block").status == 200
    page = me.get("/v1/users/me/blocked?page_size=2")
    assert page.status == 200, page.body
    assert ids(page) == [third.id, second.id]
    assert page.json["users"][0]["username"] == third.username
    rest = me.get(f"/v1/users/me/blocked?page_size=2&page_token={page.json['next_page_token']}")
    assert ids(rest) == [first.id] and not rest.json.get("next_page_token")
    assert me.delete(f"/v1/users/{second.id}/block").status == 200
    assert ids(me.get("/v1/users/me/blocked")) == [third.id, first.id]


def test_the_blocked_list_is_the_callers_own(gateway, new_user):
    blocker, blocked, stranger = new_user(), new_user(), new_user()
    blocker.post(f"/v1/users/{blocked.id}/block")
    assert ids(blocked.get("/v1/users/me/blocked")) == []  # being blocked puts no one in my list
    assert ids(stranger.get("/v1/users/me/blocked")) == []
    assert gateway.get("/v1/users/me/blocked").status == 401
    # no route reads another user's list
    assert stranger.get(f"/v1/users/{blocker.id}/blocked").status == 404


def test_the_blocked_list_refuses_a_bad_page_token_or_size(new_user):
    me = new_user()
    for query in ("page_token=garbage", "page_size=-1"):
        r = me.get(f"/v1/users/me/blocked?{query}")
        assert r.status == 400, (query, r.status, r.body)
    # a token of another list (another owner's, or my follow requests') is refused too
    other = new_user()
    for _ in range(3):
        other.post(f"/v1/users/{new_user().id}/block")
    token = other.get("/v1/users/me/blocked?page_size=1").json["next_page_token"]
    assert me.get(f"/v1/users/me/blocked?page_token={token}").status == 400


def test_mute_and_unmute_are_idempotent(new_user):
    alice, bob = new_user(), new_user()
    for _ in range(2):
        assert alice.post(f"/v1/users/{bob.id}/mute").status == 200
    assert alice.get(f"/v1/users/{bob.id}").status == 200  # a mute hides nothing but the feed
    for _ in range(2):
        assert alice.delete(f"/v1/users/{bob.id}/mute").status == 200


def test_mesh_only_methods_are_refused_at_the_gateway(settings, new_user):
    import grpc
    from pictor.graph.v1 import graph_service_pb2 as pb
    from pictor.graph.v1 import graph_service_pb2_grpc

    alice = new_user()
    with gateway_channel(settings, aio=False) as channel:
        stub = graph_service_pb2_grpc.GraphServiceStub(channel)
        with pytest.raises(grpc.RpcError) as error:
            stub.GetRelationships(pb.GetRelationshipsRequest(viewer_id=int(alice.id), owner_ids=[1]), timeout=5)
    assert error.value.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.NOT_FOUND)


# Negative and zero ids are 400 naming the field (tests/e2e/test_bad_input_http.py).
def test_ids_in_a_shard_not_configured_are_404_or_harmless_never_500(new_user):
    alice, bad_id = new_user(), str((1 << 62) + (5000 << 10))
    for r in (alice.get(f"/v1/users/{bad_id}"), alice.get(f"/v1/users/{bad_id}/followers"),
              alice.post(f"/v1/users/{bad_id}/follow"), alice.post(f"/v1/users/{bad_id}/block"),
              alice.post(f"/v1/follow-requests/{bad_id}:approve"), alice.post(f"/v1/follow-requests/{bad_id}:reject")):
        assert r.status == 404, (r.status, r.body)
    for r in (alice.delete(f"/v1/users/{bad_id}/follow"), alice.delete(f"/v1/users/me/followers/{bad_id}"),
              alice.delete(f"/v1/users/{bad_id}/block"), alice.delete(f"/v1/users/{bad_id}/mute")):
        assert r.status == 200, (r.status, r.body)


def test_an_account_made_private_is_hidden_from_non_followers_at_once(new_user):
    """Accounts tells the graph (which keeps its own copy of is_private) before the change answers."""
    owner, fan, stranger = new_user(), new_user(), new_user()
    fan.post(f"/v1/users/{owner.id}/follow")
    assert owner.patch("/v1/users/me", {"is_private": True}).status == 200
    assert stranger.get(f"/v1/users/{owner.id}/followers").status == 403
    assert stranger.post(f"/v1/users/{owner.id}/follow").json == {"state": "REQUESTED"}
    assert ids(fan.get(f"/v1/users/{owner.id}/followers")) == [fan.id]  # approved before, still a follower
    assert owner.patch("/v1/users/me", {"is_private": False}).status == 200
    assert ids(stranger.get(f"/v1/users/{owner.id}/followers")) == [fan.id]


def test_a_new_account_can_be_followed_at_once(new_user):
    alice, bob = new_user(), new_user()
    assert alice.post(f"/v1/users/{bob.id}/follow").json == {"state": "FOLLOWING"}
