"""What the mesh's wrapping costs a call, on real grpc.aio servers: `python -m services.mesh.wrapping_bench`.

Server side: the CPU a server process spends a call of a trivial method (it echoes its request),
measured from /proc, with
  - `bare`: no interceptor;
  - `per call`: the four wraps every service runs (metrics and trace, errors and the outage
    watch, request checks, caller check) as four interceptors, each building its wrapper on
    every call, as services did before services.common.handler_wraps;
  - `once`: the same four under `WrapOnce`, as services.common.server installs them.
Client side: the CPU the calling process spends a call, on a plain channel, on a `TracedChannel`
(every mesh channel), and on a channel with a client interceptor adding the same `traceparent`
(as mesh channels did before), each call made inside a trace.

BENCH_CALLS calls a round over 8 concurrent callers, BENCH_ROUNDS rounds with the modes in turn;
prints each mode's median µs a call and its difference from the bare figure of the same rounds.
Servers and client share the machine: run it on a quiet one (the load average is printed).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time

import grpc
from google.protobuf import wrappers_pb2

from services.common import tracing
from services.common.dependencies import Dependency, DependencyWatcher
from services.common.errors import ErrorInterceptor
from services.common.handler_wraps import WrapOnce
from services.common.mesh_tls import CallerCheckInterceptor
from services.common.metrics import MetricsInterceptor
from services.common.proc_times import proc_times
from services.common.request_checks import RequestCheckInterceptor

SERVICE, METHOD = "bench.Echo", "Echo"
PATH = f"/{SERVICE}/{METHOD}"
CALLERS = 8
SERVER_MODES = ("bare", "per call", "once")
CLIENT_MODES = ("plain", "traced", "intercepted")


def _wraps() -> list:
    async def never_down() -> None:
        return None

    # A dependency, so the error wrap runs each call under the outage watch, as in every service.
    watcher = DependencyWatcher([Dependency("bench", "BENCH_UNAVAILABLE", never_down)])
    # An insecure channel has no certificate: the caller check admits "no identity" here.
    return [MetricsInterceptor(), ErrorInterceptor(watcher), RequestCheckInterceptor(),
            CallerCheckInterceptor({PATH: frozenset({None})})]


async def serve(mode: str) -> None:
    interceptors = [] if mode == "bare" else _wraps() if mode == "per call" else [WrapOnce(*_wraps())]
    server = grpc.aio.server(interceptors=interceptors)

    async def echo(request: wrappers_pb2.BytesValue, context: grpc.aio.ServicerContext) -> wrappers_pb2.BytesValue:
        return request

    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {
        METHOD: grpc.unary_unary_rpc_method_handler(echo, request_deserializer=wrappers_pb2.BytesValue.FromString,
                                                    response_serializer=wrappers_pb2.BytesValue.SerializeToString)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()


class _Traceparent(grpc.aio.UnaryUnaryClientInterceptor):
    """What mesh channels did before `TracedChannel`: a client interceptor adding the header."""

    async def intercept_unary_unary(self, continuation, client_call_details, request):
        metadata = tracing.with_traceparent(client_call_details.metadata, tracing.current())
        return await continuation(client_call_details._replace(metadata=grpc.aio.Metadata(*metadata)), request)


def _channel(mode: str, port: int):
    address = f"127.0.0.1:{port}"
    if mode == "intercepted":
        return grpc.aio.insecure_channel(address, interceptors=[_Traceparent()])
    channel = grpc.aio.insecure_channel(address)
    return tracing.TracedChannel(channel) if mode == "traced" else channel


def _cpu_s(pid: int) -> float:
    times = proc_times(pid)
    assert times is not None, f"the server process {pid} is gone"
    return times.cpu_s


async def _calls(channel, calls: int) -> float:
    """Wall seconds for `calls` calls over CALLERS concurrent callers, inside one trace."""
    call = channel.unary_unary(PATH, request_serializer=wrappers_pb2.BytesValue.SerializeToString,
                               response_deserializer=wrappers_pb2.BytesValue.FromString)
    request = wrappers_pb2.BytesValue(value=b"x" * 64)
    tracing.enter(None)

    async def caller(count: int) -> None:
        for _ in range(count):
            await call(request, timeout=5)

    began = time.perf_counter()
    await asyncio.gather(*(caller(calls // CALLERS) for _ in range(CALLERS)))
    return time.perf_counter() - began


def _start(mode: str) -> tuple[subprocess.Popen, int]:
    server = subprocess.Popen([sys.executable, "-m", "services.mesh.wrapping_bench", "serve", mode],
                              stdout=subprocess.PIPE, text=True)
    return server, int(server.stdout.readline())


async def _server_round(mode: str, calls: int) -> float:
    server, port = _start(mode)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await _calls(channel, CALLERS * 50)  # connected and warm
            before = _cpu_s(server.pid)
            await _calls(channel, calls)
            return (_cpu_s(server.pid) - before) / calls * 1e6
    finally:
        server.kill()
        server.wait()


async def _client_round(mode: str, port: int, calls: int) -> float:
    channel = _channel(mode, port)
    try:
        await _calls(channel, CALLERS * 50)
        before = time.process_time()
        await _calls(channel, calls)
        return (time.process_time() - before) / calls * 1e6
    finally:
        await channel.close()


def _report(side: str, figures: dict[str, list[float]], base: str) -> None:
    base_us = statistics.median(figures[base])
    for mode, costs in figures.items():
        median = statistics.median(costs)
        extra = "" if mode == base else f"   {median - base_us:+6.1f} µs against {base}"
        print(f"{side} {mode:<12} median {median:6.1f} µs/call (rounds {min(costs):.1f}–{max(costs):.1f}){extra}")


async def bench(calls: int, rounds: int) -> None:
    server_figures: dict[str, list[float]] = {mode: [] for mode in SERVER_MODES}
    client_figures: dict[str, list[float]] = {mode: [] for mode in CLIENT_MODES}
    server, port = _start("bare")
    try:
        for number in range(1, rounds + 1):
            for mode in SERVER_MODES:
                server_figures[mode].append(await _server_round(mode, calls))
            for mode in CLIENT_MODES:
                client_figures[mode].append(await _client_round(mode, port, calls))
            print(f"round {number} of {rounds} done", file=sys.stderr, flush=True)
    finally:
        server.kill()
        server.wait()
    _report("server", server_figures, "bare")
    _report("client", client_figures, "plain")
    print(f"({rounds} rounds of {calls} calls over {CALLERS} callers; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})")


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        asyncio.run(serve(sys.argv[2]))
        return
    calls, rounds = int(os.environ.get("BENCH_CALLS", "16000")), int(os.environ.get("BENCH_ROUNDS", "5"))
    asyncio.run(bench(calls, rounds))


if __name__ == "__main__":
    main()
