"""Sessions through Envoy: my signed-in devices, signing one out, and refresh-token rotation under
concurrent refreshes (a stolen token raced against its owner never keeps a family alive)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.e2e

RACES = 100


def sign_in(gateway, account: dict, agent: str) -> dict:
    r = gateway.post("/v1/sessions", {"username": account["user"]["username"], "password": "correct horse"},
                     headers={"user-agent": agent})
    assert r.status == 200, r.body
    return r.json


def sessions(gateway, token: str) -> list[dict]:
    r = gateway.get("/v1/sessions", token=token)
    assert r.status == 200, r.body
    return r.json.get("sessions", [])


def test_my_sessions_list_each_device_newest_first_with_the_current_one_marked(gateway, new_account):
    account = new_account()
    phone = sign_in(gateway, account, "PictorPhone/1.0")
    laptop = sign_in(gateway, account, "PictorLaptop/2.0")
    listed = sessions(gateway, laptop["access_token"])
    assert [s["user_agent"] for s in listed][:2] == ["PictorLaptop/2.0", "PictorPhone/1.0"]
    assert len(listed) == 3  # and the one registering opened
    assert [s["current"] for s in listed] == [True, False, False]
    assert all(s["signed_in_at"] and s["last_active_at"] for s in listed)
    assert [s["current"] for s in sessions(gateway, phone["access_token"])] == [False, True, False]


def test_a_refresh_moves_a_session_up_and_keeps_its_id(gateway, new_account):
    account = new_account()
    phone = sign_in(gateway, account, "PictorPhone/1.0")
    sign_in(gateway, account, "PictorLaptop/2.0")
    before = {s["user_agent"]: s["id"] for s in sessions(gateway, phone["access_token"])}
    r = gateway.post("/v1/sessions:refresh", {"refresh_token": phone["refresh_token"]})
    assert r.status == 200, r.body
    listed = sessions(gateway, r.json["access_token"])
    assert listed[0]["user_agent"] == "PictorPhone/1.0" and listed[0]["current"]
    assert listed[0]["id"] == before["PictorPhone/1.0"]


def test_signing_a_session_out_stops_its_refresh_and_drops_it_from_the_list(gateway, new_account):
    account = new_account()
    phone = sign_in(gateway, account, "PictorPhone/1.0")
    laptop = sign_in(gateway, account, "PictorLaptop/2.0")
    phone_id = next(s["id"] for s in sessions(gateway, laptop["access_token"]) if s["user_agent"] == "PictorPhone/1.0")
    assert gateway.delete(f"/v1/sessions/{phone_id}", token=laptop["access_token"]).status == 200
    r = gateway.post("/v1/sessions:refresh", {"refresh_token": phone["refresh_token"]})
    assert r.status == 401 and r.json["details"][0]["reason"] == "REFRESH_TOKEN_INVALID"
    assert phone_id not in [s["id"] for s in sessions(gateway, laptop["access_token"])]
    again = gateway.delete(f"/v1/sessions/{phone_id}", token=laptop["access_token"])
    assert again.status == 404 and again.json["details"][0]["reason"] == "SESSION_NOT_FOUND"


def test_another_users_session_is_404_and_untouched(gateway, new_account):
    mine, theirs = new_account(), new_account()
    their_id = sessions(gateway, theirs["access_token"])[0]["id"]
    r = gateway.delete(f"/v1/sessions/{their_id}", token=mine["access_token"])
    assert r.status == 404 and r.json["details"][0]["reason"] == "SESSION_NOT_FOUND"
    assert gateway.post("/v1/sessions:refresh", {"refresh_token": theirs["refresh_token"]}).status == 200


def test_sessions_need_a_token_and_a_numeric_id(gateway, new_account):
    assert gateway.get("/v1/sessions").status == 401
    assert gateway.delete("/v1/sessions/1").status == 401
    r = gateway.delete("/v1/sessions/abc", token=new_account()["access_token"])
    assert r.status == 400, r.body


def test_racing_refreshes_of_one_token_never_leave_a_live_successor(gateway, new_account):
    """The owner and a thief refresh the same token at once, RACES times: at most one wins, the
    loser's reuse revokes the family, and the winner's new token is dead with it."""
    account = new_account()
    survivors = []
    with ThreadPoolExecutor(2) as pool:
        for _ in range(RACES):
            token = sign_in(gateway, account, "race")["refresh_token"]
            replies = list(pool.map(lambda t: gateway.post("/v1/sessions:refresh", {"refresh_token": t}),
                                    [token, token]))
            assert sorted(r.status for r in replies) in ([200, 401], [401, 401]), [r.body for r in replies]
            won = [r.json["refresh_token"] for r in replies if r.status == 200]
            survivors += [t for t in won
                          if gateway.post("/v1/sessions:refresh", {"refresh_token": t}).status != 401]
    assert survivors == []
    assert [s for s in sessions(gateway, account["access_token"]) if s["user_agent"] == "race"] == []
