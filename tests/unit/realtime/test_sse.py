"""How stream events are framed as Server-Sent Events."""

from __future__ import annotations

import json

from pictor.realtime.v1 import realtime_pb2
from redis.exceptions import ConnectionError as RedisConnectionError

from services.common.errors import Unauthenticated
from services.realtime.service import heartbeat
from services.realtime.servicer import sse_error, sse_frame


def test_a_kept_event_has_id_event_and_one_data_line():
    event = realtime_pb2.StreamEvent(id="17-1", type="unread_count", unread_count=realtime_pb2.UnreadCount(count=0))
    assert sse_frame(event) == b'id: 17-1\nevent: unread_count\ndata: {"count": "0"}\n\n'


def test_a_heartbeat_carries_the_position_the_stream_reached_to_resume_from():
    assert sse_frame(heartbeat("17-1")) == b"id: 17-1\nevent: heartbeat\ndata: {}\n\n"
    assert sse_frame(heartbeat("")) == b"event: heartbeat\ndata: {}\n\n"


def test_a_group_with_newlines_in_its_text_stays_on_one_data_line():
    update = realtime_pb2.NotificationUpdate(group_key="comment:1")
    update.group.update({"text": "two\nlines"})
    frame = sse_frame(realtime_pb2.StreamEvent(id="1-0", type="notification", notification=update))
    assert frame.count(b"\n") == 4
    assert json.loads(frame.split(b"data: ", 1)[1])["group"]["text"] == "two\nlines"


def test_an_interrupted_stream_ends_with_an_error_event_naming_the_reason():
    assert json.loads(sse_error(RedisConnectionError("gone")).split(b"data: ")[1]) == {
        "reason": "CACHE_UNAVAILABLE", "message": "the stream was interrupted; reconnect with Last-Event-ID"}
    assert b'"reason": "TICKET_INVALID"' in sse_error(Unauthenticated("no", reason="TICKET_INVALID"))
    assert sse_error(ValueError()).startswith(b"event: error\n")
