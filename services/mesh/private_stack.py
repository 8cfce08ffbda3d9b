"""A private stack: its own data folder and free loopback ports, so it never meets `make run`'s.

The test suite and `make fuzz` start one with services.mesh.launcher.Stack.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from services.common.config import RATE_LIMITS, parse_replicas
from services.common.registry import SERVICES, WORKERS

# The gateway's per-address and per-user limits, out of the way: the suite, the fuzzer and the
# benches call from one address as thousands of users. The rate limit tests set their own.
UNLIMITED = "1000000/1"


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def private_environment(data_dir: Path, replicas: str = "") -> dict[str, str]:
    """PICTOR_* variables for a private stack: its own folder and free ports (one per replica of each
    service, `replicas` as PICTOR_REPLICAS takes it), no rate limits but the listener's ceiling."""
    names = ["PICTOR_GATEWAY_PORT", "PICTOR_ENVOY_ADMIN_PORT", "PICTOR_POSTGRES_PORT", "PICTOR_REDIS_PORT",
             *(f"{spec.env_prefix}_PORT" for spec in SERVICES),
             *(f"{process.env_prefix}_METRICS_PORT" for process in (*SERVICES, *WORKERS))]
    env = dict(zip(names, map(str, free_ports(len(names))), strict=True))
    counts = parse_replicas(replicas, {**{s.name: 1 for s in SERVICES}, **{w.name: w.replicas for w in WORKERS}})
    for spec in SERVICES:
        if counts[spec.name] > 1:
            more = free_ports(counts[spec.name] - 1)
            env[f"{spec.env_prefix}_PORTS"] = ",".join(map(str, [env[f"{spec.env_prefix}_PORT"], *more]))
    servers = int(os.environ.get("PICTOR_POSTGRES_SERVERS") or 1)
    if servers > 1:
        env["PICTOR_POSTGRES_PORTS"] = ",".join(map(str, [env["PICTOR_POSTGRES_PORT"], *free_ports(servers - 1)]))
    if replicas:
        env["PICTOR_REPLICAS"] = replicas
    env["PICTOR_DATA_DIR"] = str(data_dir)
    env.update({f"PICTOR_RATE_LIMIT_{name.upper()}": UNLIMITED for name in RATE_LIMITS})
    return env
