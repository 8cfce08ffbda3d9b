"""Domain errors as gRPC statuses (services.common.errors.to_status)."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2

from services.common.errors import Unavailable, to_status


def rich_details(status: grpc.Status) -> list:
    raw = dict(status.trailing_metadata)["grpc-status-details-bin"]
    return list(status_pb2.Status.FromString(raw).details)


def test_an_error_with_retry_after_carries_the_trailer_and_a_retry_info_after_the_error_info():
    status = to_status(Unavailable("busy", reason="BUSY", retry_after_s=3))
    assert status.code == grpc.StatusCode.UNAVAILABLE
    assert dict(status.trailing_metadata)["retry-after"] == "3"
    info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
    first, second = rich_details(status)
    assert first.Unpack(info) and info.reason == "BUSY"
    assert second.Unpack(retry) and retry.retry_delay.seconds == 3


def test_an_error_without_retry_after_has_no_trailer_and_only_its_error_info():
    status = to_status(Unavailable("down", reason="DATABASE_UNAVAILABLE"))
    assert [key for key, _ in status.trailing_metadata] == ["grpc-status-details-bin"]
    assert len(rich_details(status)) == 1
