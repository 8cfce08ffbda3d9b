"""Settings from PICTOR_* environment variables, with the embedded defaults.

Every endpoint can be pointed elsewhere, so the same services run against the
embedded stack (`make run`, the tests) and against real servers (compose).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from services.common.registry import (
    METRICS_PORT_OFFSET,
    SERVICES,
    WORKER_METRICS_BASE,
    WORKERS,
    ServiceSpec,
    default_metrics_port,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def env_str(name: str, default: str) -> str:
    """A PICTOR_* setting; unset or empty means the default."""
    value = os.environ.get(name, "")
    return value if value != "" else default


def env_int(name: str, default: int) -> int:
    """An integer PICTOR_* setting; a non-integer stops the process with a message naming it."""
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None


def env_float(name: str, default: float) -> float:
    """A numeric PICTOR_* setting (fractions allowed); anything else stops the process with a message naming it."""
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a number, got {raw!r}") from None


def events_claim_idle_ms() -> int:
    """PICTOR_EVENTS_CLAIM_IDLE_MS: how long an event may sit unacknowledged with a consumer (one
    that died, or whose handler failed) before another member of its group takes it over."""
    return env_int("PICTOR_EVENTS_CLAIM_IDLE_MS", 30_000)


@dataclass(frozen=True)
class ShardRange:
    """Logical shards first..last (inclusive) live in the database at `url`."""

    first: int
    last: int
    url: str


def format_shard_map(ranges: tuple[ShardRange, ...]) -> str:
    """The PICTOR_SHARD_MAP that parses back to `ranges`."""
    return json.dumps([{"shards": f"{r.first}-{r.last}", "url": r.url} for r in ranges])


def split_shards(logical_shards: int, urls: list[str]) -> tuple[ShardRange, ...]:
    """The logical shards in as even contiguous ranges as they go, one per database, in order."""
    bounds = [logical_shards * i // len(urls) for i in range(len(urls) + 1)]
    return tuple(ShardRange(bounds[i], bounds[i + 1] - 1, url) for i, url in enumerate(urls)
                 if bounds[i + 1] > bounds[i])


def with_placements(shard_map: tuple[ShardRange, ...], placements: dict[int, str]) -> tuple[ShardRange, ...]:
    """The shard map with the shards that were moved (`placements`: logical shard -> the database it
    lives in now, services.mesh.shards) at their new homes, in as few ranges as that leaves."""
    ranges: list[ShardRange] = []
    for base in shard_map:
        for shard in range(base.first, base.last + 1):
            url = placements.get(shard, base.url)
            if ranges and ranges[-1].url == url:
                ranges[-1] = ShardRange(ranges[-1].first, shard, url)
            else:
                ranges.append(ShardRange(shard, shard, url))
    return tuple(ranges)


def embedded_postgres_ports(first_port: int) -> tuple[int, ...]:
    """The ports of the embedded PostgreSQL servers: PICTOR_POSTGRES_SERVERS (1) of them, at
    PICTOR_POSTGRES_PORTS when given, else at PICTOR_POSTGRES_PORT and the ports after it."""
    return _embedded_ports("PICTOR_POSTGRES_SERVERS", "PICTOR_POSTGRES_PORTS", lambda _: first_port)


# A Redis Cluster node's bus listens at its port + this (fixed in Redis 6).
REDIS_CLUSTER_BUS_OFFSET = 10_000
# A process's replicas on one host serve their metrics this many ports apart (services.mesh.launcher).
METRICS_REPLICA_STRIDE = 100
REDIS_CLUSTER_FIRST_PORT = 17_000


def metrics_replica_offset(number: int) -> int:
    """How far from the first replica's metrics port replica `number` (1, 2, ...) of a process serves its
    metrics: the launcher binds there, and a private stack keeps those ports free."""
    return (number - 1) * METRICS_REPLICA_STRIDE


def embedded_redis_ports(first_port: int | None) -> tuple[int, ...]:
    """The ports of the embedded Redis: one server, or with PICTOR_REDIS_NODES over 1 that many
    masters of a Redis Cluster, at PICTOR_REDIS_PORTS when given, else at `first_port` (for a cluster,
    REDIS_CLUSTER_FIRST_PORT when None) and the ports after it. A cluster node's port leaves room for
    its bus (+ REDIS_CLUSTER_BUS_OFFSET)."""
    ports = _embedded_ports("PICTOR_REDIS_NODES", "PICTOR_REDIS_PORTS",
                            lambda nodes: first_port or (REDIS_CLUSTER_FIRST_PORT if nodes > 1 else 63799))
    if len(ports) > 1 and max(ports) + REDIS_CLUSTER_BUS_OFFSET > 65_535:
        raise SystemExit(f"a Redis Cluster node's port must leave room for its bus at port + "
                         f"{REDIS_CLUSTER_BUS_OFFSET}: {max(ports)} is too high")
    return ports


def _embedded_ports(count_variable: str, ports_variable: str, first_port: Callable[[int], int]) -> tuple[int, ...]:
    """The ports named by `ports_variable`, else `first_port(count)` and the ports after it."""
    servers = env_int(count_variable, 1)
    if not 1 <= servers <= 64:
        raise SystemExit(f"{count_variable} must be between 1 and 64, got {servers}")
    raw = env_str(ports_variable, "")
    try:
        given = [int(p) for p in raw.split(",") if p.strip()]
    except ValueError:
        raise SystemExit(f"{ports_variable} must be a comma-separated list of ports, got {raw!r}") from None
    if given and len(given) != servers:
        raise SystemExit(f"{ports_variable} names {len(given)} ports for {servers} {count_variable}")
    return tuple(given) if given else tuple(first_port(servers) + i for i in range(servers))


def parse_shard_map(raw: str, logical_shards: int, default_url: str) -> tuple[ShardRange, ...]:
    """Parse PICTOR_SHARD_MAP: a JSON list of {"shards": "0-3", "url": "..."}.

    Empty means every logical shard lives in the default database. The map must
    cover 0..logical_shards-1 exactly once. Changing the map moves schemas
    between databases; it never changes an id (the shard is part of the id).
    """
    if not raw:
        return (ShardRange(0, logical_shards - 1, default_url),)
    ranges = []
    for entry in json.loads(raw):
        first, _, last = str(entry["shards"]).partition("-")
        ranges.append(ShardRange(int(first), int(last or first), entry["url"]))
    ranges.sort(key=lambda r: r.first)
    expected = 0
    for r in ranges:
        if r.first != expected or r.last < r.first:
            raise SystemExit(f"PICTOR_SHARD_MAP must cover shards 0..{logical_shards - 1} in order without gaps")
        expected = r.last + 1
    if expected != logical_shards:
        raise SystemExit(f"PICTOR_SHARD_MAP covers {expected} shards, PICTOR_LOGICAL_SHARDS is {logical_shards}")
    return tuple(ranges)


# Replica i (from 0) of a service listens on its port + i * REPLICA_PORT_STEP unless
# PICTOR_<NAME>_PORTS lists the ports.
REPLICA_PORT_STEP = 100


def parse_replicas(raw: str, defaults: dict[str, int]) -> dict[str, int]:
    """PICTOR_REPLICAS: one number for every service and worker ("2"), or per name ("feed=3,posts=2",
    the others their default). Each count is 1..32."""
    counts, names = dict(defaults), list(defaults)
    if not raw.strip():
        return counts
    if "=" not in raw:
        entries = [(name, raw) for name in names]
    else:
        entries = []
        for entry in filter(None, (e.strip() for e in raw.split(","))):
            name, sep, count = entry.partition("=")
            if not sep or name.strip() not in counts:
                raise SystemExit(f"PICTOR_REPLICAS: {entry!r} is not NAME=COUNT for a service or worker "
                                 f"({', '.join(names)})")
            entries.append((name.strip(), count))
    for name, count in entries:
        try:
            counts[name] = int(count)
        except ValueError:
            raise SystemExit(f"PICTOR_REPLICAS: the count for {name} must be an integer, got {count.strip()!r}") from None
        if not 1 <= counts[name] <= 32:
            raise SystemExit(f"PICTOR_REPLICAS: the count for {name} must be between 1 and 32, got {counts[name]}")
    return counts


def replica_ports(spec: ServiceSpec, port: int, count: int) -> tuple[int, ...]:
    """The ports of a service's replicas: PICTOR_<NAME>_PORTS, or its port and then every REPLICA_PORT_STEP."""
    raw = env_str(f"{spec.env_prefix}_PORTS", "")
    if not raw:
        return tuple(port + i * REPLICA_PORT_STEP for i in range(count))
    try:
        ports = tuple(int(p) for p in raw.split(","))
    except ValueError:
        raise SystemExit(f"{spec.env_prefix}_PORTS must be comma-separated ports, got {raw!r}") from None
    if len(ports) < count:
        raise SystemExit(f"{spec.env_prefix}_PORTS names {len(ports)} ports for {count} replicas")
    return ports[:count]


@dataclass(frozen=True)
class Limit:
    """A token bucket: `count` requests per `seconds`, refilled whole every `seconds`."""

    count: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds}"


# The gateway's rate limits (Envoy's local_ratelimit; services.mesh.rate_limits): name ->
# (what it counts, its default). Each is set by PICTOR_RATE_LIMIT_<NAME> as "COUNT/SECONDS".
RATE_LIMITS: dict[str, tuple[str, Limit]] = {
    "sign_in_address": ("sign-ins (POST /v1/sessions) per client address", Limit(10, 60)),
    "sign_in_account": ("sign-ins per account: per name given in Envoy, per account id in accounts", Limit(5, 60)),
    "sign_up_address": ("sign-ups (POST /v1/accounts) per client address", Limit(5, 3600)),
    "uploads_user": ("uploads started (POST /v1/media, POST /v1/uploads) per signed-in user", Limit(30, 1800)),
    "writes_user": ("writes (every other POST, PUT, PATCH, DELETE) per signed-in user", Limit(300, 300)),
    "reads_address": ("reads (GET) per client address", Limit(3000, 60)),
}


def parse_limit(name: str, raw: str) -> Limit:
    count, _, seconds = raw.partition("/")
    try:
        limit = Limit(int(count), int(seconds))
    except ValueError:
        raise SystemExit(f"{name} must be COUNT/SECONDS (e.g. 10/60), got {raw!r}") from None
    if limit.count < 1 or limit.seconds < 1:
        raise SystemExit(f"{name} must be COUNT/SECONDS with both at least 1, got {raw!r}")
    return limit


def rate_limits() -> dict[str, Limit]:
    found = {}
    for name, (_, default) in RATE_LIMITS.items():
        variable = f"PICTOR_RATE_LIMIT_{name.upper()}"
        found[name] = parse_limit(variable, env_str(variable, str(default)))
    return found


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    redis_url: str
    gateway_host: str
    gateway_port: int
    envoy_admin_port: int
    postgres_port: int
    redis_port: int
    # The embedded PostgreSQL servers' ports (the first is postgres_port).
    postgres_ports: tuple[int, ...]
    # The embedded Redis's ports: one, or a Redis Cluster's masters (the first is redis_port).
    redis_ports: tuple[int, ...]
    logical_shards: int
    shard_map: tuple[ShardRange, ...]
    jwt_private_key_file: Path
    jwks_file: Path
    jwt_issuer: str
    access_token_ttl_s: int
    refresh_token_ttl_s: int
    gateway_rate_limit_per_s: int
    shutdown_grace_s: float
    # Where other processes reach each service (a container's DNS name in a deployment).
    service_hosts: dict[str, str] = field(default_factory=dict)
    service_ports: dict[str, int] = field(default_factory=dict)
    # Every replica's port of each service (the first is service_ports'), from PICTOR_REPLICAS.
    replica_ports: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # How many of each worker run (PICTOR_REPLICAS, or the older PICTOR_<WORKER>_REPLICAS).
    worker_replicas: dict[str, int] = field(default_factory=dict)
    # This process: which replica it is ("posts-2"; set by the launcher) and the port it listens on
    # (0: its service's first).
    replica: str = ""
    listen_port: int = 0
    # The address a service listens on when that is not the one it is reached at (0.0.0.0 in a
    # container); empty: its own host from service_hosts.
    bind_host: str = ""
    # Mesh identity (services.common.mesh_tls): the certificates' folder, and whose certificate
    # this process presents ("": none chosen; a service presents its own).
    mesh_dir: Path = Path()
    mesh_identity: str = ""
    # TLS at the gateway: the certificate chain and key Envoy serves (both, or neither).
    tls_cert_file: str = ""
    tls_key_file: str = ""
    rate_limits: dict[str, Limit] = field(default_factory=dict)
    # Each service's and worker's Prometheus endpoint (services.common.metrics); 0: none.
    metrics_ports: dict[str, int] = field(default_factory=dict)
    # The base of the URLs media, avatars and exports are fetched from (PICTOR_PUBLIC_URL; the
    # gateway's own URL when unset), without a trailing slash.
    public_url: str = ""

    def service_port(self, spec: ServiceSpec) -> int:
        return self.service_ports[spec.name]

    def listen_host(self, spec: ServiceSpec) -> str:
        return self.bind_host or self.service_hosts[spec.name]

    def service_address(self, spec: ServiceSpec) -> str:
        """host:port at which other processes reach the service (its first replica)."""
        return f"{self.service_hosts[spec.name]}:{self.service_ports[spec.name]}"

    def replica_addresses(self, spec: ServiceSpec) -> list[str]:
        """host:port of every replica of the service."""
        host = self.service_hosts[spec.name]
        return [f"{host}:{port}" for port in self.replica_ports.get(spec.name) or (self.service_ports[spec.name],)]

    @property
    def database_urls(self) -> list[str]:
        """Every physical database: the global schema's first, then the shard map's, each once."""
        return list(dict.fromkeys([self.database_url, *(r.url for r in self.shard_map)]))

    @property
    def process_name(self) -> str:
        """This process in logs and leases: its replica's name, else its mesh identity."""
        return self.replica or self.mesh_identity or "pictor"

    @property
    def gateway_url(self) -> str:
        scheme = "https" if self.tls_cert_file else "http"
        return f"{scheme}://{self.gateway_host}:{self.gateway_port}"

    def avatar_url(self, media_id: int | None) -> str:
        """The picture of an avatar (media's GetAvatarFile), "" for none."""
        return f"{self.public_url}/v1/avatars/{media_id}/150.webp" if media_id else ""

    def database_for_shard(self, shard: int) -> str:
        for r in self.shard_map:
            if r.first <= shard <= r.last:
                return r.url
        raise ValueError(f"logical shard {shard} is not in the shard map (0..{self.logical_shards - 1})")


def store_password(data_dir: Path, name: str) -> str:
    """The embedded `name` server's password ("postgres", "redis"): made on first use and kept in
    <data dir>/secrets/<name>.password, readable by the user running the stack alone. Every process
    of one data folder reads the same one (the file appears whole or not at all)."""
    folder = data_dir / "secrets"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{name}.password"
    if not path.exists():
        draft = folder / f".{name}.{os.getpid()}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(24))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another process of the stack made it first: theirs it is
        finally:
            draft.unlink()
    return path.read_text().strip()


def load_settings() -> Settings:
    data_dir = Path(env_str("PICTOR_DATA_DIR", str(REPO_ROOT / ".pictor"))).resolve()
    postgres_ports = embedded_postgres_ports(env_int("PICTOR_POSTGRES_PORT", 15432))
    postgres_port = postgres_ports[0]
    redis_ports = embedded_redis_ports(env_int("PICTOR_REDIS_PORT", 0) or None)
    redis_port = redis_ports[0]
    embedded_urls = [f"postgresql://postgres:{store_password(data_dir, 'postgres')}@127.0.0.1:{port}/pictor"
                     for port in postgres_ports]
    database_url = os.environ.get("PICTOR_DATABASE_URL") or embedded_urls[0]
    redis_url = os.environ.get("PICTOR_REDIS_URL") or (
        f"redis://:{store_password(data_dir, 'redis')}@127.0.0.1:{redis_port}/0"
        + ("?cluster=yes" if len(redis_ports) > 1 else ""))
    logical_shards = env_int("PICTOR_LOGICAL_SHARDS", 8)
    if not 1 <= logical_shards <= 8192:
        raise SystemExit("PICTOR_LOGICAL_SHARDS must be between 1 and 8192")
    # Several embedded servers and no map given: the shards split evenly between them.
    shard_map = env_str("PICTOR_SHARD_MAP", "")
    if not shard_map and len(embedded_urls) > 1 and not os.environ.get("PICTOR_DATABASE_URL"):
        shard_map = format_shard_map(split_shards(logical_shards, embedded_urls))
    keys = data_dir / "keys"
    tls_cert, tls_key = env_str("PICTOR_TLS_CERT", ""), env_str("PICTOR_TLS_KEY", "")
    if bool(tls_cert) != bool(tls_key):
        raise SystemExit("PICTOR_TLS_CERT and PICTOR_TLS_KEY go together: set both, or neither")
    # A worker's own PICTOR_<WORKER>_REPLICAS (the older setting) goes before PICTOR_REPLICAS.
    replicas = parse_replicas(env_str("PICTOR_REPLICAS", ""), {**{s.name: 1 for s in SERVICES},
                                                               **{w.name: w.replicas for w in WORKERS}})
    ports = {s.name: env_int(f"{s.env_prefix}_PORT", s.port) for s in SERVICES}
    worker_replicas = {w.name: env_int(f"{w.env_prefix}_REPLICAS", replicas[w.name]) for w in WORKERS}
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        redis_url=redis_url,
        gateway_host=env_str("PICTOR_GATEWAY_HOST", "127.0.0.1"),
        gateway_port=env_int("PICTOR_GATEWAY_PORT", 8080),
        envoy_admin_port=env_int("PICTOR_ENVOY_ADMIN_PORT", 9901),
        postgres_port=postgres_port,
        redis_port=redis_port,
        postgres_ports=postgres_ports,
        redis_ports=redis_ports,
        logical_shards=logical_shards,
        shard_map=parse_shard_map(shard_map, logical_shards, database_url),
        jwt_private_key_file=Path(env_str("PICTOR_JWT_PRIVATE_KEY_FILE", str(keys / "jwt_private.pem"))),
        jwks_file=Path(env_str("PICTOR_JWKS_FILE", str(keys / "jwks.json"))),
        jwt_issuer=env_str("PICTOR_JWT_ISSUER", "pictor"),
        access_token_ttl_s=env_int("PICTOR_ACCESS_TOKEN_TTL", 900),
        refresh_token_ttl_s=env_int("PICTOR_REFRESH_TOKEN_TTL", 30 * 24 * 3600),
        gateway_rate_limit_per_s=env_int("PICTOR_GATEWAY_RATE_LIMIT", 5000),
        shutdown_grace_s=float(env_str("PICTOR_SHUTDOWN_GRACE", "5")),
        service_hosts={s.name: env_str(f"{s.env_prefix}_HOST", "127.0.0.1") for s in SERVICES},
        service_ports=ports,
        replica_ports={s.name: replica_ports(s, ports[s.name], replicas[s.name]) for s in SERVICES},
        worker_replicas=worker_replicas,
        replica=env_str("PICTOR_REPLICA_NAME", ""),
        listen_port=env_int("PICTOR_LISTEN_PORT", 0),
        bind_host=env_str("PICTOR_BIND_HOST", ""),
        mesh_dir=Path(env_str("PICTOR_MESH_DIR", str(data_dir / "mesh"))),
        mesh_identity=env_str("PICTOR_MESH_IDENTITY", ""),
        tls_cert_file=str(Path(tls_cert).resolve()) if tls_cert else "",
        tls_key_file=str(Path(tls_key).resolve()) if tls_key else "",
        rate_limits=rate_limits(),
        metrics_ports=metrics_ports(),
    )
    return replace(settings, public_url=env_str("PICTOR_PUBLIC_URL", settings.gateway_url).rstrip("/"))


def metrics_ports() -> dict[str, int]:
    """Service or worker name -> its metrics port: PICTOR_<NAME>_METRICS_PORT, else derived from the
    registry (registry.default_metrics_port, PICTOR_METRICS_PORT_OFFSET, PICTOR_WORKER_METRICS_BASE)."""
    offset = env_int("PICTOR_METRICS_PORT_OFFSET", METRICS_PORT_OFFSET)
    base = env_int("PICTOR_WORKER_METRICS_BASE", WORKER_METRICS_BASE)
    return {p.name: env_int(f"{p.env_prefix}_METRICS_PORT", default_metrics_port(p.name, offset, base))
            for p in (*SERVICES, *WORKERS)}
