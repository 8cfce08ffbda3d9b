"""Mesh identity (issue 19): every service port is mutual TLS with the mesh CA's certificates.

The services are the registry's: a new one is covered here without being named. Which identity
may call which method for the mesh only: tests/e2e/test_authorization_matrix.py.
"""

from __future__ import annotations

import os
import stat

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.mesh_tls import ensure_certificates, mesh_channel, service_channel
from services.common.registry import SERVICES, by_name, mesh_identities

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


def test_the_mesh_keys_are_private_to_the_user(settings):
    assert stat.S_IMODE(os.stat(settings.mesh_dir).st_mode) == 0o700
    for identity in ("ca", *mesh_identities()):
        assert stat.S_IMODE(os.stat(settings.mesh_dir / f"{identity}.key").st_mode) == 0o600, identity
