"""The event envelope: building, decoding, and what a consumer sees (services.common.events)."""

from __future__ import annotations

import json

import pytest
from pictor.events.v1 import events_pb2

from services.common.events import decode, envelope, fields, published_at


def delivered(message: events_pb2.EventEnvelope | bytes, topic: str = "engagement"):
    raw = message if isinstance(message, bytes) else message.SerializeToString()
    return decode(topic, b"1700000000000-0", {k.encode(): v if isinstance(v, bytes) else v.encode()
                                              for k, v in fields(raw, "comment").items()})


def test_data_holds_every_payload_field_with_ids_as_ints_and_defaults_included():
    event = delivered(envelope("comment", {"post_id": 5, "user_id": 6, "author_id": 7, "comment_id": 8,
                                           "mentions": ["ada"]}))
    assert event.data == {"post_id": 5, "user_id": 6, "author_id": 7, "comment_id": 8, "parent_comment_id": 0,
                          "mentions": ["ada"], "parent_author_id": 0}
    assert all(type(v) is int for k, v in event.data.items() if k != "mentions")


def test_the_event_id_and_time_come_from_the_envelope_not_the_stream():
    message = envelope("like", {"post_id": 1, "user_id": 2, "author_id": 3}, event_id="abc", occurred_at=1234.5)
    event = delivered(message)
    assert (event.id, event.stream_id, event.type) == ("abc", "1700000000000-0", "like")
    assert published_at(event) == 1234.5 and event.envelope == message


def test_a_field_this_code_does_not_know_is_ignored():
    # A newer writer's Like with a field 111 = 42, as field 30 (like) of the envelope.
    newer = events_pb2.Like(post_id=1, user_id=2, author_id=3).SerializeToString() + b"\xf8\x06\x2a"
    raw = events_pb2.EventEnvelope(event_id="x", type="like").SerializeToString()
    raw += b"\xf2\x01" + bytes([len(newer)]) + newer
    assert delivered(raw).data == {"post_id": 1, "user_id": 2, "author_id": 3}


def test_a_payload_case_this_code_does_not_know_gives_empty_data():
    message = events_pb2.EventEnvelope(event_id="x", type="story.created")
    raw = message.SerializeToString() + b"\xba\x3e\x02\x08\x01"  # field 999, a message {1: 1}
    event = delivered(raw)
    assert (event.type, event.data) == ("story.created", {})


def test_an_unknown_type_or_field_is_refused_when_writing():
    with pytest.raises(ValueError, match="no event type"):
        envelope("post.exploded", {"post_id": 1})
    with pytest.raises(ValueError, match="follow"):
        envelope("follow", {"follower_id": 1, "followee": 2})


def test_a_message_from_before_protobuf_still_decodes():
    event = decode("posts", b"1700000000000-0", {b"type": b"post.created",
                                                  b"data": json.dumps({"post_id": 1, "author_id": 2}).encode()})
    assert (event.type, event.data, event.id) == ("post.created", {"post_id": 1, "author_id": 2}, "1700000000000-0")
