"""hotpath.ids: the layout, the generator's guarantees, and the two implementations agreeing."""

from __future__ import annotations

import threading
import time
from array import array
from itertools import pairwise
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotpath._ids_common import (
    EPOCH_MS,
    MAX_SEQUENCE,
    MAX_TIMESTAMP_OFFSET_MS,
    MAX_WORKER_COUNTER,
    ClockMovedBackwardsError,
    DecodedId,
    worker_of,
)
from tests.hotpath.strategies import (
    INT64_MAX,
    compose_id,
    sequences,
    shards,
    unix_timestamps,
    valid_ids,
)

T = EPOCH_MS + 1_000_000  # an arbitrary clock reading


class ScriptedClock:
    """Returns the scripted readings in order; reading more often than scripted fails."""

    def __init__(self, *readings: int) -> None:
        self.readings = list(readings)
        self.reads = 0

    def __call__(self) -> int:
        assert self.reads < len(self.readings), "the generator read the clock too often"
        self.reads += 1
        return self.readings[self.reads - 1]


class SteppingClock:
    """Starts at ``start`` and ticks 1 ms every ``stride`` reads; ``jumps[i]`` moves it by
    that many ms at read i (negative: backwards)."""

    def __init__(self, start: int, stride: int, jumps: dict[int, int]) -> None:
        self.start, self.stride, self.jumps = start, stride, jumps
        self.shift = 0
        self.reads = 0

    def __call__(self) -> int:
        self.shift += self.jumps.get(self.reads, 0)
        reading = self.start + self.reads // self.stride + self.shift
        self.reads += 1
        return reading


# --- the layout ----------------------------------------------------------------------------


def test_epoch_is_2026_01_01_utc() -> None:
    assert EPOCH_MS == 1_767_225_600_000


def test_id_packs_time_shard_and_sequence(ids_impl: ModuleType) -> None:
    generator = ids_impl.IdGenerator(5, clock=ScriptedClock(T))
    assert generator.next_id() == ((T - EPOCH_MS) << 23) | (5 << 10)


@settings(max_examples=200, deadline=None)
@given(timestamp=unix_timestamps, shard=shards, sequence=sequences)
def test_decode_returns_the_packed_fields(
    ids_impl: ModuleType, timestamp: int, shard: int, sequence: int
) -> None:
    post_id = compose_id(timestamp, shard, sequence)
    assert ids_impl.decode(post_id) == DecodedId(timestamp, shard, sequence)


@settings(max_examples=200, deadline=None)
@given(timestamp=unix_timestamps, shard=shards, sequence=sequences)
def test_shard_of_returns_the_shard(
    ids_impl: ModuleType, timestamp: int, shard: int, sequence: int
) -> None:
    assert ids_impl.shard_of(compose_id(timestamp, shard, sequence)) == shard


@settings(max_examples=200, deadline=None)
@given(timestamp=unix_timestamps)
def test_min_id_for_is_the_first_id_of_its_millisecond(ids_impl: ModuleType, timestamp: int) -> None:
    assert ids_impl.min_id_for(timestamp) == compose_id(timestamp, 0, 0)


@settings(max_examples=200, deadline=None)
@given(timestamp=unix_timestamps, shard=shards, sequence=sequences)
def test_min_id_for_separates_older_ids_from_newer(
    ids_impl: ModuleType, timestamp: int, shard: int, sequence: int
) -> None:
    boundary = ids_impl.min_id_for(timestamp)
    assert compose_id(timestamp, shard, sequence) >= boundary
    if timestamp > EPOCH_MS:
        assert compose_id(timestamp - 1, shard, sequence) < boundary


def test_min_id_for_a_time_before_the_epoch_is_zero(ids_impl: ModuleType) -> None:
    assert ids_impl.min_id_for(EPOCH_MS - 1) == 0


def test_min_id_for_a_time_past_the_layout_raises(ids_impl: ModuleType) -> None:
    with pytest.raises(OverflowError):
        ids_impl.min_id_for(EPOCH_MS + MAX_TIMESTAMP_OFFSET_MS + 1)


@pytest.mark.parametrize("function", ["decode", "shard_of"])
def test_negative_id_is_rejected(ids_impl: ModuleType, function: str) -> None:
    with pytest.raises(ValueError):
        getattr(ids_impl, function)(-1)


@pytest.mark.parametrize("function", ["decode", "shard_of"])
def test_id_beyond_int64_is_rejected(ids_impl: ModuleType, function: str) -> None:
    with pytest.raises(OverflowError):
        getattr(ids_impl, function)(INT64_MAX + 1)


# --- the generator -------------------------------------------------------------------------


@pytest.mark.parametrize("shard", [-1, 8192])
def test_shard_out_of_range_is_rejected(ids_impl: ModuleType, shard: int) -> None:
    with pytest.raises(ValueError):
        ids_impl.IdGenerator(shard)


def test_shard_must_be_an_integer(ids_impl: ModuleType) -> None:
    with pytest.raises(TypeError):
        ids_impl.IdGenerator(1.5)


def test_negative_backwards_wait_is_rejected(ids_impl: ModuleType) -> None:
    with pytest.raises(ValueError):
        ids_impl.IdGenerator(0, max_backwards_wait_ms=-1)


def test_generator_reports_its_shard(ids_impl: ModuleType) -> None:
    assert ids_impl.IdGenerator(8191).shard == 8191


def test_ids_within_one_millisecond_count_the_sequence(ids_impl: ModuleType) -> None:
    generator = ids_impl.IdGenerator(3, clock=ScriptedClock(T, T, T))
    decoded = [ids_impl.decode(generator.next_id()) for _ in range(3)]
    assert decoded == [DecodedId(T, 3, 0), DecodedId(T, 3, 1), DecodedId(T, 3, 2)]


def test_new_millisecond_restarts_the_sequence(ids_impl: ModuleType) -> None:
    generator = ids_impl.IdGenerator(3, clock=ScriptedClock(T, T, T + 1))
    generator.next_id()
    generator.next_id()
    assert ids_impl.decode(generator.next_id()) == DecodedId(T + 1, 3, 0)


def test_a_worker_generator_puts_its_number_in_the_low_bits(ids_impl: ModuleType) -> None:
    generator = ids_impl.IdGenerator(3, clock=ScriptedClock(T, T, T + 1), worker=37)
    ids = [generator.next_id() for _ in range(3)]
    assert [(ids_impl.decode(i), worker_of(i)) for i in ids] == [
        (DecodedId(T, 3, 37), 37), (DecodedId(T, 3, (1 << 6) | 37), 37), (DecodedId(T + 1, 3, 37), 37)]


def test_a_worker_generator_waits_for_the_next_millisecond_after_its_16_ids(ids_impl: ModuleType) -> None:
    clock = ScriptedClock(*[T] * (MAX_WORKER_COUNTER + 1), T, T + 1)
    generator = ids_impl.IdGenerator(0, clock=clock, worker=5)
    ids = generator.next_ids(MAX_WORKER_COUNTER + 2)
    assert [ids_impl.decode(post_id).timestamp_ms for post_id in ids[-2:]] == [T, T + 1]


def test_two_workers_on_one_clock_never_issue_one_id(ids_impl: ModuleType) -> None:
    first = ids_impl.IdGenerator(4, clock=SteppingClock(T, 40, {}), worker=1)
    second = ids_impl.IdGenerator(4, clock=SteppingClock(T, 40, {}), worker=2)
    assert not set(first.next_ids(500).tolist()) & set(second.next_ids(500).tolist())


@pytest.mark.parametrize("worker", [-1, 64])
def test_worker_out_of_range_is_rejected(ids_impl: ModuleType, worker: int) -> None:
    with pytest.raises(ValueError, match="worker"):
        ids_impl.IdGenerator(0, worker=worker)


def test_exhausted_sequence_waits_for_the_next_millisecond(ids_impl: ModuleType) -> None:
    clock = ScriptedClock(*[T] * (MAX_SEQUENCE + 1), T, T, T + 1)
    generator = ids_impl.IdGenerator(0, clock=clock)
    ids = generator.next_ids(MAX_SEQUENCE + 2)
    assert [ids_impl.decode(post_id) for post_id in ids[-2:]] == [
        DecodedId(T, 0, MAX_SEQUENCE),
        DecodedId(T + 1, 0, 0),
    ]


def test_small_backwards_step_is_waited_out(ids_impl: ModuleType) -> None:
    generator = ids_impl.IdGenerator(0, clock=ScriptedClock(T, T - 3, T), max_backwards_wait_ms=50)
    generator.next_id()
    assert ids_impl.decode(generator.next_id()) == DecodedId(T, 0, 1)


def test_backwards_step_beyond_the_bound_raises(ids_impl: ModuleType) -> None:
    generator = ids_impl.IdGenerator(0, clock=ScriptedClock(T, T - 51), max_backwards_wait_ms=50)
    generator.next_id()
    with pytest.raises(ClockMovedBackwardsError):
        generator.next_id()


def test_clock_that_stays_behind_raises_once_the_wait_is_used_up(ids_impl: ModuleType) -> None:
    clock = ScriptedClock(T, T - 2, T - 2, T - 2)
    generator = ids_impl.IdGenerator(0, clock=clock, max_backwards_wait_ms=5)
    generator.next_id()
    with pytest.raises(ClockMovedBackwardsError):
        generator.next_id()
    assert clock.reads == 4  # slept 2 + 2 ms, then 2 more would pass the 5 ms bound


def test_generator_continues_without_duplicates_after_a_backwards_error(
    ids_impl: ModuleType,
) -> None:
    generator = ids_impl.IdGenerator(0, clock=ScriptedClock(T, T - 100, T))
    first = generator.next_id()
    with pytest.raises(ClockMovedBackwardsError):
        generator.next_id()
    assert generator.next_id() == first + 1


@pytest.mark.parametrize("reading", [EPOCH_MS - 1, EPOCH_MS + MAX_TIMESTAMP_OFFSET_MS + 1])
def test_clock_outside_the_layout_raises(ids_impl: ModuleType, reading: int) -> None:
    generator = ids_impl.IdGenerator(0, clock=ScriptedClock(reading))
    with pytest.raises(OverflowError):
        generator.next_id()


def test_last_millisecond_of_the_layout_still_gives_a_positive_int64(ids_impl: ModuleType) -> None:
    generator = ids_impl.IdGenerator(8191, clock=ScriptedClock(EPOCH_MS + MAX_TIMESTAMP_OFFSET_MS))
    post_id = generator.next_id()
    assert post_id == compose_id(EPOCH_MS + MAX_TIMESTAMP_OFFSET_MS, 8191, 0)
    assert 0 < post_id <= INT64_MAX


def test_next_ids_returns_an_int64_array_of_n_ids(ids_impl: ModuleType) -> None:
    ids = ids_impl.IdGenerator(0).next_ids(3)
    assert (type(ids), ids.typecode, len(ids)) == (array, "q", 3)


def test_next_ids_of_zero_is_empty(ids_impl: ModuleType) -> None:
    assert len(ids_impl.IdGenerator(0).next_ids(0)) == 0


def test_next_ids_of_a_negative_count_is_rejected(ids_impl: ModuleType) -> None:
    with pytest.raises(ValueError):
        ids_impl.IdGenerator(0).next_ids(-1)


def test_ids_on_the_real_clock_strictly_increase(ids_impl: ModuleType) -> None:
    generator = ids_impl.IdGenerator(7)
    ids = [generator.next_id() for _ in range(100)]
    ids.extend(generator.next_ids(5_000))  # more than a millisecond's worth
    ids.append(generator.next_id())
    assert all(older < newer for older, newer in pairwise(ids))


def test_ids_on_the_real_clock_carry_the_current_time(ids_impl: ModuleType) -> None:
    before = time.time_ns() // 1_000_000
    post_id = ids_impl.IdGenerator(7).next_id()
    after = time.time_ns() // 1_000_000
    assert before <= ids_impl.decode(post_id).timestamp_ms <= after


def test_ids_are_unique_across_threads(ids_impl: ModuleType) -> None:
    generator = ids_impl.IdGenerator(1)
    per_thread: list[list[int]] = [[] for _ in range(4)]

    def issue(out: list[int]) -> None:
        for _ in range(2_000):
            out.append(generator.next_id())
        out.extend(generator.next_ids(2_000))

    threads = [threading.Thread(target=issue, args=(out,)) for out in per_thread]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [post_id for out in per_thread for post_id in out]
    assert len(set(everything)) == len(everything) == 16_000


# --- the two implementations agree ---------------------------------------------------------


@st.composite
def clock_runs(draw: st.DrawFn) -> tuple[int, dict[int, int], list[int]]:
    """A stepping clock (often slower than the generator, so sequences run out) with a
    few jumps, and a run of calls (0: next_id, n > 0: next_ids(n))."""
    stride = draw(st.sampled_from([1, 3, 1_100, 3_000]))
    jumps = draw(st.dictionaries(st.integers(0, 3_000), st.integers(-4, 3), max_size=3))
    calls = draw(st.lists(st.one_of(st.sampled_from([0, 1_024, 2_049]), st.integers(1, 2_100)), min_size=1, max_size=5))
    return stride, jumps, calls


@settings(max_examples=60, deadline=None)
@given(run=clock_runs())
def test_implementations_issue_the_same_ids_on_the_same_clock(
    ids_pair: tuple[ModuleType, ModuleType], run: tuple[int, dict[int, int], list[int]]
) -> None:
    stride, jumps, calls = run
    outcomes = []
    for implementation in ids_pair:
        clock = SteppingClock(T, stride, jumps)
        generator = implementation.IdGenerator(9, clock=clock, max_backwards_wait_ms=4)
        issued: list[object] = []
        for count in calls:
            try:
                issued.append(generator.next_id() if count == 0 else generator.next_ids(count).tolist())
            except ClockMovedBackwardsError:
                issued.append(ClockMovedBackwardsError)
        outcomes.append((issued, clock.reads))
    assert outcomes[0] == outcomes[1]


@settings(max_examples=300, deadline=None)
@given(post_id=valid_ids)
def test_implementations_decode_alike(ids_pair: tuple[ModuleType, ModuleType], post_id: int) -> None:
    reference, compiled = ids_pair
    assert compiled.decode(post_id) == reference.decode(post_id)
