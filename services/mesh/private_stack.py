"""A private stack: its own data folder and free loopback ports, so it never meets `make run`'s.

The test suite and `make fuzz` start one with services.mesh.launcher.Stack.
"""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

from services.common.config import RATE_LIMITS, REDIS_CLUSTER_BUS_OFFSET, metrics_replica_offset, parse_replicas
from services.common.registry import SERVICES, WORKERS

# The gateway's per-address and per-user limits, out of the way: the suite, the fuzzer and the
# benches call from one address as thousands of users. The rate limit tests set their own.
UNLIMITED = "1000000/1"


# Private stacks listen on ports from here up to the kernel's ephemeral range, clear of the default
# ports (services.common.config). NOTE: not in the ephemeral range (bind to port 0 picks there): a
# port free when picked there can be taken by any program's outgoing connection before the stack
# binds it, which made a private stack fail to start now and then.
PRIVATE_PORTS_FROM = 20_000
_handed_out: set[int] = set()


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default; elsewhere, the IANA range starts higher still


def free_ports(count: int, also_at: tuple[int, ...] = ()) -> list[int]:
    """`count` loopback ports nothing listens on, below the ephemeral range, none handed out before by
    this process (an earlier stack's, or one its caller already holds). With `also_at`, each port's
    partners at port + each offset are free and handed out too (a Redis Cluster node's bus, the
    metrics ports of a process's further replicas)."""
    offsets = (0, *also_at)
    candidates = [p for p in range(PRIVATE_PORTS_FROM, _ephemeral_start() - max(offsets))
                  if not any(p + o in _handed_out for o in offsets)]
    random.shuffle(candidates)
    found: list[int] = []
    taken: set[int] = set()  # the found ports' and their partners'
    for port in candidates:
        if len(found) == count:
            break
        group = {port + o for o in offsets}
        if not group & taken and all(map(bindable, group)):
            found.append(port)
            taken |= group
    if len(found) < count:
        raise RuntimeError(f"fewer than {count} free loopback ports from {PRIVATE_PORTS_FROM} up")
    _handed_out.update(taken)
    return found


def bindable(port: int) -> bool:
    """Whether a loopback port can be bound now (nothing listens on it or holds it)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def private_environment(data_dir: Path, replicas: str = "") -> dict[str, str]:
    """PICTOR_* variables for a private stack: its own folder and free ports (one per replica of each
    service, `replicas` as PICTOR_REPLICAS takes it), no rate limits but the listener's ceiling."""
    counts = parse_replicas(replicas, {**{s.name: 1 for s in SERVICES}, **{w.name: w.replicas for w in WORKERS}})
    names = ["PICTOR_GATEWAY_PORT", "PICTOR_ENVOY_ADMIN_PORT", "PICTOR_POSTGRES_PORT", "PICTOR_REDIS_PORT",
             *(f"{spec.env_prefix}_PORT" for spec in SERVICES)]
    env = dict(zip(names, map(str, free_ports(len(names))), strict=True))
    for spec in SERVICES:
        if counts[spec.name] > 1:
            more = free_ports(counts[spec.name] - 1)
            env[f"{spec.env_prefix}_PORTS"] = ",".join(map(str, [env[f"{spec.env_prefix}_PORT"], *more]))
    for process in (*SERVICES, *WORKERS):  # the further replicas' metrics ports are kept free with the first's
        offsets = tuple(metrics_replica_offset(n) for n in range(2, counts[process.name] + 1))
        env[f"{process.env_prefix}_METRICS_PORT"] = str(free_ports(1, also_at=offsets)[0])
    servers = int(os.environ.get("PICTOR_POSTGRES_SERVERS") or 1)
    if servers > 1:
        env["PICTOR_POSTGRES_PORTS"] = ",".join(map(str, [env["PICTOR_POSTGRES_PORT"], *free_ports(servers - 1)]))
    nodes = int(os.environ.get("PICTOR_REDIS_NODES") or 1)
    if nodes > 1:  # a Redis Cluster: each node's bus listens at its port + 10,000 too
        ports = free_ports(nodes, also_at=(REDIS_CLUSTER_BUS_OFFSET,))
        env["PICTOR_REDIS_PORT"], env["PICTOR_REDIS_PORTS"] = str(ports[0]), ",".join(map(str, ports))
    if replicas:
        env["PICTOR_REPLICAS"] = replicas
    env["PICTOR_DATA_DIR"] = str(data_dir)
    env.update({f"PICTOR_RATE_LIMIT_{name.upper()}": UNLIMITED for name in RATE_LIMITS})
    return env
