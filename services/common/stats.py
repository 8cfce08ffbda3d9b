"""Percentiles for the benchmarks, by nearest rank: every figure printed is a latency that was measured."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100) of values, which need not be sorted."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def percentiles(values: Sequence[float], points: Iterable[int] = (50, 95, 99), digits: int = 2) -> dict[str, float]:
    """{"p50_ms": …, "p95_ms": …, "p99_ms": …, "max_ms": …} of latencies in milliseconds."""
    ordered = sorted(values)
    figures = {f"p{q}_ms": round(percentile(ordered, q), digits) for q in points}
    figures["max_ms"] = round(ordered[-1], digits)
    return figures
