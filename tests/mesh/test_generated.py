"""Everything derived from protos/ and the service registry is current and valid."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from services.common.config import REPO_ROOT, load_settings
from services.common.registry import SERVICES, WORKERS
from services.mesh import codegen, compose, embedded, envoy_config, openapi


def test_built_stubs_and_descriptor_match_the_protos():
    assert codegen.stale_files(codegen.DEFAULT_OUT) == []


def test_built_openapi_document_matches_the_protos():
    assert openapi.OPENAPI_FILE.read_text() == openapi.render()


def test_every_http_rpc_service_is_in_the_descriptor():
    from google.protobuf import descriptor_pb2

    fds = descriptor_pb2.FileDescriptorSet.FromString((codegen.DEFAULT_OUT / "pictor.pb").read_bytes())
    services = {f"{f.package}.{s.name}" for f in fds.file for s in f.service}
    for spec in SERVICES:
        assert set(spec.proto_services) <= services


def test_checked_in_envoy_configs_are_current():
    assert envoy_config.CHECKED_IN.read_text() == envoy_config.render(envoy_config.compose_target())
    assert envoy_config.CHECKED_IN_TLS.read_text() == envoy_config.render(envoy_config.compose_target(tls=True))


def test_gateway_compresses_only_json_and_sees_it_after_transcoding():
    filters = [f["name"] for f in envoy_config._http_filters(envoy_config.compose_target())]
    compressors = [n for n in filters if n.startswith("envoy.filters.http.compressor.")]
    assert compressors == ["envoy.filters.http.compressor.brotli", "envoy.filters.http.compressor.gzip"]
    # Response filters run in reverse order: the transcoder's JSON reaches the compressors.
    assert max(filters.index(n) for n in compressors) < filters.index("envoy.filters.http.grpc_json_transcoder")
    for f in envoy_config._compressors():
        # Server-sent events must reach the client as they are written, never held for a compressor.
        assert f["typed_config"]["response_direction_config"]["common_config"]["content_type"] == ["application/json"]


def test_checked_in_compose_file_is_current():
    assert compose.CHECKED_IN.read_text() == compose.render()
    assert compose.PROMETHEUS_CONFIG.read_text() == compose.render_prometheus()


def test_compose_names_every_service_and_mounts_the_envoy_config():
    doc = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    services = doc["services"]
    for spec in SERVICES:
        assert services[spec.name]["command"] == ["python", "-m", spec.module]
        assert "healthcheck" in services[spec.name]
    assert {"postgres", "redis", "envoy"} <= set(services)
    assert services["envoy"]["image"].startswith("envoyproxy/envoy:")
    assert compose.ENVOY_CONFIG_MOUNT in services["envoy"]["volumes"]
    assert compose.ENVOY_CONFIG_MOUNT.startswith("${PICTOR_ENVOY_CONFIG:-./envoy/envoy.yaml}:")


def test_compose_and_embedded_configs_differ_only_in_addresses_and_paths(tmp_path):
    settings = load_settings()
    loopback = envoy_config.embedded_target(settings, tmp_path / "pictor.pb")
    embedded_cfg = envoy_config.build(loopback)
    # The OpenAPI document's and the web files' paths are in routes (direct responses read them), and
    # the origin of media's URLs in the web files' CSP.
    compose_cfg = envoy_config.build(envoy_config.Target(**{**envoy_config.compose_target().__dict__,
                                                            "openapi": loopback.openapi, "web_root": loopback.web_root,
                                                            "media_origin": loopback.media_origin}))
    http = lambda cfg: cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    assert http(embedded_cfg)["typed_config"]["route_config"] == http(compose_cfg)["typed_config"]["route_config"]
    assert [c["name"] for c in embedded_cfg["static_resources"]["clusters"]] == [s.name for s in SERVICES]


def test_envoy_validates_every_flavour(tmp_path):
    settings = load_settings()
    jwks = tmp_path / "jwks.json"
    from services.common.auth import ensure_signing_key
    from services.common.mesh_tls import ensure_certificates

    ensure_signing_key(tmp_path / "key.pem", jwks)
    ensure_certificates(tmp_path / "mesh", ["gateway", "localhost"])
    files = {"jwks": str(jwks), "mesh_cert": str(tmp_path / "mesh/gateway.crt"),
             "mesh_key": str(tmp_path / "mesh/gateway.key"), "mesh_ca": str(tmp_path / "mesh/ca.crt")}
    target = envoy_config.embedded_target(settings, codegen.DEFAULT_OUT / "pictor.pb")
    target = envoy_config.Target(**{**target.__dict__, **files})
    tls = {"tls_cert": str(tmp_path / "mesh/localhost.crt"), "tls_key": str(tmp_path / "mesh/localhost.key")}
    for name, t in (("embedded", target),
                    ("embedded-tls", envoy_config.Target(**{**target.__dict__, **tls})),
                    ("embedded-otlp", envoy_config.Target(**{**target.__dict__,
                                                             "otlp_endpoint": "http://127.0.0.1:4317"})),
                    *((f"compose-{tls_on}", envoy_config.Target(**{
                        **envoy_config.compose_target(tls=tls_on).__dict__, **files,
                        "descriptor": target.descriptor, "openapi": target.openapi, "web_root": target.web_root,
                        **(tls if tls_on else {})})) for tls_on in (False, True))):
        path = tmp_path / f"{name}.yaml"
        path.write_text(envoy_config.render(t))
        result = embedded.validate_envoy_config(path)
        assert result.returncode == 0, name + result.stdout + result.stderr


def test_every_service_module_exists():
    for spec in SERVICES:
        assert (REPO_ROOT / Path(*spec.module.split("."))).with_suffix(".py").is_file()


def test_every_web_file_has_a_route_and_compose_mounts_them():
    routes = envoy_config._web_routes(envoy_config.compose_target())
    served = {r["match"]["path"]: r["direct_response"]["body"]["filename"] for r in routes}
    assert served["/"] == "/etc/pictor/web/index.html"
    for f in envoy_config.web_files():
        assert served[f"/{f.as_posix()}"] == f"/etc/pictor/web/{f.as_posix()}"
    doc = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    assert "./web:/etc/pictor/web:ro" in doc["services"]["envoy"]["volumes"]


def test_compose_containers_reach_each_other_by_service_name_and_listen_on_every_address(monkeypatch):
    doc = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    for name in [spec.name for spec in SERVICES] + [worker.name for worker in WORKERS]:
        env = doc["services"][name]["environment"]
        for key in [k for k in os.environ if k.startswith("PICTOR_")]:  # a container has only its own settings
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, str(value))
        settings = load_settings()
        for spec in SERVICES:
            assert settings.service_address(spec) == f"{spec.name}:{spec.port}", name
            assert settings.listen_host(spec) == "0.0.0.0", name
