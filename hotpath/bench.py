"""Compiled vs reference, same input, same process: ``python -m hotpath.bench``.

Prints one JSON line per operation::

    {"op": ..., "unit": ..., "compiled_per_s": N, "reference_per_s": N, "ratio": N, ...}

``ratio`` is compiled_per_s / reference_per_s. Timings are the best of several runs.

Ids are measured two ways, because one generator is capped by its layout at 1,024 ids
per millisecond:

- ``ids.*.sustained``: ids per second from one generator on the real clock. Both
  implementations may reach the ceiling (``ceiling_per_s``); what it shows is that the
  compiled generator's limit is the scheme, not its own cost.
- ``ids.*.cost``: the cost of issuing an id, measured in bursts of 1,000 ids that each
  start on a fresh millisecond, so no burst ever exhausts a millisecond and waits:
  the time is all cost. ``*_per_s`` there is 1e9 / ns_per_id, a rate one generator
  would reach without the ceiling.
"""

from __future__ import annotations

import json
import random
import statistics
import time
import timeit
from array import array
from collections.abc import Callable
from typing import Any

from hotpath import _counters, _counters_py, _ids, _ids_py, _merge, _merge_py
from hotpath._ids_common import EPOCH_MS, MAX_SEQUENCE, SEQUENCE_BITS, TIMESTAMP_SHIFT
from hotpath._merge_common import pack_lists

IDS_PER_MS = MAX_SEQUENCE + 1
BURST = 1_000
BURSTS = 300
SUSTAINED_IDS = 500_000

LISTS = 200
IDS_PER_LIST = 50
PAGE_SIZE = 20
# A ranked page's candidates as Redis gives them: the pushed feed, the reader's own timeline and three
# followed celebrities' (about 250 members on the seeded dataset), cut to a window of 120.
MEMBER_LISTS = 5
MEMBERS_PER_LIST = 60
RANKED_CANDIDATES = 120

EVENTS = 1_000_000
EVENT_KEYS = 100_000
SHARDED_KEYS = 100_000
SHARDS_PER_KEY = 16


def emit(op: str, unit: str, compiled_s: float, reference_s: float, **extra: Any) -> None:
    """One JSON line; ``*_s`` are seconds per unit."""
    line = {
        "op": op,
        "unit": unit,
        "compiled_per_s": round(1 / compiled_s),
        "reference_per_s": round(1 / reference_s),
        "ratio": round(reference_s / compiled_s, 1),
        "ns_per_op_compiled": round(compiled_s * 1e9, 1),
        "ns_per_op_reference": round(reference_s * 1e9, 1),
        **extra,
    }
    print(json.dumps(line), flush=True)


def best_seconds(call: Callable[[], object], repeat: int = 3) -> float:
    """Seconds per call, best of ``repeat`` runs of about 0.2 s each."""
    timer = timeit.Timer(call)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeat, number=number)) / number


# --- ids ---------------------------------------------------------------------------------


def wait_for_next_ms() -> None:
    start = time.time_ns() // 1_000_000
    while time.time_ns() // 1_000_000 == start:
        pass


def burst_cost_seconds(issue_burst: Callable[[], object]) -> float:
    """Median seconds per id over bursts of BURST ids, each from a fresh millisecond."""
    per_id = []
    for _ in range(BURSTS):
        wait_for_next_ms()
        started = time.perf_counter_ns()
        issue_burst()
        per_id.append((time.perf_counter_ns() - started) / BURST / 1e9)
    return statistics.median(per_id)


def single_calls(generator: Any, count: int) -> Callable[[], None]:
    next_id = generator.next_id

    def issue() -> None:
        for _ in range(count):
            next_id()

    return issue


def bench_ids() -> None:
    ceiling = IDS_PER_MS * 1000
    costs = {}
    for implementation in (_ids, _ids_py):
        generator = implementation.IdGenerator(1)
        costs[implementation, "single"] = burst_cost_seconds(single_calls(generator, BURST))
        costs[implementation, "bulk"] = burst_cost_seconds(lambda generator=generator: generator.next_ids(BURST))
    emit("ids.next_id.cost", "id", costs[_ids, "single"], costs[_ids_py, "single"])
    emit("ids.next_ids.cost", "id", costs[_ids, "bulk"], costs[_ids_py, "bulk"])

    sustained = {}
    for implementation in (_ids, _ids_py):
        generator = implementation.IdGenerator(1)
        for style, issue in (
            ("single", single_calls(generator, SUSTAINED_IDS)),
            ("bulk", lambda generator=generator: generator.next_ids(SUSTAINED_IDS)),
        ):
            wait_for_next_ms()
            started = time.perf_counter()
            issue()
            sustained[implementation, style] = (time.perf_counter() - started) / SUSTAINED_IDS
    for style, op in (("single", "ids.next_id.sustained"), ("bulk", "ids.next_ids.sustained")):
        compiled_s, reference_s = sustained[_ids, style], sustained[_ids_py, style]
        emit(
            op,
            "id",
            compiled_s,
            reference_s,
            ceiling_per_s=ceiling,
            compiled_share_of_ceiling=round(1 / compiled_s / ceiling, 3),
            reference_share_of_ceiling=round(1 / reference_s / ceiling, 3),
        )


# --- merge -------------------------------------------------------------------------------


def feed_input(rng: random.Random) -> dict[str, Any]:
    """LISTS followed authors' timelines of IDS_PER_LIST posts over the last week."""
    now_ms = EPOCH_MS + 300 * 86_400_000
    week_ms = 7 * 86_400_000
    lists = []
    for author in range(LISTS):
        shard = author % 8192
        timeline = {
            ((now_ms - rng.randrange(week_ms) - EPOCH_MS) << TIMESTAMP_SHIFT)
            | (shard << SEQUENCE_BITS)
            | rng.randrange(IDS_PER_MS)
            for _ in range(IDS_PER_LIST)
        }
        lists.append(sorted(timeline, reverse=True))
    ids, offsets = pack_lists(lists)
    seen = rng.sample(list(ids), 100)
    elsewhere = [rng.getrandbits(62) for _ in range(50)]
    return {
        "ids": ids,
        "offsets": offsets,
        "affinity": array("d", [rng.random() for _ in ids]),
        "likes": array("q", [int(rng.paretovariate(1.2)) for _ in ids]),
        "comments": array("q", [int(rng.paretovariate(1.5)) for _ in ids]),
        "interest": array("d", [rng.random() for _ in ids]),
        "excluded": array("q", seen + elsewhere),
        "now_ms": now_ms,
    }


def bench_merge() -> None:
    feed = feed_input(random.Random(7))
    ids, offsets, excluded = feed["ids"], feed["offsets"], feed["excluded"]
    features = (feed["affinity"], feed["likes"], feed["comments"], feed["interest"])

    def chronological(implementation: Any, before_id: int | None = None) -> Any:
        return implementation.chronological_page(
            ids, offsets, limit=PAGE_SIZE, before_id=before_id, excluded=excluded
        )

    def ranked(implementation: Any, cursor: Any = None) -> Any:
        return implementation.ranked_page(
            ids,
            offsets,
            *features,
            limit=PAGE_SIZE,
            cursor=cursor,
            excluded=excluded,
            now_ms=feed["now_ms"],
        )

    # A later page: the cursor after three pages.
    before_id = cursor = None
    for _ in range(3):
        before_id = chronological(_merge, before_id).next_cursor
        cursor = ranked(_merge, cursor).next_cursor
    cases = {
        "merge.chronological": lambda implementation: chronological(implementation),
        "merge.chronological.page_4": lambda implementation: chronological(implementation, before_id),
        "merge.ranked": lambda implementation: ranked(implementation),
        "merge.ranked.page_4": lambda implementation: ranked(implementation, cursor),
    }
    for op, page_of in cases.items():
        if page_of(_merge) != page_of(_merge_py):
            raise AssertionError(f"{op}: the implementations disagree")
        emit(
            op,
            "page",
            best_seconds(lambda page_of=page_of: page_of(_merge)),
            best_seconds(lambda page_of=page_of: page_of(_merge_py)),
            lists=LISTS,
            ids_per_list=IDS_PER_LIST,
            page_size=PAGE_SIZE,
            excluded=len(excluded),
        )


def bench_members() -> None:
    rng = random.Random(5)
    ids = feed_input(rng)["ids"]
    lists = [[b"0"] + [f"{post_id}:{rng.randrange(50)}".encode() for post_id in
                       sorted(rng.sample(list(ids), MEMBERS_PER_LIST), reverse=True)]
             for _ in range(MEMBER_LISTS)]
    excluded_authors = {3, 17}

    def newest(implementation: Any) -> Any:
        return implementation.newest_members(lists, limit=RANKED_CANDIDATES, excluded_authors=excluded_authors)

    if newest(_merge) != newest(_merge_py):
        raise AssertionError("merge.newest_members: the implementations disagree")
    emit(
        "merge.newest_members",
        "page",
        best_seconds(lambda: newest(_merge)),
        best_seconds(lambda: newest(_merge_py)),
        lists=MEMBER_LISTS,
        members_per_list=MEMBERS_PER_LIST,
        limit=RANKED_CANDIDATES,
    )


# --- counters ----------------------------------------------------------------------------


def bench_counters() -> None:
    rng = random.Random(11)
    post_ids = [rng.getrandbits(62) for _ in range(EVENT_KEYS)]
    keys = array("q", rng.choices(post_ids, k=EVENTS))
    deltas = array("q", rng.choices((1, 1, 1, -1), k=EVENTS))
    if _counters.coalesce(keys, deltas) != _counters_py.coalesce(keys, deltas):
        raise AssertionError("counters.coalesce: the implementations disagree")
    emit(
        "counters.coalesce",
        "event",
        best_seconds(lambda: _counters.coalesce(keys, deltas)) / EVENTS,
        best_seconds(lambda: _counters_py.coalesce(keys, deltas)) / EVENTS,
        events=EVENTS,
        keys=EVENT_KEYS,
    )

    values = array("q", (rng.randrange(1_000_000) for _ in range(SHARDED_KEYS * SHARDS_PER_KEY)))
    if _counters.sum_sharded(values, SHARDS_PER_KEY) != _counters_py.sum_sharded(
        values, SHARDS_PER_KEY
    ):
        raise AssertionError("counters.sum_sharded: the implementations disagree")
    emit(
        "counters.sum_sharded",
        "key",
        best_seconds(lambda: _counters.sum_sharded(values, SHARDS_PER_KEY)) / SHARDED_KEYS,
        best_seconds(lambda: _counters_py.sum_sharded(values, SHARDS_PER_KEY)) / SHARDED_KEYS,
        keys=SHARDED_KEYS,
        shards_per_key=SHARDS_PER_KEY,
    )


def main() -> None:
    bench_ids()
    bench_merge()
    bench_members()
    bench_counters()


if __name__ == "__main__":
    main()
