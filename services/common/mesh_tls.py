"""Mesh identity: mutual TLS between Envoy and the services, and between services.

A private certificate authority (made on first run, or by `python -m services.mesh.certs` for
compose) signs one certificate per identity of the mesh: each service of the registry (its
workers use their service's), the gateway (Envoy) and `mesh` (the relay). A certificate names
its identity in its common name and as a DNS name; clients verify the server against the
service's name (`ssl_target_name_override`), so one certificate serves loopback and compose's
DNS names alike.

Every service port requires a client certificate from this CA: a plain channel, or TLS without
a certificate, is refused in the handshake. Methods for the mesh only (no JSON route, see
registry.mesh_only_methods) also check which identity calls them against the allow-list the
registry declares next to the service (`ServiceSpec.internal_callers`), and answer
PERMISSION_DENIED to any other.

Files (under PICTOR_MESH_DIR, by default <data dir>/mesh, 0700): ca.crt, ca.key (the CA's key:
only the certificate maker needs it; compose keeps it in a volume no service mounts), and
<identity>.crt / <identity>.key (0600).

Tests, benches and tools open channels with the helpers here only: `service_channel` to a
service's port (mutual TLS, as `tools` unless they say whom they act as), `gateway_channel`
to the gateway (the outside's way in: plain, or TLS when the gateway serves it).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.common import tracing
from services.common.config import Settings
from services.common.files import write_atomically
from services.common.handler_wraps import HandlerWrap
from services.common.registry import TOOLS

CA_NAME = "ca"
VALID_DAYS = 3650
# The peer's identity, as grpc reads it from a verified client certificate.
IDENTITY_PROPERTY = "x509_common_name"


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pictor mesh"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ensure_ca(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key_file, cert_file = directory / f"{CA_NAME}.key", directory / f"{CA_NAME}.crt"
    if key_file.exists() and cert_file.exists():
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key, x509.load_pem_x509_certificate(cert_file.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(_name("pictor mesh CA")).issuer_name(_name("pictor mesh CA"))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .sign(key, hashes.SHA256()))
    write_atomically(key_file, _key_pem(key), mode=0o600)
    write_atomically(cert_file, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return key, cert


def issue(directory: Path, identity: str, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate) -> None:
    """<identity>.crt and .key, signed by the CA: a server and a client certificate at once."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    names: list[x509.GeneralName] = [x509.DNSName(identity)]
    cert = (x509.CertificateBuilder()
            .subject_name(_name(identity)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                                                  x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    write_atomically(directory / f"{identity}.key", _key_pem(key), mode=0o600)
    write_atomically(directory / f"{identity}.crt", cert.public_bytes(serialization.Encoding.PEM), mode=0o644)


def ensure_certificates(directory: Path, identities: Iterable[str]) -> None:
    """The CA and a certificate for each identity, made unless they exist. Idempotent; one process
    (the launcher, compose's `certs` container) makes them before the others start."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    ca_key, ca_cert = _ensure_ca(directory)
    for identity in identities:
        if not (directory / f"{identity}.crt").exists() or not (directory / f"{identity}.key").exists():
            issue(directory, identity, ca_key, ca_cert)


def _read(directory: Path, identity: str) -> tuple[bytes, bytes, bytes]:
    """(CA certificate, identity's key, identity's certificate)."""
    try:
        return ((directory / f"{CA_NAME}.crt").read_bytes(), (directory / f"{identity}.key").read_bytes(),
                (directory / f"{identity}.crt").read_bytes())
    except FileNotFoundError as missing:
        raise SystemExit(f"no mesh certificate for {identity!r} in {directory} ({missing.filename}): "
                         "the launcher makes them on first run; in compose, the certs container") from None


def server_credentials(directory: Path, identity: str) -> grpc.ServerCredentials:
    """A service's port: its own certificate; callers must present one from the mesh CA."""
    ca, key, cert = _read(directory, identity)
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=True)


def channel_credentials(directory: Path, identity: str) -> grpc.ChannelCredentials:
    ca, key, cert = _read(directory, identity)
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)


def mesh_channel(address: str, service: str, directory: Path, identity: str, *, aio: bool = True,
                 options: Sequence[tuple[str, object]] = ()) -> tracing.TracedChannel | grpc.Channel:
    """A channel to `service`'s port at `address`, presenting `identity`'s certificate and checking
    that the server is `service`. The one way tests, benches and tools reach a service port."""
    opts = [*options, ("grpc.ssl_target_name_override", service)]
    credentials = channel_credentials(directory, identity)
    if aio:
        return tracing.TracedChannel(grpc.aio.secure_channel(address, credentials, options=opts))
    return grpc.secure_channel(address, credentials, options=opts)


def service_channel(settings: Settings, service: str, identity: str = TOOLS, *, port: int | None = None,
                    aio: bool = True, options: Sequence[tuple[str, object]] = ()) -> tracing.TracedChannel | grpc.Channel:
    """A channel to `service`'s port (`port`: another instance's) as `identity`: a caller of a
    method for the mesh only must name one its allow-list admits."""
    host = settings.service_hosts[service]
    address = f"{host}:{settings.service_ports[service] if port is None else port}"
    return mesh_channel(address, service, settings.mesh_dir, identity, aio=aio, options=options)


def gateway_channel(settings: Settings, *, port: int | None = None, aio: bool = True,
                    options: Sequence[tuple[str, object]] = ()) -> grpc.aio.Channel | grpc.Channel:
    """A channel to the gateway (`port`: another gateway's), as a client from outside: no mesh
    certificate; TLS trusting the gateway's certificate when it serves one."""
    address = f"127.0.0.1:{settings.gateway_port if port is None else port}"
    if settings.tls_cert_file:
        credentials = grpc.ssl_channel_credentials(root_certificates=Path(settings.tls_cert_file).read_bytes())
        return (grpc.aio.secure_channel(address, credentials, options=options) if aio
                else grpc.secure_channel(address, credentials, options=options))
    return grpc.aio.insecure_channel(address, options=options) if aio else grpc.insecure_channel(address, options=options)


def peer_identity(context: grpc.ServicerContext | grpc.aio.ServicerContext) -> str | None:
    """The calling identity, from its verified certificate; None without one."""
    values = (context.auth_context() or {}).get(IDENTITY_PROPERTY) or []
    return values[0].decode() if values else None


class CallerCheckInterceptor(HandlerWrap):
    """Methods for the mesh only answer PERMISSION_DENIED to a caller whose certificate is not one
    of those their allow-list names (`allowed`: gRPC path -> identities). Other methods pass: the
    TLS handshake already refused callers without a mesh certificate."""

    def __init__(self, allowed: Mapping[str, frozenset[str]]) -> None:
        self._allowed = allowed

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        allowed = self._allowed.get(method)
        if allowed is None:
            return handler

        async def refuse(context: grpc.aio.ServicerContext) -> None:
            caller = peer_identity(context)
            if caller not in allowed:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                    f"{method} is for the mesh only, and not for {caller or 'an unnamed caller'}")

        kind = "unary_unary" if handler.unary_unary else "stream_unary" if handler.stream_unary else None
        if kind is not None:
            behavior = getattr(handler, kind)

            async def unary_reply(request_or_iterator, context):
                await refuse(context)
                return await behavior(request_or_iterator, context)
            return handler._replace(**{kind: unary_reply})
        kind = "unary_stream" if handler.unary_stream else "stream_stream"
        streamer = getattr(handler, kind)

        async def streaming(request_or_iterator, context):
            await refuse(context)
            result = streamer(request_or_iterator, context)
            if hasattr(result, "__aiter__"):
                async for reply in result:
                    yield reply
            else:
                await result
        return handler._replace(**{kind: streaming})
