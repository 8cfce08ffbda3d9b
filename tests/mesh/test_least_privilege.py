"""Least privilege, read from the code and the generated files (issue 19): who may call the
methods for the mesh only, who holds the signing key, who mounts which mesh certificate, and
that every channel a test or a bench opens goes through the mesh helpers.
"""

from __future__ import annotations

import re

import yaml

from services.common.config import REPO_ROOT, load_settings
from services.common.registry import SERVICES, WORKERS, internal_callers, mesh_identities, mesh_only_methods
from services.mesh import compose
from services.mesh.callgraph import Rpc, derive, derive_workers
from services.mesh.launcher import Stack


def _callers() -> dict[Rpc, set[str]]:
    """Who calls each RPC in the code: the handlers' services, and the workers as their service."""
    found: dict[Rpc, set[str]] = {}
    for source, targets in derive().items():
        for target in targets:
            found.setdefault(target, set()).add(source.service)
    identity = {w.name: w.identity for w in WORKERS}
    for worker, targets in derive_workers().items():
        for target in targets:
            found.setdefault(target, set()).add(identity[worker])
    return found


def test_every_mesh_only_method_declares_who_may_call_it():
    declared = internal_callers()
    assert sorted(declared) == mesh_only_methods()
    for path, callers in declared.items():
        assert callers, f"{path}: no caller allowed; say who calls it in its ServiceSpec.internal_callers"
        assert callers <= set(mesh_identities()) - {"gateway"}, (path, callers)


def test_every_call_the_code_makes_to_a_mesh_only_method_is_allowed():
    """A new call from one service to another's internal method fails here, not in production."""
    served_by = {service: spec.name for spec in SERVICES for service in spec.proto_services}
    declared = {Rpc(served_by[p.split("/")[1]], p.rsplit("/", 1)[1]): callers for p, callers in internal_callers().items()}
    missing = {str(rpc): sorted(callers - declared[rpc]) for rpc, callers in _callers().items()
               if rpc in declared and callers - declared[rpc]}
    assert missing == {}, f"callers missing from the allow-lists: {missing}"


def test_only_accounts_loads_the_signing_key():
    """The services sign nothing but accounts' tokens: every other verifies with the JWKS. Tools
    (benches) sign test tokens as the operator, outside the mesh."""
    loaders = []
    for path in (REPO_ROOT / "services").rglob("*.py"):
        if path.name == "bench.py" or "TokenSigner.from_files" not in path.read_text():
            continue
        loaders.append(path.relative_to(REPO_ROOT).as_posix())
    assert loaders == ["services/accounts/server.py"]


def test_the_launcher_tells_accounts_alone_where_the_signing_key_is(tmp_path, monkeypatch):
    monkeypatch.setenv("PICTOR_JWT_PRIVATE_KEY_FILE", str(tmp_path / "key.pem"))
    stack = Stack(load_settings())
    for identity in {*(s.name for s in SERVICES), *(w.identity for w in WORKERS)}:
        env = stack.child_env(identity)
        assert env["PICTOR_MESH_IDENTITY"] == identity
        assert ("PICTOR_JWT_PRIVATE_KEY_FILE" in env) == (identity == "accounts"), identity


def _compose() -> dict:
    return yaml.safe_load(compose.CHECKED_IN.read_text())["services"]


def _mounts(service: dict) -> dict[str, str]:
    """Volume (or host path) -> where it is mounted."""
    return dict(v.split(":")[:2] for v in service.get("volumes", []))


def test_compose_mounts_the_signing_key_in_accounts_and_its_maker_only():
    holders = sorted(name for name, s in _compose().items() if "signing" in _mounts(s))
    assert holders == ["accounts", "migrate"]
    for name, service in _compose().items():
        has_path = "PICTOR_JWT_PRIVATE_KEY_FILE" in (service.get("environment") or {})
        assert has_path == (name in ("accounts", "migrate")), name


def test_compose_mounts_each_container_its_own_mesh_certificate_only():
    services = _compose()
    identity = {**{s.name: s.name for s in SERVICES}, **{w.name: w.identity for w in WORKERS},
                "envoy": "gateway", "envoy-tls": "gateway"}
    for name, service in services.items():
        mesh = [volume for volume in _mounts(service) if volume.startswith("mesh-")]
        if name == "certs":
            assert "mesh-ca" in mesh
            continue
        assert mesh == ([f"mesh-{identity[name]}"] if name in identity else []), name
        assert all(v.endswith(":ro") for v in service["volumes"] if v.startswith("mesh-")), name


def test_kubernetes_mounts_each_pod_its_own_mesh_certificate_only():
    from services.mesh import kubernetes

    identity = {**{s.name: s.name for s in SERVICES}, **{w.name: w.identity for w in WORKERS}, "gateway": "gateway"}
    for resources in kubernetes.base().values():
        for resource in resources:
            if resource["kind"] != "Deployment":
                continue
            name = resource["metadata"]["labels"]["app.kubernetes.io/name"].replace("-", "_")
            secrets = [v["secret"]["secretName"] for v in resource["spec"]["template"]["spec"]["volumes"]
                       if "secret" in v and v["secret"]["secretName"].startswith("pictor-mesh-")]
            assert secrets == [kubernetes.mesh_secret(identity[name])], name


def test_the_certs_container_hands_each_identity_its_own_files():
    command = _compose()["certs"]["command"]
    assignments = dict(a.split("=") for a in command[4:])
    assert set(assignments) == set(mesh_identities()) - {"tools"}
    assert all(target == f"/etc/pictor/mesh-{identity}" for identity, target in assignments.items())


# Where channels may be opened directly: the helpers themselves, Locust's client of whatever
# gateway its -H names, and the tests that show a channel without a mesh certificate refused.
CHANNEL_MAKERS = {"services/common/mesh_tls.py", "loadtest/locustfile.py", "tests/e2e/test_mesh_identity.py",
                  "tests/e2e/test_authorization_matrix.py", "tests/mesh/test_least_privilege.py",
                  "tests/unit/test_slow_calls.py", "tests/unit/test_loadtest_grpc.py",  # a server of its own, outside the mesh
                  "tests/unit/test_handler_wraps.py", "services/mesh/wrapping_bench.py"}  # likewise


def test_tests_benches_and_tools_open_channels_through_the_mesh_helpers():
    """service_channel (a service port, with a mesh certificate) or gateway_channel: a plain
    channel to a service port would be refused anyway, and a helper keeps the identity explicit."""
    offenders = []
    for root in ("services", "tests", "loadtest"):
        for path in (REPO_ROOT / root).rglob("*.py"):
            rel = path.relative_to(REPO_ROOT).as_posix()
            if rel in CHANNEL_MAKERS:
                continue
            if re.search(r"\b(insecure_channel|secure_channel)\(", path.read_text()):
                offenders.append(rel)
    assert offenders == [], "use services.common.mesh_tls.service_channel or gateway_channel in: " + ", ".join(offenders)


def test_the_image_leaves_out_local_state_and_secrets_and_runs_as_no_root():
    ignored = {line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".pictor/", ".env", "tls/", "*.pem", ".git/"} <= ignored
    users = re.findall(r"^USER\s+(\S+)", (REPO_ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert users and users[-1] not in ("root", "0")


def test_compose_ships_no_password_and_envoy_admin_listens_on_loopback():
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    # Every password comes from the environment, and compose stops when it is unset.
    assert [value for value in re.findall(r"^\s*\w*PASSWORD\w*:\s*(.*)$", text, re.MULTILINE)
            if not value.startswith("${PICTOR_")] == []
    uses = re.findall(r"\$\{(PICTOR_\w*PASSWORD)(:\?|:-|-)?", text)
    assert uses and {guard for _, guard in uses} == {":?"}
    for config in ("envoy.yaml", "envoy-tls.yaml"):
        admin = yaml.safe_load((REPO_ROOT / "envoy" / config).read_text())["admin"]
        assert admin["address"]["socket_address"]["address"] == "127.0.0.1", config
