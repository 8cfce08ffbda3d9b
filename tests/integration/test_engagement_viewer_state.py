"""The viewer-state cache on the stack's real Redis: a fill never overwrites a write's answer."""

from __future__ import annotations

import random

from services.engagement.keys import VIEWER_STATE_TTL_S, viewer_state_key
from services.engagement.viewer_state import LIKED, SAVED, ViewerStates


def viewer() -> int:
    return random.randrange(1, 1 << 40)


async def test_fills_are_read_back_and_expire(client):
    states, v = ViewerStates(client), viewer()
    await states.fill(v, {1: True, 2: False}, {1: False})
    assert await states.known(v, [1, 2, 3]) == ({1: True, 2: False}, {1: False})
    assert 0 < await client.ttl(viewer_state_key(v)) <= VIEWER_STATE_TTL_S


async def test_a_fill_that_read_the_rows_before_a_write_loses_to_it(client):
    states, v = ViewerStates(client), viewer()
    # The writer clears, commits and sets; a reader that read "not liked" before the commit fills late.
    await states.forget(v, LIKED, 7)
    await states.set(v, LIKED, 7, True)
    await states.fill(v, {7: False}, {})
    assert (await states.known(v, [7]))[0] == {7: True}


async def test_a_write_after_a_fill_wins(client):
    states, v = ViewerStates(client), viewer()
    await states.fill(v, {}, {9: False})
    await states.forget(v, SAVED, 9)
    assert (await states.known(v, [9]))[1] == {}  # between clear and commit, readers go to the rows
    await states.set(v, SAVED, 9, True)
    assert (await states.known(v, [9]))[1] == {9: True}
