"""The Kubernetes manifests: current, valid against the Kubernetes API schemas (offline, with the
schemas kubernetes-validate ships), naming every service and worker of the registry, and each
overlay still valid once its patches are applied."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest
import yaml

from services.common.registry import SERVICES, WORKERS, default_metrics_port
from services.mesh import kubernetes
from services.mesh.kubernetes import ROOT, dns_name

KUBERNETES_VERSION = "1.33"


def load(path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def base_resources() -> list[dict]:
    kustomization = yaml.safe_load((ROOT / "base" / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in load(ROOT / "base" / name)]


def find(resources: list[dict], kind: str, name: str) -> dict:
    matches = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def apply_patches(resources: list[dict], overlay: dict) -> list[dict]:
    """The overlay's JSON 6902 `replace` patches, applied as kustomize would; a path that is not
    there fails, as it fails in kustomize."""
    out = copy.deepcopy(resources)
    for patch in overlay["patches"]:
        target = patch["target"]
        chosen = [r for r in out if r["kind"] == target["kind"]
                  and target.get("name", r["metadata"]["name"]) == r["metadata"]["name"]]
        assert chosen, f"patch {target} selects nothing"
        for op in yaml.safe_load(patch["patch"]):
            assert op["op"] == "replace"
            *parents, leaf = op["path"].strip("/").split("/")
            for resource in chosen:
                node = resource
                for key in parents:
                    node = node[key]
                assert leaf in node, f"{op['path']} is not in {target}"
                node[leaf] = op["value"]
    for resource in out:
        resource["metadata"]["namespace"] = overlay["namespace"]
    return out


def test_checked_in_manifests_are_current():
    wanted = kubernetes.render()
    present = {p.relative_to(ROOT) for p in ROOT.rglob("*.yaml")}
    assert present == set(wanted), "run `make generate`"
    for path, text in wanted.items():
        assert (ROOT / path).read_text() == text, f"{path} is stale: run `make generate`"


@pytest.mark.parametrize("resource", base_resources(), ids=lambda r: f"{r['kind']}/{r['metadata']['name']}")
def test_every_base_resource_is_valid_against_the_kubernetes_schema(resource):
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", sorted(kubernetes.OVERLAYS))
def test_every_overlay_applies_to_the_base_and_stays_valid(overlay):
    spec = yaml.safe_load((ROOT / "overlays" / overlay / "kustomization.yaml").read_text())
    assert spec["resources"] == ["../../base"]
    for resource in apply_patches(base_resources(), spec):
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_every_service_has_a_deployment_service_autoscaler_and_disruption_budget():
    resources = base_resources()
    for spec in SERVICES:
        deployment = find(resources, "Deployment", spec.name)
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["command"] == ["python", "-m", spec.module]
        assert container["ports"] == [{"name": "grpc", "containerPort": spec.port},
                                      {"name": "metrics", "containerPort": default_metrics_port(spec.name)}]
        assert "services.mesh.healthcheck" in container["readinessProbe"]["exec"]["command"]
        assert find(resources, "Service", spec.name)["spec"]["ports"][0]["port"] == spec.port
        assert find(resources, "HorizontalPodAutoscaler", spec.name)["spec"]["scaleTargetRef"]["name"] == spec.name
        assert find(resources, "PodDisruptionBudget", spec.name)["spec"]["maxUnavailable"] == 1


def test_every_worker_has_a_deployment_with_its_replicas():
    resources = base_resources()
    for worker in WORKERS:
        deployment = find(resources, "Deployment", dns_name(worker.name))
        assert deployment["spec"]["replicas"] == worker.replicas
        assert deployment["spec"]["template"]["spec"]["containers"][0]["command"] == ["python", "-m", worker.module]


def test_services_reach_each_other_and_envoy_reaches_them_by_their_service_names():
    resources = base_resources()
    env = find(resources, "ConfigMap", "pictor-env")["data"]
    envoy = yaml.safe_load((kubernetes.REPO_ROOT / "envoy" / "envoy.yaml").read_text())
    upstreams = {endpoint["endpoint"]["address"]["socket_address"]["address"]:
                 endpoint["endpoint"]["address"]["socket_address"]["port_value"]
                 for cluster in envoy["static_resources"]["clusters"]
                 for group in cluster.get("load_assignment", {}).get("endpoints", [])
                 for endpoint in group["lb_endpoints"]}
    for spec in SERVICES:
        assert env[f"{spec.env_prefix}_HOST"] == spec.name
        assert upstreams[spec.name] == find(resources, "Service", spec.name)["spec"]["ports"][0]["port"]
    assert env["PICTOR_BIND_HOST"] == "0.0.0.0"


def test_only_accounts_and_the_migration_mount_the_signing_key():
    signers = set()
    for resource in base_resources():
        if resource["kind"] not in {"Deployment", "Job"}:
            continue
        volumes = resource["spec"]["template"]["spec"]["volumes"]
        if any(v.get("secret", {}).get("secretName") == kubernetes.SECRET_SIGNING_KEY for v in volumes):
            signers.add(resource["metadata"]["name"])
    assert signers == {"accounts", "migrate"}


def test_every_pod_runs_as_a_non_root_user_that_cannot_escalate():
    for resource in base_resources():
        if resource["kind"] not in {"Deployment", "Job"}:
            continue
        pod = resource["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"] + pod.get("initContainers", []):
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, container["name"]
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, container["name"]


def test_every_service_and_worker_pod_is_scraped_on_its_metrics_port():
    resources = base_resources()
    for name in [s.name for s in SERVICES] + [w.name for w in WORKERS]:
        template = find(resources, "Deployment", kubernetes.dns_name(name))["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(default_metrics_port(name))
        ports = template["spec"]["containers"][0]["ports"]
        assert {"name": "metrics", "containerPort": default_metrics_port(name)} in ports
