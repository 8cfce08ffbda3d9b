"""Kubernetes manifests (a Kustomize base and two overlays), generated from the service registry.

The same deployment as docker-compose.yml, on a cluster: one Deployment per service (with a
Service, a HorizontalPodAutoscaler and a PodDisruptionBudget) and per worker, the migration Job,
Envoy as the gateway, and PostgreSQL and Redis as external services reached through
ExternalName Services. What a cluster must provide is in deploy/kubernetes/README.md.

    python -m services.mesh.kubernetes [--check]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from services.common.auth import ensure_signing_key
from services.common.config import REPO_ROOT
from services.common.registry import GATEWAY, SERVICES, WORKERS, ServiceSpec, WorkerSpec, default_metrics_port
from services.mesh.envoy_config import COMPOSE_MESH_DIR

ROOT = REPO_ROOT / "deploy" / "kubernetes"
IMAGE = "pictor"  # overlays pin it (kustomize `images:`)
ENVOY_IMAGE = "envoyproxy/envoy:v1.40-latest"
GATEWAY_PORT = 8080
PART_OF = {"app.kubernetes.io/part-of": "pictor"}
DATA_DIR = "/var/lib/pictor"
KEYS_DIR = "/etc/pictor/keys"
# Settings that are not secret, for every pod: each service listens on all of its pod's addresses
# and is reached by its Service name, as in compose.
ENV = {
    "PICTOR_DATA_DIR": DATA_DIR,
    "PICTOR_JWT_PRIVATE_KEY_FILE": f"{KEYS_DIR}/private/jwt_private.pem",
    "PICTOR_JWKS_FILE": f"{KEYS_DIR}/jwks.json",
    "PICTOR_MESH_DIR": COMPOSE_MESH_DIR,
    "PICTOR_PUBLIC_URL": "http://localhost:8080",
    "PICTOR_BIND_HOST": "0.0.0.0",
    **{f"{spec.env_prefix}_HOST": spec.name for spec in SERVICES},
}
# Made by the operator (deploy/kubernetes/README.md): the database and Redis URLs with their
# passwords, the signing key (accounts alone mounts it) and the public keys that verify tokens.
SECRET_ENV = "pictor-secrets"
SECRET_SIGNING_KEY = "pictor-signing-key"
SECRET_JWKS = "pictor-jwks"
MEDIA_CLAIM = "pictor-media"
# Who may sign tokens: the one service that mounts the private key.
SIGNS_TOKENS = {"accounts"}


def mesh_secret(identity: str) -> str:
    """The Secret holding `identity`'s mesh certificate, key and the CA's certificate (made by the
    operator with services.mesh.certs: deploy/kubernetes/README.md); each pod mounts its own."""
    return f"pictor-mesh-{dns_name(identity)}"


def dns_name(name: str) -> str:
    return name.replace("_", "-")


def labels(name: str, component: str) -> dict:
    return {"app.kubernetes.io/name": dns_name(name), "app.kubernetes.io/component": component, **PART_OF}


def meta(name: str, component: str) -> dict:
    return {"name": dns_name(name), "labels": labels(name, component)}


def healthcheck(spec: ServiceSpec) -> dict:
    return {"exec": {"command": ["python", "-m", "services.mesh.healthcheck", f"127.0.0.1:{spec.port}",
                                 spec.proto_services[0]]}}


def pod(name: str, component: str, containers: list[dict], volumes: list[dict],
        init_containers: list[dict] | None = None, restart: str | None = None) -> dict:
    spec: dict = {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "automountServiceAccountToken": False,
        "containers": containers,
        "volumes": volumes,
    }
    if init_containers:
        spec["initContainers"] = init_containers
    if restart:
        spec["restartPolicy"] = restart
    metadata: dict = {"labels": labels(name, component)}
    if component in ("service", "worker"):
        # Prometheus' Kubernetes discovery (the prometheus.io/* convention) scrapes every pod.
        metadata["annotations"] = {"prometheus.io/scrape": "true", "prometheus.io/port": str(default_metrics_port(name)),
                                   "prometheus.io/path": "/metrics"}
    return {"metadata": metadata, "spec": spec}


def metrics_port(name: str) -> dict:
    return {"name": "metrics", "containerPort": default_metrics_port(name)}


def locked_down(container: dict) -> dict:
    """A container that cannot gain privileges or write outside its volumes."""
    return {**container, "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                             "capabilities": {"drop": ["ALL"]}}}


def pictor_container(name: str, module: str, *, signs: bool, memory: str = "512Mi", identity: str = "") -> dict:
    mounts = [{"name": "media", "mountPath": DATA_DIR}, {"name": "jwks", "mountPath": KEYS_DIR, "readOnly": True},
              {"name": "tmp", "mountPath": "/tmp"}]
    if identity:
        mounts.append({"name": "mesh", "mountPath": COMPOSE_MESH_DIR, "readOnly": True})
    if signs:
        mounts.append({"name": "signing-key", "mountPath": f"{KEYS_DIR}/private", "readOnly": True})
    return locked_down({
        "name": dns_name(name),
        "image": IMAGE,
        "command": ["python", "-m", module],
        "envFrom": [{"configMapRef": {"name": "pictor-env"}}, {"secretRef": {"name": SECRET_ENV}}],
        **({"env": [{"name": "PICTOR_MESH_IDENTITY", "value": identity}]} if identity else {}),
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": memory}},
        "volumeMounts": mounts,
    })


def mesh_volume(identity: str) -> dict:
    return {"name": "mesh", "secret": {"secretName": mesh_secret(identity), "defaultMode": 0o400}}


def pictor_volumes(*, signs: bool, identity: str = "") -> list[dict]:
    volumes = [{"name": "media", "persistentVolumeClaim": {"claimName": MEDIA_CLAIM}},
               {"name": "jwks", "secret": {"secretName": SECRET_JWKS}},
               {"name": "tmp", "emptyDir": {}}]
    if identity:
        volumes.append(mesh_volume(identity))
    if signs:
        volumes.append({"name": "signing-key", "secret": {"secretName": SECRET_SIGNING_KEY, "defaultMode": 0o400}})
    return volumes


def deployment(name: str, component: str, replicas: int, template: dict) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(name, component),
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app.kubernetes.io/name": dns_name(name)}},
                     "template": template}}


def service_resources(spec: ServiceSpec) -> list[dict]:
    signs = spec.name in SIGNS_TOKENS
    container = pictor_container(spec.name, spec.module, signs=signs,
                                 memory="2Gi" if spec.name == "media" else "512Mi", identity=spec.name)
    container["ports"] = [{"name": "grpc", "containerPort": spec.port}, metrics_port(spec.name)]
    container["readinessProbe"] = {**healthcheck(spec), "periodSeconds": 5, "timeoutSeconds": 3}
    container["livenessProbe"] = {**healthcheck(spec), "periodSeconds": 10, "timeoutSeconds": 3,
                                  "failureThreshold": 6}
    container["startupProbe"] = {**healthcheck(spec), "periodSeconds": 2, "failureThreshold": 60}
    selector = {"app.kubernetes.io/name": dns_name(spec.name)}
    return [
        deployment(spec.name, "service", 2, pod(spec.name, "service", [container],
                                                pictor_volumes(signs=signs, identity=spec.name))),
        {"apiVersion": "v1", "kind": "Service", "metadata": meta(spec.name, "service"),
         # Headless: the name resolves to every ready pod, so Envoy (STRICT_DNS) and the services'
         # channels (round_robin over the resolved addresses) balance each call over the replicas; a
         # virtual IP would pin each long-lived HTTP/2 connection, and so each caller, to one pod.
         "spec": {"clusterIP": "None", "selector": selector,
                  "ports": [{"name": "grpc", "port": spec.port, "targetPort": "grpc", "appProtocol": "grpc"}]}},
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta(spec.name, "service"),
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": dns_name(spec.name)},
                  # Each replica that mints ids leases one of 63 worker numbers (services.common.ids):
                  # seven services mint, so at most 8 each.
                  "minReplicas": 2, "maxReplicas": 8,
                  "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                      "type": "Utilization", "averageUtilization": 70}}}]}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta(spec.name, "service"),
         "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}}},
    ]


def worker_resources(worker: WorkerSpec) -> list[dict]:
    # The transcoder's child may take PICTOR_VIDEO_MEMORY_LIMIT_MB (3 GiB) of address space per job.
    container = pictor_container(worker.name, worker.module, signs=False,
                                 memory="4Gi" if worker.name == "video_transcoder" else "512Mi",
                                 identity=worker.identity)
    container["ports"] = [metrics_port(worker.name)]
    return [deployment(worker.name, "worker", worker.replicas,
                       pod(worker.name, "worker", [container], pictor_volumes(signs=False, identity=worker.identity)))]


def shared_resources() -> list[dict]:
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("pictor-env", "config"), "data": ENV},
        # Blobs and partial uploads, shared by every replica: a ReadWriteMany volume (NFS, CephFS, EFS...).
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta(MEDIA_CLAIM, "storage"),
         "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "100Gi"}}}},
        # PostgreSQL and Redis run outside the cluster's Pictor pods: overlays point these names at them.
        {"apiVersion": "v1", "kind": "Service", "metadata": meta("postgres", "external"),
         "spec": {"type": "ExternalName", "externalName": "postgres.example.internal"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": meta("redis", "external"),
         "spec": {"type": "ExternalName", "externalName": "redis.example.internal"}},
    ]


def migrate_job() -> list[dict]:
    container = pictor_container("migrate", "services.mesh.prepare", signs=True)
    template = pod("migrate", "migrate", [container], pictor_volumes(signs=True), restart="OnFailure")
    return [{"apiVersion": "batch/v1", "kind": "Job", "metadata": meta("migrate", "migrate"),
             "spec": {"backoffLimit": 6, "ttlSecondsAfterFinished": 3600, "template": template}}]


COPY_GATEWAY_FILES = ("cp /app/envoy/envoy.yaml /app/build/gen/pictor.pb /app/build/gen/openapi.json /etc/envoy/"
                      " && cp -r /app/web/. /etc/pictor/web/")


def gateway_resources() -> list[dict]:
    # The pictor image holds the gateway's files (envoy/envoy.yaml is the compose flavour, which
    # reaches services by name as here); an init container copies them next to Envoy.
    files = locked_down({
        "name": "config",
        "image": IMAGE,
        "command": ["sh", "-c", COPY_GATEWAY_FILES],
        "volumeMounts": [{"name": "envoy", "mountPath": "/etc/envoy"}, {"name": "web", "mountPath": "/etc/pictor/web"}],
    })
    envoy = locked_down({
        "name": "envoy",
        "image": ENVOY_IMAGE,
        "command": ["envoy", "-c", "/etc/envoy/envoy.yaml", "--disable-hot-restart"],
        "ports": [{"name": "http", "containerPort": GATEWAY_PORT}],
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 10},
        "resources": {"requests": {"cpu": "200m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "volumeMounts": [{"name": "envoy", "mountPath": "/etc/envoy", "readOnly": True},
                         {"name": "web", "mountPath": "/etc/pictor/web", "readOnly": True},
                         {"name": "jwks", "mountPath": KEYS_DIR, "readOnly": True},
                         {"name": "mesh", "mountPath": COMPOSE_MESH_DIR, "readOnly": True}],
    })
    volumes = [{"name": "envoy", "emptyDir": {}}, {"name": "web", "emptyDir": {}},
               {"name": "jwks", "secret": {"secretName": SECRET_JWKS}}, mesh_volume(GATEWAY)]
    selector = {"app.kubernetes.io/name": "gateway"}
    return [
        deployment("gateway", "gateway", 2, pod("gateway", "gateway", [envoy], volumes, init_containers=[files])),
        {"apiVersion": "v1", "kind": "Service", "metadata": meta("gateway", "gateway"),
         "spec": {"type": "ClusterIP", "selector": selector,
                  "ports": [{"name": "http", "port": GATEWAY_PORT, "targetPort": "http"}]}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta("gateway", "gateway"),
         "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}}},
    ]


def base() -> dict[str, list[dict]]:
    """File name (under base/) → the resources it holds."""
    files = {"shared.yaml": shared_resources(), "migrate.yaml": migrate_job(), "gateway.yaml": gateway_resources()}
    files.update({f"services/{dns_name(s.name)}.yaml": service_resources(s) for s in SERVICES})
    files.update({f"workers/{dns_name(w.name)}.yaml": worker_resources(w) for w in WORKERS})
    return files


def replace(path: str, value: object) -> str:
    return yaml.safe_dump([{"op": "replace", "path": path, "value": value}], sort_keys=False).rstrip()


# Overlays: JSON 6902 patches on the base, selected by kind (and name).
OVERLAYS = {
    # One replica of everything: for trying Pictor on a small cluster (kind, k3s, minikube).
    "small": {
        "namespace": "pictor",
        "images": [{"name": IMAGE, "newName": "pictor", "newTag": "latest"}],
        "patches": [
            {"target": {"kind": "Deployment"}, "patch": replace("/spec/replicas", 1)},
            {"target": {"kind": "HorizontalPodAutoscaler"}, "patch": replace("/spec/minReplicas", 1)},
            {"target": {"kind": "HorizontalPodAutoscaler"}, "patch": replace("/spec/maxReplicas", 2)},
        ],
    },
    # The base's two replicas and autoscaling, the gateway behind a cloud load balancer, the feed
    # (the hot path) allowed to grow furthest.
    "production": {
        "namespace": "pictor",
        "images": [{"name": IMAGE, "newName": "registry.example.com/pictor", "newTag": "0.1.0"}],
        "patches": [
            {"target": {"kind": "Service", "name": "gateway"}, "patch": replace("/spec/type", "LoadBalancer")},
            {"target": {"kind": "HorizontalPodAutoscaler", "name": "feed"}, "patch": replace("/spec/maxReplicas", 40)},
            {"target": {"kind": "ConfigMap", "name": "pictor-env"},
             "patch": replace("/data/PICTOR_PUBLIC_URL", "https://pictor.example.com")},
            {"target": {"kind": "Service", "name": "postgres"},
             "patch": replace("/spec/externalName", "pictor-db.example.com")},
            {"target": {"kind": "Service", "name": "redis"},
             "patch": replace("/spec/externalName", "pictor-redis.example.com")},
        ],
    },
}

HEADER = "# Generated by `python -m services.mesh.kubernetes` from services/common/registry.py; do not edit.\n"


def render() -> dict[Path, str]:
    """Relative path under deploy/kubernetes → file text."""
    out: dict[Path, str] = {}
    files = base()
    for name, resources in files.items():
        out[Path("base") / name] = HEADER + yaml.safe_dump_all(resources, sort_keys=False, width=120)
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     "labels": [{"pairs": PART_OF}], "resources": list(files)}
    out[Path("base/kustomization.yaml")] = HEADER + yaml.safe_dump(kustomization, sort_keys=False, width=120)
    for overlay, spec in OVERLAYS.items():
        doc = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
               "resources": ["../../base"], **spec}
        out[Path("overlays") / overlay / "kustomization.yaml"] = HEADER + yaml.safe_dump(doc, sort_keys=False,
                                                                                          width=120)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail when deploy/kubernetes is stale")
    parser.add_argument("--make-keys", metavar="DIR", type=Path,
                        help="write a new signing key (jwt_private.pem) and its public keys (jwks.json) into DIR")
    args = parser.parse_args()
    if args.make_keys:
        ensure_signing_key(args.make_keys / "jwt_private.pem", args.make_keys / "jwks.json")
        return
    check = args.check
    wanted = render()
    present = {p.relative_to(ROOT) for p in ROOT.rglob("*.yaml")} if ROOT.exists() else set()
    if check:
        stale = sorted(str(p) for p in wanted if not (ROOT / p).exists() or (ROOT / p).read_text() != wanted[p])
        extra = sorted(str(p) for p in present - set(wanted))
        if stale or extra:
            raise SystemExit(f"deploy/kubernetes is stale ({', '.join(stale + extra)}): run `make generate`")
        return
    for path in present - set(wanted):
        (ROOT / path).unlink()
    for path, text in wanted.items():
        (ROOT / path).parent.mkdir(parents=True, exist_ok=True)
        (ROOT / path).write_text(text)


if __name__ == "__main__":
    main()
