"""loadtest/locustfile.py: a MeshUser's gRPC call leaves the other simulated users running.

Locust runs every user on one gevent hub. gRPC's C core waits for a call outside it unless
grpc.experimental.gevent.init_gevent() was called, and then one user's call stalls them all, and the
HTTP requests in flight count that stall as their own latency.
"""

from __future__ import annotations

import subprocess
import sys

from services.common.config import REPO_ROOT

# A gRPC server whose one method answers after the seconds it is sent.
SLOW_SERVER = """
import time
from concurrent import futures
import grpc

def wait(request, context):
    time.sleep(float(request.decode()))
    return b"done"

server = grpc.server(futures.ThreadPoolExecutor(2))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
    "slow.Slow", {"Wait": grpc.unary_unary_rpc_method_handler(wait)}),))
print(server.add_insecure_port("127.0.0.1:0"), flush=True)
server.start()
server.wait_for_termination()
"""

# Loads the locustfile as Locust does, then counts a greenlet's 10 ms ticks during a 0.5 s call.
PROBE = """
import sys
import gevent
import grpc
import loadtest.locustfile  # noqa: F401 (what Locust imports, gevent's patches with it)

ticks = 0

def tick():
    global ticks
    while True:
        gevent.sleep(0.01)
        ticks += 1

gevent.spawn(tick)
gevent.sleep(0.05)
call = grpc.insecure_channel("127.0.0.1:" + sys.argv[1]).unary_unary("/slow.Slow/Wait")
before = ticks
assert call(b"0.5", timeout=10) == b"done"
print(ticks - before)
"""


def test_a_grpc_call_of_one_simulated_user_lets_the_others_run():
    server = subprocess.Popen([sys.executable, "-c", SLOW_SERVER], stdout=subprocess.PIPE, text=True)
    try:
        port = server.stdout.readline().strip()
        probe = subprocess.run([sys.executable, "-c", PROBE, port], cwd=REPO_ROOT, capture_output=True, text=True,
                               timeout=60, check=False)
        assert probe.returncode == 0, probe.stderr
        # About 50 while the hub runs; 0 when the call blocks the process (no init_gevent).
        assert int(probe.stdout.split()[-1]) >= 10, probe.stdout
    finally:
        server.kill()
        server.wait()
