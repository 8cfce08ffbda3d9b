"""The fan-out worker takes from an event's payload only the fields its handler names."""

from __future__ import annotations

from services.common.events import Event
from services.feed.fanout import FanOut


class Recording(FanOut):
    def __init__(self) -> None:  # no store or sources: the handler below touches neither
        self.seen: list[tuple[int, int]] = []

    async def on_unmute(self, user_id: int, target_id: int) -> None:
        self.seen.append((user_id, target_id))


async def test_a_payload_with_a_field_the_handler_does_not_know_still_reaches_it():
    fanout = Recording()
    await fanout.handle(Event("graph", "unmute", {"user_id": 1, "target_id": 2, "reason": "added later"}))
    assert fanout.seen == [(1, 2)]
