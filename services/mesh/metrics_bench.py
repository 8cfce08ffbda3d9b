"""What the metrics and tracing add to each call: `python -m services.mesh.metrics_bench`.

Times, per call, the work services.common.metrics.MetricsInterceptor adds around a handler
(trace context from the metadata, in-flight gauge, histogram, per-code counter) and the work
a mesh channel adds to an outbound call (the traceparent metadata: services.common.tracing), each over
BENCH_CALLS calls, in rounds; prints the median and p99 of the rounds' per-call cost, and the
load average (a busy machine inflates every figure).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time

from services.common import metrics, tracing

METADATA = (("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            ("authorization", "Bearer x"), ("grpc-accept-encoding", "gzip"))


class _Context:
    def code(self) -> None:
        return None


def _per_call_us(run, calls: int, rounds: int) -> tuple[float, float]:
    costs = []
    for _ in range(rounds):
        began = time.perf_counter()
        run(calls)
        costs.append((time.perf_counter() - began) / calls * 1e6)
    costs.sort()
    return statistics.median(costs), costs[min(len(costs) - 1, int(len(costs) * 0.99))]


def server_side(calls: int) -> None:
    method = metrics._MethodMetrics("/pictor.feed.v1.FeedService/GetFeed", slow_s=1.0)
    context = _Context()
    for _ in range(calls):
        parent = tracing.incoming(METADATA)
        with metrics._Observed(method, context, parent):
            pass


def client_side(calls: int) -> None:
    metadata, context = (("authorization", "Bearer x"),), tracing.current()
    for _ in range(calls):
        tracing.with_traceparent(metadata, context)


def main() -> None:
    calls, rounds = int(os.environ.get("BENCH_CALLS", "10000")), int(os.environ.get("BENCH_ROUNDS", "50"))

    async def in_a_call() -> None:
        tracing.enter(None)
        for name, run in (("server interceptor (metrics + trace context)", server_side),
                          ("mesh channel (traceparent out)", client_side)):
            median, p99 = _per_call_us(run, calls, rounds)
            print(f"{name:<48} median {median:6.2f} µs/call   p99 {p99:6.2f} µs/call")

    asyncio.run(in_a_call())
    print(f"({rounds} rounds of {calls} calls; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})")


if __name__ == "__main__":
    main()
