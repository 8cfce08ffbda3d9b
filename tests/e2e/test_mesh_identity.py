"""Mesh identity (issue 19): every service port is mutual TLS with the mesh CA's certificates, and
the methods for the mesh only admit the callers their allow-list names.

The lists are the registry's (services.common.registry): a new service or method is covered here
without being named.
"""

from __future__ import annotations

import os
import stat

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.mesh_tls import ensure_certificates, mesh_channel, service_channel
from services.common.registry import SERVICES, by_name, internal_callers, mesh_identities

pytestmark = pytest.mark.e2e
HEALTH = "/grpc.health.v1.Health/Check"


def _check_health(channel: grpc.Channel, spec) -> grpc.StatusCode:
    try:
        health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=spec.proto_services[0]), timeout=5)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
def test_a_plain_channel_to_a_service_port_is_refused(settings, spec):
    with grpc.insecure_channel(settings.service_address(spec)) as channel:
        assert _check_health(channel, spec) == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
def test_tls_without_a_client_certificate_is_refused(settings, spec):
    """The caller trusts the mesh CA and checks the server's name, but presents no certificate."""
    credentials = grpc.ssl_channel_credentials(root_certificates=(settings.mesh_dir / "ca.crt").read_bytes())
    with grpc.secure_channel(settings.service_address(spec), credentials,
                             options=[("grpc.ssl_target_name_override", spec.name)]) as channel:
        assert _check_health(channel, spec) == grpc.StatusCode.UNAVAILABLE


def test_a_certificate_of_another_ca_is_refused(settings, tmp_path):
    """A certificate named like a service, but signed by a CA of the attacker's making."""
    ensure_certificates(tmp_path, ["feed"])
    (tmp_path / "ca.crt").write_bytes((settings.mesh_dir / "ca.crt").read_bytes())  # trusts the real server
    spec = by_name("posts")
    with mesh_channel(settings.service_address(spec), spec.name, tmp_path, "feed", aio=False) as channel:
        assert _check_health(channel, spec) == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
def test_a_mesh_certificate_is_answered(settings, spec):
    with service_channel(settings, spec.name, aio=False) as channel:
        assert _check_health(channel, spec) == grpc.StatusCode.OK


def _call(channel: grpc.Channel, path: str, streaming: bool) -> grpc.StatusCode:
    try:
        if streaming:
            channel.stream_unary(path)(iter(()), timeout=10)
        else:
            channel.unary_unary(path)(b"", timeout=10)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def _client_streaming(path: str) -> bool:
    import importlib

    _, service, method = path.split("/")
    for spec in SERVICES:
        for module in spec.proto_modules:
            found = importlib.import_module(module).DESCRIPTOR.services_by_name.get(service.rsplit(".", 1)[1])
            if found is not None and found.full_name == service:
                return found.methods_by_name[method].client_streaming
    raise KeyError(path)


def _server(path: str) -> str:
    service = path.split("/")[1]
    return next(s.name for s in SERVICES if service in s.proto_services)


@pytest.mark.parametrize("path", sorted(internal_callers()))
def test_a_mesh_only_method_refuses_identities_its_allow_list_does_not_name(settings, path):
    allowed = internal_callers()[path]
    refused = [i for i in mesh_identities() if i not in allowed]
    assert "gateway" in refused  # Envoy never calls a method for the mesh only
    server, streaming = _server(path), _client_streaming(path)
    for identity in refused:
        with service_channel(settings, server, identity, aio=False) as channel:
            assert _call(channel, path, streaming) == grpc.StatusCode.PERMISSION_DENIED, (path, identity)


@pytest.mark.parametrize("path", sorted(internal_callers()))
def test_a_mesh_only_method_answers_the_identities_its_allow_list_names(settings, path):
    server, streaming = _server(path), _client_streaming(path)
    for identity in sorted(internal_callers()[path]):
        with service_channel(settings, server, identity, aio=False) as channel:
            # An empty request: whatever the method says of it, it is not a refusal of the caller.
            code = _call(channel, path, streaming)
            assert code not in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAVAILABLE), (path, identity, code)


def test_the_mesh_keys_are_private_to_the_user(settings):
    assert stat.S_IMODE(os.stat(settings.mesh_dir).st_mode) == 0o700
    for identity in ("ca", *mesh_identities()):
        assert stat.S_IMODE(os.stat(settings.mesh_dir / f"{identity}.key").st_mode) == 0o600, identity
