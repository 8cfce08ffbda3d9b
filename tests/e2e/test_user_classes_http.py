"""User classes from real events: acts through the gateway, streams opened, follows counted.

The labels are read as the mesh reads them (RealtimeService/BatchGetUserClasses on
the service's own port) and their record from PostgreSQL. The test stack's
celebrity threshold is 3 followers and the classifier sweeps every second.
"""

from __future__ import annotations

import psycopg
import pytest
from pictor.realtime.v1 import realtime_pb2, realtime_service_pb2_grpc
from pictor.realtime.v1 import realtime_service_pb2 as pb

from services.common.db import shard_schema
from services.common.dependencies import sync_redis
from services.common.ids import shard_of
from services.common.mesh_tls import service_channel
from tests.e2e.http import eventually
from tests.e2e.test_realtime_http import open_stream

pytestmark = pytest.mark.e2e

# Labels follow events through the bus and a sweep every second: seconds on a busy machine
# (CI once saw more than 5 s for LIVE). No latency is promised for them.
LAG_S = 15.0


@pytest.fixture(scope="module")
def classes_of(stack):
    # As feed, BatchGetUserClasses' caller.
    channel = service_channel(stack.settings, "realtime", "feed", aio=False)
    stub = realtime_service_pb2_grpc.RealtimeServiceStub(channel)

    def read(user) -> list[str]:
        reply = stub.BatchGetUserClasses(pb.BatchGetUserClassesRequest(user_ids=[int(user.id)]), timeout=5)
        return [realtime_pb2.UserClass.Name(c).removeprefix("USER_CLASS_") for c in reply.users[0].classes]

    yield read
    channel.close()


def history(settings, user) -> list[list[str]]:
    user_id = int(user.id)
    with psycopg.connect(settings.database_for_shard(shard_of(user_id)), autocommit=True) as conn:
        rows = conn.execute(f"SELECT classes FROM {shard_schema(shard_of(user_id))}.user_class_history "
                            "WHERE user_id = %s ORDER BY changed_at", (user_id,)).fetchall()
    return [list(r[0]) for r in rows]


def test_a_user_who_acts_is_active(new_user, classes_of):
    alice, bob = new_user(), new_user()
    assert classes_of(alice) == ["INACTIVE"]
    assert alice.post(f"/v1/users/{bob.id}/follow").status == 200
    eventually(lambda: classes_of(alice), ["ACTIVE"], timeout_s=LAG_S)


def test_a_user_with_a_stream_open_is_live_then_passive_with_the_history_kept(gateway, new_user, classes_of,
                                                                           settings):
    carol = new_user()
    with open_stream(gateway, carol):
        eventually(lambda: classes_of(carol), ["LIVE"], timeout_s=LAG_S)
    eventually(lambda: classes_of(carol), ["PASSIVE"], timeout_s=LAG_S)
    assert history(settings, carol) == [["LIVE"], ["PASSIVE"]]


def test_a_visit_too_short_to_settle_as_online_still_counts(new_user, classes_of, stack):
    """Presence records states as they settle: a stream opened and closed within that time comes
    as an OFFLINE alone (CI saw it), whose last_active_at says the user came: PASSIVE, not INACTIVE."""
    from datetime import UTC, datetime

    from google.protobuf.timestamp_pb2 import Timestamp

    from services.common.events import envelope, fields

    dave = new_user()
    assert classes_of(dave) == ["INACTIVE"]
    seen = Timestamp()
    seen.FromDatetime(datetime.now(UTC))
    event = envelope("presence.changed", {"user_id": int(dave.id), "state": "OFFLINE", "last_active_at": seen})
    client = sync_redis(stack.settings.redis_url)
    try:
        client.xadd("events:presence", fields(event.SerializeToString(), event.type))
    finally:
        client.close()
    eventually(lambda: classes_of(dave), ["PASSIVE"], timeout_s=LAG_S)


def test_a_user_at_the_celebrity_threshold_is_popular(new_user, classes_of):
    star = new_user()
    fans = [new_user() for _ in range(3)]
    for fan in fans[:2]:
        assert fan.post(f"/v1/users/{star.id}/follow").status == 200
    assert "POPULAR" not in classes_of(star)
    assert fans[2].post(f"/v1/users/{star.id}/follow").status == 200
    eventually(lambda: "POPULAR" in classes_of(star), True, timeout_s=LAG_S)
    assert fans[0].delete(f"/v1/users/{star.id}/follow").status == 200
    eventually(lambda: "POPULAR" in classes_of(star), False, timeout_s=LAG_S)
