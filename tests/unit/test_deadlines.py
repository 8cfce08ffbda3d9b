from __future__ import annotations

from services.common.deadlines import REPLY_MARGIN_S, outbound_timeout


class FakeContext:
    def __init__(self, remaining):
        self.remaining = remaining

    def time_remaining(self):
        return self.remaining


def test_outbound_call_gets_what_is_left_of_the_callers_deadline():
    assert outbound_timeout(FakeContext(1.0), default_s=5) == 1.0 - REPLY_MARGIN_S


def test_outbound_call_is_capped_at_the_default():
    assert outbound_timeout(FakeContext(100.0), default_s=5) == 5


def test_no_caller_deadline_means_the_default():
    assert outbound_timeout(FakeContext(None), default_s=2) == 2
    assert outbound_timeout(None, default_s=2) == 2


def test_an_expired_deadline_never_gives_a_negative_timeout():
    assert outbound_timeout(FakeContext(-1.0)) == 0.0


async def test_outbound_calls_inherit_the_recorded_deadline_of_the_current_call():
    import asyncio

    from services.common.deadlines import enter_call

    async def serve(remaining):
        enter_call(FakeContext(remaining))
        await asyncio.sleep(0)
        return outbound_timeout(default_s=5)

    short, none = await asyncio.gather(serve(0.5), serve(None))
    assert 0.4 < short <= 0.5 - REPLY_MARGIN_S
    assert none == 5  # each call (task) keeps its own deadline
