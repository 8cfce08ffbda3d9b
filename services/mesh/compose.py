"""docker-compose.yml, generated from the service registry.

The same deployment as `make run` with real images: postgres, redis,
envoyproxy/envoy and one container per service, each with a health check.
Envoy mounts envoy/envoy.yaml, the checked-in compose flavour of the gateway
config (PICTOR_ENVOY_CONFIG names another: `python -m services.mesh.envoy_config
--out FILE` writes one with this environment's rate limits). Run `make build`
first (the services' image and Envoy use build/gen).

Least privilege: the signing key lives in the `signing` volume, which only
`migrate` (it makes the key) and accounts mount; everyone else mounts `keys`
(the public JWKS). The `certs` container makes the mesh CA and one certificate
per identity (services.mesh.certs); the CA's key stays in `mesh-ca`, which no
service mounts, and each service (and its workers) mounts only `mesh-<service>`:
its own certificate and key and the CA's certificate. With the `tls` profile,
`envoy-tls` serves HTTPS with HSTS on 8443 (PICTOR_TLS_CERT, PICTOR_TLS_KEY).

    python -m services.mesh.compose [--check]
"""

from __future__ import annotations

import argparse

import yaml

from services.common.config import REPO_ROOT
from services.common.registry import GATEWAY, SERVICES, WORKERS, default_metrics_port, mesh_identities
from services.mesh.envoy_config import COMPOSE_MESH_DIR, COMPOSE_TLS_CERT, COMPOSE_TLS_KEY

CHECKED_IN = REPO_ROOT / "docker-compose.yml"
PROMETHEUS_CONFIG = REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml"
ENVOY_CONFIG_MOUNT = "${PICTOR_ENVOY_CONFIG:-./envoy/envoy.yaml}:/etc/envoy/envoy.yaml:ro"
# No default passwords: `docker compose up` refuses to start until .env (or the environment) sets them.
DB_PASSWORD = "${PICTOR_DB_PASSWORD:?set PICTOR_DB_PASSWORD (in .env) to a long random string}"
REDIS_PASSWORD = "${PICTOR_REDIS_PASSWORD:?set PICTOR_REDIS_PASSWORD (in .env) to a long random string}"
SHARED_ENV = {
    "PICTOR_DATABASE_URL": f"postgresql://postgres:{DB_PASSWORD}@postgres:5432/pictor",
    "PICTOR_REDIS_URL": f"redis://:{REDIS_PASSWORD}@redis:6379/0",
    "PICTOR_DATA_DIR": "/var/lib/pictor",
    "PICTOR_JWKS_FILE": "/etc/pictor/keys/jwks.json",
    "PICTOR_MESH_DIR": COMPOSE_MESH_DIR,
    # Where clients reach the gateway: the base of signed media URLs.
    "PICTOR_PUBLIC_URL": "http://localhost:8080",
    # Each service listens on all of its container's addresses and is reached by its service name.
    "PICTOR_BIND_HOST": "0.0.0.0",
    **{f"{spec.env_prefix}_HOST": spec.name for spec in SERVICES},
}
# The JWKS (read only) and the data directory (blobs, partial uploads), in every service and worker.
DATA_VOLUMES = ["keys:/etc/pictor/keys:ro", "media:/var/lib/pictor"]
# The signing key: made by migrate, read by accounts alone.
SIGNING_KEY = "/etc/pictor/signing/jwt_private.pem"
SIGNING_ENV = {"PICTOR_JWT_PRIVATE_KEY_FILE": SIGNING_KEY}
CERTS_DIR = "/var/lib/pictor-ca"
# Envoy's image runs as root unless told: as the images' user, it reads its mesh key (0600).
IMAGE_UID = "10001"


def mesh_volume(identity: str) -> str:
    return f"mesh-{identity}"


def mesh_mount(identity: str) -> str:
    return f"{mesh_volume(identity)}:{COMPOSE_MESH_DIR}:ro"


def build() -> dict:
    services: dict[str, dict] = {
        "postgres": {
            "image": "postgres:18",
            # Logical replication: moving shards while the platform runs (services.mesh.shards).
            "command": ["postgres", "-c", "wal_level=logical"],
            "environment": {"POSTGRES_PASSWORD": DB_PASSWORD, "POSTGRES_DB": "pictor"},
            "volumes": ["pgdata:/var/lib/postgresql"],
            "healthcheck": {"test": ["CMD-SHELL", "pg_isready -U postgres"], "interval": "2s", "retries": 30},
        },
        "redis": {
            "image": "redis:7",
            "command": ["redis-server", "--appendonly", "yes", "--requirepass", REDIS_PASSWORD],
            "environment": {"REDISCLI_AUTH": REDIS_PASSWORD},
            "volumes": ["redisdata:/data"],
            "healthcheck": {"test": ["CMD", "redis-cli", "ping"], "interval": "2s", "retries": 30},
        },
        # Applies migrations and creates the signing key, then exits.
        "migrate": {
            "build": ".",
            "command": ["python", "-m", "services.mesh.prepare"],
            "environment": {**SHARED_ENV, **SIGNING_ENV},
            "volumes": ["keys:/etc/pictor/keys", "signing:/etc/pictor/signing"],
            "depends_on": {"postgres": {"condition": "service_healthy"}},
        },
        # Makes the mesh CA and each identity's certificate (once), each into its own volume, then exits.
        "certs": {
            "build": ".",
            # Fresh volumes are root's: it writes as root and gives every file to the images' user.
            "user": "0",
            "environment": {"PICTOR_CERTS_OWNER": IMAGE_UID},
            "command": ["python", "-m", "services.mesh.certs", CERTS_DIR,
                        *(f"{identity}=/etc/pictor/{mesh_volume(identity)}" for identity in compose_identities())],
            "volumes": [f"mesh-ca:{CERTS_DIR}",
                        *(f"{mesh_volume(i)}:/etc/pictor/{mesh_volume(i)}" for i in compose_identities())],
        },
    }
    for spec in SERVICES:
        signs = spec.name == "accounts"
        services[spec.name] = {
            "build": ".",
            "command": ["python", "-m", spec.module],
            "environment": {**SHARED_ENV, **(SIGNING_ENV if signs else {}), "PICTOR_MESH_IDENTITY": spec.name},
            "volumes": [*DATA_VOLUMES, mesh_mount(spec.name), *(["signing:/etc/pictor/signing:ro"] if signs else [])],
            "expose": [str(spec.port), str(default_metrics_port(spec.name))],
            "healthcheck": {
                "test": ["CMD", "python", "-m", "services.mesh.healthcheck", f"127.0.0.1:{spec.port}",
                         spec.proto_services[0]],
                "interval": "5s", "retries": 10,
            },
            "depends_on": {
                "migrate": {"condition": "service_completed_successfully"},
                "certs": {"condition": "service_completed_successfully"},
                "redis": {"condition": "service_healthy"},
            },
        }
    for worker in WORKERS:
        services[worker.name] = {
            "build": ".",
            "command": ["python", "-m", worker.module],
            "environment": {**SHARED_ENV, "PICTOR_MESH_IDENTITY": worker.identity},
            # The data directory too: media's collector deletes blobs and partial uploads there.
            "volumes": [*DATA_VOLUMES, mesh_mount(worker.identity)],
            "expose": [str(default_metrics_port(worker.name))],
            "deploy": {"replicas": worker.replicas},
            "depends_on": {spec.name: {"condition": "service_healthy"} for spec in SERVICES},
        }
    envoy_volumes = ["./build/gen/pictor.pb:/etc/envoy/pictor.pb:ro",
                     "./build/gen/openapi.json:/etc/envoy/openapi.json:ro", "./web:/etc/pictor/web:ro",
                     "keys:/etc/pictor/keys:ro", mesh_mount(GATEWAY)]
    services["envoy"] = {
        "image": "envoyproxy/envoy:v1.40-latest",
        "user": IMAGE_UID,
        "command": ["envoy", "-c", "/etc/envoy/envoy.yaml", "--disable-hot-restart"],
        # Envoy's admin listens on the container's loopback only (docker compose exec envoy ...).
        "ports": ["8080:8080"],
        "volumes": [ENVOY_CONFIG_MOUNT, *envoy_volumes],
        "depends_on": {spec.name: {"condition": "service_healthy"} for spec in SERVICES},
    }
    # `docker compose --profile tls up`: the gateway over HTTPS with HSTS as well, on 8443.
    services["envoy-tls"] = {
        **services["envoy"],
        "profiles": ["tls"],
        "ports": ["8443:8443"],
        "volumes": ["./envoy/envoy-tls.yaml:/etc/envoy/envoy.yaml:ro", *envoy_volumes,
                    f"${{PICTOR_TLS_CERT:-./tls/cert.pem}}:{COMPOSE_TLS_CERT}:ro",
                    f"${{PICTOR_TLS_KEY:-./tls/key.pem}}:{COMPOSE_TLS_KEY}:ro"],
    }
    # `docker compose --profile monitoring up`: Prometheus scraping every process (deploy/prometheus)
    # and Grafana with the dashboard (deploy/grafana), on localhost:9090 and localhost:3000.
    services["prometheus"] = {
        "image": "prom/prometheus:v3.5.0",
        "profiles": ["monitoring"],
        "ports": ["127.0.0.1:9090:9090"],
        "volumes": ["./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro"],
    }
    services["grafana"] = {
        "image": "grafana/grafana:12.1.0",
        "profiles": ["monitoring"],
        "ports": ["127.0.0.1:3000:3000"],
        "volumes": ["./deploy/grafana/provisioning:/etc/grafana/provisioning:ro",
                    "./deploy/grafana/pictor.json:/var/lib/grafana/dashboards/pictor.json:ro"],
        "depends_on": ["prometheus"],
    }
    volumes = ["pgdata", "redisdata", "keys", "signing", "media", "mesh-ca",
               *(mesh_volume(i) for i in compose_identities())]
    return {"name": "pictor", "services": services, "volumes": {v: {} for v in volumes}}


def prometheus_config() -> dict:
    """Prometheus in compose: one job per service and worker, every replica found by its DNS name."""
    jobs = [{"job_name": process.name, "dns_sd_configs": [{"names": [process.name], "type": "A",
                                                           "port": default_metrics_port(process.name)}]}
            for process in (*SERVICES, *WORKERS)]
    return {"global": {"scrape_interval": "15s", "evaluation_interval": "15s"}, "scrape_configs": jobs}


def render_prometheus() -> str:
    return ("# Generated by `python -m services.mesh.compose` from services/common/registry.py; do not edit.\n"
            + yaml.safe_dump(prometheus_config(), sort_keys=False, width=120))


def compose_identities() -> list[str]:
    """The identities compose runs: no operator's tools inside it."""
    return [i for i in mesh_identities() if i != "tools"]


def render() -> str:
    header = (
        "# Generated by `python -m services.mesh.compose` from services/common/registry.py; do not edit.\n"
        "# `make build && docker compose up --build` runs the same platform as `make run`, on real images.\n"
    )
    return header + yaml.safe_dump(build(), sort_keys=False, width=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when docker-compose.yml is stale")
    files = {CHECKED_IN: render(), PROMETHEUS_CONFIG: render_prometheus()}
    if parser.parse_args().check:
        if any(not path.exists() or path.read_text() != text for path, text in files.items()):
            raise SystemExit("docker-compose.yml or deploy/prometheus/prometheus.yml is stale: run `make generate`")
        return
    PROMETHEUS_CONFIG.parent.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text)


if __name__ == "__main__":
    main()
