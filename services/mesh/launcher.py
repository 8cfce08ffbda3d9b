"""Start the whole platform: `make run` (python -m services.mesh.launcher).

On embedded defaults it starts PostgreSQL, Redis, every service of the registry
and Envoy, all on loopback under PICTOR_DATA_DIR. Set PICTOR_DATABASE_URL or
PICTOR_REDIS_URL to use external servers instead of the embedded ones.

It then supervises them: a process that exits, whatever the reason, is
started again after a delay that doubles with each quick failure (0.5 s up to
30 s; back to 0.5 s once it ran 30 s), with a log line saying which process,
how it ended and when it comes back. Nothing else is stopped meanwhile: the
others answer UNAVAILABLE for what needs it until it is back. Only Ctrl-C or
SIGTERM stops the platform: everything it started, in reverse order.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import urllib.request
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.config import REPO_ROOT, Settings, format_shard_map, load_settings, metrics_replica_offset
from services.common.dependencies import Backoff
from services.common.mesh_tls import ensure_certificates, service_channel
from services.common.registry import SERVICES, WORKERS, ServiceSpec, WorkerSpec, by_name, mesh_identities
from services.mesh import embedded, envoy_config
from services.mesh.codegen import DEFAULT_OUT
from services.mesh.prepare import prepare

log = logging.getLogger("pictor")


def wait_serving(settings: Settings, spec: ServiceSpec, timeout_s: float, child: embedded.Child | None = None,
                 port: int | None = None) -> None:
    """Wait until the replica of `spec` on `port` (by default its first) says SERVING."""
    deadline = time.monotonic() + timeout_s
    port = settings.service_port(spec) if port is None else port
    address, service = f"{settings.service_hosts[spec.name]}:{port}", spec.proto_services[0]
    with service_channel(settings, spec.name, port=port, aio=False) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if child is not None and not child.running:
                raise RuntimeError(f"{child.name} exited:\n{child.log_tail()}")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=0.5)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                tail = child.log_tail() if child else ""
                raise TimeoutError(f"{service} at {address} not SERVING after {timeout_s}s\n{tail}")
            time.sleep(0.05)


def replica_name(service: str, replica: int) -> str:
    """A service's process name: the service's own for the first replica, `<service>-<n>` (n from 2) after."""
    return service if replica == 0 else f"{service}-{replica + 1}"


def parse_replica_name(name: str) -> tuple[str, int]:
    """(service, replica from 0) of a name replica_name made."""
    service, _, number = name.rpartition("-")
    return (service, int(number) - 1) if service and number.isdigit() else (name, 0)


class Stack:
    """The platform as a set of child processes; the same code serves `make run` and the tests."""

    SUPERVISE_EVERY_S = 0.1

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.children: list[embedded.Child] = []
        self.log_dir = settings.data_dir / "logs"
        self._lock = threading.RLock()
        self._supervisor: threading.Thread | None = None
        self._stopping = threading.Event()
        # child name -> when (monotonic) it starts again; its delays
        self._restart_at: dict[str, float] = {}
        self._backoff: dict[str, Backoff] = {}

    @property
    def env(self) -> dict[str, str]:
        s = self.settings
        env = dict(os.environ)
        env.update({
            "PICTOR_DATA_DIR": str(s.data_dir),
            "PICTOR_DATABASE_URL": s.database_url,
            "PICTOR_SHARD_MAP": format_shard_map(s.shard_map),
            "PICTOR_REDIS_URL": s.redis_url,
            "PICTOR_MESH_DIR": str(s.mesh_dir),
            "PYTHONUNBUFFERED": "1",
        })
        return env

    def child_env(self, identity: str, replica: str = "", port: int = 0) -> dict[str, str]:
        """A child's environment: its mesh identity, which replica it is and the port it listens on;
        the signing key's path for accounts alone (the others verify with the JWKS and are not told
        where the key is)."""
        env = {**self.env, "PICTOR_MESH_IDENTITY": identity, "PICTOR_REPLICA_NAME": replica}
        if port:
            env["PICTOR_LISTEN_PORT"] = str(port)
        else:
            env.pop("PICTOR_LISTEN_PORT", None)
        if identity == "accounts":
            env["PICTOR_JWT_PRIVATE_KEY_FILE"] = str(self.settings.jwt_private_key_file)
        else:
            env.pop("PICTOR_JWT_PRIVATE_KEY_FILE", None)
        return env

    def start(self) -> None:
        s = self.settings
        s.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # keys, database, blobs: the user's alone
        try:
            if not os.environ.get("PICTOR_DATABASE_URL"):
                for number, port in enumerate(s.postgres_ports, start=1):
                    self.children.append(embedded.start_postgres(s.data_dir, port, self.log_dir, number))
            if not os.environ.get("PICTOR_REDIS_URL"):
                if len(s.redis_ports) > 1:
                    self.children.extend(embedded.start_redis_cluster(s.data_dir, s.redis_ports, self.log_dir))
                else:
                    self.children.append(embedded.start_redis(s.data_dir, s.redis_port, self.log_dir))
            prepare(s)
            ensure_certificates(s.mesh_dir, mesh_identities())
            for spec in SERVICES:
                for replica in range(len(s.replica_ports[spec.name])):
                    self.start_service(spec, replica)
            for worker in WORKERS:
                for n in range(s.worker_replicas[worker.name]):
                    self.start_worker(worker, n + 1)
            self.start_gateway()
        except BaseException:
            self.stop()
            raise

    def start_service(self, spec: ServiceSpec, replica: int = 0) -> embedded.Child:
        """Start replica `replica` (from 0) of `spec` on its port; the first is named as the service
        ("posts"), the others with their number ("posts-2")."""
        port = self.settings.replica_ports[spec.name][replica]
        name = replica_name(spec.name, replica)
        env = {**self.child_env(spec.name, name, port),
               f"{spec.env_prefix}_METRICS_PORT": str(self.metrics_port(spec.name, replica + 1))}
        child = embedded.Child(name, [sys.executable, "-m", spec.module], self.log_dir, env=env, cwd=REPO_ROOT)
        self.children.append(child)
        wait_serving(self.settings, spec, 60, child, port=port)
        return child

    def metrics_port(self, name: str, number: int = 1) -> int:
        """The metrics port of service or worker `name`'s `number`-th replica (0: none)."""
        port = self.settings.metrics_ports.get(name, 0)
        return port + metrics_replica_offset(number) if port else 0

    def start_worker(self, worker: WorkerSpec, number: int) -> embedded.Child:
        name = f"{worker.name}-{number}"
        env = {**self.child_env(worker.identity, name),
               f"{worker.env_prefix}_METRICS_PORT": str(self.metrics_port(worker.name, number))}
        child = embedded.Child(name, [sys.executable, "-m", worker.module], self.log_dir, env=env, cwd=REPO_ROOT)
        self.children.append(child)
        return child

    def start_gateway(self) -> None:
        s = self.settings
        descriptor = DEFAULT_OUT / "pictor.pb"
        if not descriptor.exists():
            raise SystemExit("build/gen/pictor.pb is missing: run `make build`")
        config = s.data_dir / "envoy" / "envoy.yaml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(envoy_config.render(envoy_config.embedded_target(s, descriptor)))
        self.children.append(embedded.start_envoy(config, s.envoy_admin_port, self.log_dir))
        self._wait_clusters_healthy()

    def _wait_clusters_healthy(self, timeout_s: float = 15) -> None:
        url = f"http://127.0.0.1:{self.settings.envoy_admin_port}/clusters"
        deadline = time.monotonic() + timeout_s
        # Every replica of every service: Envoy's /clusters lists "cluster::host:port::health_flags::healthy".
        wanted = {f"{spec.name}::{address}" for spec in SERVICES for address in self.settings.replica_addresses(spec)}
        while True:
            with urllib.request.urlopen(url, timeout=1) as r:
                text = r.read().decode()
            healthy = {line.rsplit("::health_flags::", 1)[0] for line in text.splitlines()
                       if line.endswith("::health_flags::healthy")}
            if wanted <= healthy:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"Envoy sees unhealthy endpoints: {sorted(wanted - healthy)}")
            time.sleep(0.1)

    def child(self, name: str) -> embedded.Child:
        return next(c for c in self.children if c.name == name)

    def restart_service(self, name: str, sig: int = signal.SIGTERM) -> None:
        """Stop a service's replica ("posts", "posts-2") with `sig` (SIGKILL to simulate a crash), start
        it again and wait until Envoy routes to it."""
        with self._lock:
            child = self.child(name)
            child.stop(sig)
            self.children.remove(child)
        service, replica = parse_replica_name(name)
        self.start_service(by_name(service), replica)
        self._wait_clusters_healthy()

    # --- supervision ---------------------------------------------------------

    def supervise(self) -> None:
        """Restart, from now on, every child that exits (in a thread of its own)."""
        if self._supervisor is None:
            self._supervisor = threading.Thread(target=self._supervise, name="supervisor", daemon=True)
            self._supervisor.start()

    def _supervise(self) -> None:
        while not self._stopping.wait(self.SUPERVISE_EVERY_S):
            with self._lock:
                for child in list(self.children):
                    if child.supervised and not self._stopping.is_set():
                        self._look_after(child)

    def _look_after(self, child: embedded.Child) -> None:
        now = time.monotonic()
        restart_at = self._restart_at.get(child.name)
        if restart_at is None:
            if child.running:
                return
            lasted = now - child.started_at
            delay = self._backoff.setdefault(child.name, Backoff()).delay(lasted)
            self._restart_at[child.name] = now + delay
            log.warning("%s (pid %d) ended after %.1f s, %s; restarting it in %.1f s (restart %d); see %s",
                        child.name, child.proc.pid, lasted, embedded.describe_exit(child.proc.returncode), delay,
                        child.restarts + 1, child.log_path)
        elif now >= restart_at:
            del self._restart_at[child.name]
            child.restarts += 1
            child.spawn()
            log.warning("%s restarted (pid %d)", child.name, child.proc.pid)

    def stop(self) -> None:
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join()
        # Reverse order: gateway first, then services, then the data stores.
        with self._lock:
            for child in reversed(self.children):
                child.stop(signal.SIGINT if child.name.startswith("postgres") else signal.SIGTERM)
            self.children.clear()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = load_settings()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stack = Stack(settings)
    started = time.monotonic()
    stack.start()
    rel = os.path.relpath(settings.data_dir, Path.cwd())
    if rel.startswith(".."):
        rel = str(settings.data_dir)
    print(
        f"\nPictor is up in {time.monotonic() - started:.1f}s\n"
        f"  gateway (JSON and gRPC)  {settings.gateway_url}\n"
        f"  Envoy admin              http://127.0.0.1:{settings.envoy_admin_port}\n"
        + "".join(f"  {spec.name:<24} {', '.join(settings.replica_addresses(spec))} (gRPC)\n" for spec in SERVICES)
        + "".join(f"  {w.name:<24} worker{f' x{n}' if (n := settings.worker_replicas[w.name]) > 1 else ''}\n"
                  for w in WORKERS)
        + f"  metrics (Prometheus)     http://127.0.0.1:<port>/metrics, ports "
        f"{', '.join(f'{name} {port}' for name, port in settings.metrics_ports.items() if port) or 'none'}\n"
        + f"  data and logs            {rel}/\n"
        "Ctrl-C stops everything.\n",
        flush=True,
    )
    stack.supervise()
    while not stop.wait(1):
        pass
    print("stopping...", flush=True)
    stack.stop()
    print("stopped.", flush=True)


if __name__ == "__main__":
    main()
