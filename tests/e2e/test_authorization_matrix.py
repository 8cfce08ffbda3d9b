"""The authorization matrix (issue 19): who may call what, for every JSON route of the gateway and
every method for the mesh only, generated from the protos and the registry (a new route or
method is covered without being listed here; a new kind of path parameter fails until it is).

Routes, from outside, through the gateway:
- anonymous: a route whose handler requires a caller answers 401, whatever the ids;
- another user: alice's account is private and bob does not follow her; on every route naming
  one of her things (a post, comment, media, upload, story, highlight, conversation, message,
  session, data export) bob is refused (403 or 404: never a success), and so is an anonymous caller;
- the owner: alice reads each of her things (every GET route naming one) with 200, so the
  refusals above are about who asks, not about ids that do not exist.
Routes, from inside the mesh, on the service's own port: without a mesh certificate the call does not
connect; with one (a peer's, as a compromised media service would have) a route that requires a
caller still answers UNAUTHENTICATED without a user's token, and every route refuses a token signed
by any key but the accounts service's (a peer cannot mint users).
Methods for the mesh only: refused at the gateway (404 or UNIMPLEMENTED), on the service's port
without a mesh certificate (plain, or TLS without a client certificate: UNAVAILABLE), with a mesh
certificate the allow-list does not name (PERMISSION_DENIED); answered for those it names.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import uuid

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from google.protobuf import message_factory

from services.common.auth import TokenSigner
from services.common.mesh_tls import gateway_channel, service_channel
from services.common.registry import SERVICES, internal_callers, mesh_identities
from services.mesh.http_rules import AUTH_NONE, AUTH_REQUIRED, HttpRoute, http_routes
from tests.e2e.http import UserClient
from tests.e2e.media_files import small_jpeg

pytestmark = pytest.mark.e2e

ROUTES = http_routes()
# Path parameters that name something of alice's (made by the `alices` fixture).
OWNED = ("post_id", "comment_id", "media_id", "upload_id", "story_id", "highlight_id", "conversation_id",
         "message_id", "session_id", "export_id")
# The others, with a value that is well formed (the handler is reached) and names nothing of hers.
PLAIN = {"user_id": "1", "username": "nobody", "name": "nothing", "place_id": "1", "file": "1080.jpg"}
# Well-formed values for body fields that are checked before the thing they act on is looked up.
BODY = {"text": "hello", "emoji": "\u2764", "title": "mine", "caption": "mine"}


def _params(route: HttpRoute) -> list[str]:
    return [f.name for f in route.path_fields]


def test_every_path_parameter_is_known():
    unknown = {p for r in ROUTES for p in _params(r)} - set(OWNED) - set(PLAIN)
    assert unknown == set(), f"give the matrix a value (or an owned resource) for {unknown}"


def _call(client, route: HttpRoute, values: dict[str, str], token: str | None):
    path = route.path(**{p: values.get(p, PLAIN.get(p)) for p in _params(route)})
    body = None if route.verb in ("get", "delete") else {
        f.name: BODY[f.name] for f in route.body_fields if f.name in BODY}
    if route.raw_body:
        return client.request(route.verb.upper(), path, raw=small_jpeg(), token=token,
                              headers={"content-type": "image/jpeg"})
    return client.request(route.verb.upper(), path, body, token=token)


@pytest.mark.parametrize("route", [r for r in ROUTES if r.auth == AUTH_REQUIRED], ids=lambda r: r.name)
def test_anonymous_callers_get_401_where_a_caller_is_required(gateway, route):
    r = _call(gateway, route, {p: "1" for p in OWNED}, None)
    assert r.status == 401, (route.name, r.status, r.body[:200])


def _user(gateway, private: bool = False) -> UserClient:
    n = uuid.uuid4().hex[:12]
    r = gateway.post("/v1/accounts", {"username": f"matrix{n}", "email": f"matrix{n}@example.com",
                                      "password": "correct horse", "display_name": "Matrix"})
    assert r.status == 200, r.body
    user = UserClient(gateway, r.json)
    if private:
        assert user.patch("/v1/users/me", {"is_private": True}).status == 200
    return user


@pytest.fixture(scope="module")
def alices(gateway):
    """alice (private), her things, and bob (signed in, not her follower); carol is in her conversation."""
    alice, bob, carol = _user(gateway, private=True), _user(gateway), _user(gateway)
    media = alice.upload(small_jpeg(), "image/jpeg").json["id"]
    post = alice.post("/v1/posts", {"media_ids": [alice.upload(small_jpeg(), "image/jpeg").json["id"]],
                                    "caption": "mine"}).json["id"]
    comment = alice.post(f"/v1/posts/{post}/comments", {"text": "my own"}).json["id"]
    data = small_jpeg()
    upload = alice.post("/v1/uploads", {"content_type": "image/jpeg", "size_bytes": str(len(data)),
                                        "sha256": hashlib.sha256(data).hexdigest()}).json["upload_id"]
    story = alice.post("/v1/stories", {"media_id": alice.upload(small_jpeg(), "image/jpeg").json["id"]}).json["id"]
    highlight = alice.post("/v1/highlights", {"title": "mine", "story_ids": [story]}).json["id"]
    alice.post(f"/v1/users/{carol.id}/follow", {})
    carol.post(f"/v1/follow-requests/{alice.id}:approve", {})
    conversation = alice.post("/v1/conversations", {"member_ids": [carol.id]}).json["id"]
    message = alice.post(f"/v1/conversations/{conversation}/messages",
                         {"client_message_id": uuid.uuid4().hex, "text": "hi"}).json["id"]
    session = alice.get("/v1/sessions").json["sessions"][0]["id"]
    export = alice.post("/v1/users/me:export", {}).json["id"]
    owned = {"post_id": post, "comment_id": comment, "media_id": media, "upload_id": upload, "story_id": story,
             "highlight_id": highlight, "conversation_id": conversation, "message_id": message,
             "session_id": session, "export_id": export, "user_id": carol.id}
    assert all(owned.values()), owned
    return alice, bob, owned


NAMING_HERS = [r for r in ROUTES if set(_params(r)) & set(OWNED)]


@pytest.mark.parametrize("route", NAMING_HERS, ids=lambda r: r.name)
def test_another_user_is_refused_alices_things(gateway, alices, route):
    _, bob, owned = alices
    r = _call(gateway, route, owned, bob.token)
    assert r.status in (403, 404), (route.name, r.status, r.body[:200])


@pytest.mark.parametrize("route", NAMING_HERS, ids=lambda r: r.name)
def test_an_anonymous_caller_is_refused_alices_things(gateway, alices, route):
    _, _, owned = alices
    r = _call(gateway, route, owned, None)
    assert r.status in (401, 403, 404), (route.name, r.status, r.body[:200])


# Reads of hers that need more than her token: the file of a media item and an export's archive
# need a signed URL; an avatar's picture is there only for a photo that is her avatar (her media
# here is not: test_avatars_http).
NOT_BY_TOKEN = {"GET /v1/media/{media_id}/{file}", "GET /v1/exports/{export_id}/archive",
                "GET /v1/avatars/{media_id}/{file}"}


@pytest.mark.parametrize("route", [r for r in NAMING_HERS if r.verb == "get" and r.name not in NOT_BY_TOKEN],
                         ids=lambda r: r.name)
def test_the_owner_reads_her_own_things(gateway, alices, route):
    alice, _, owned = alices
    r = _call(gateway, route, owned, alice.token)
    assert r.status == 200, (route.name, r.status, r.body[:200])


# --- methods for the mesh only ---------------------------------------------------------


def _method(path: str):
    _, service, method = path.split("/")
    for spec in SERVICES:
        for module in spec.proto_modules:
            for found in importlib.import_module(module).DESCRIPTOR.services_by_name.values():
                if found.full_name == service:
                    return spec.name, found.methods_by_name[method]
    raise KeyError(path)


def _rpc(channel: grpc.Channel, path: str, client_streaming: bool, token: str | None = None,
         request: bytes = b"") -> grpc.StatusCode:
    metadata = [("authorization", f"Bearer {token}")] if token else None
    try:
        if client_streaming:
            channel.stream_unary(path)(iter(()), timeout=10, metadata=metadata)
        else:
            channel.unary_unary(path)(request, timeout=10, metadata=metadata)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.fixture(scope="module")
def forged_token(settings, alices) -> str:
    """A token for alice with the accounts service's key id, signed by another key."""
    kid = json.loads(settings.jwks_file.read_text())["keys"][0]["kid"]
    forger = TokenSigner(rsa.generate_private_key(public_exponent=65537, key_size=2048), kid,
                         settings.jwt_issuer, 600)
    return forger.sign(int(alices[0].id))


def _peer(server: str) -> str:
    """A mesh identity other than the server's own: the media service's (it decodes untrusted files)."""
    return "media" if server != "media" else "posts"


def _grpc_request(route: HttpRoute, values: dict[str, str]) -> bytes:
    """The route's gRPC request, well formed: path parameters from `values` (else PLAIN), known body fields."""
    request = message_factory.GetMessageClass(route.method.input_type)()
    fields = {f.name: f for f in route.method.input_type.fields}
    wanted = {**{p: values.get(p, PLAIN.get(p)) for p in _params(route)},
              **{f.name: BODY[f.name] for f in route.body_fields if f.name in BODY}}
    for name, value in wanted.items():
        field = fields[name]
        if field.is_repeated or field.message_type is not None:
            continue
        setattr(request, name, value if field.type == field.TYPE_STRING else int(value))
    return request.SerializeToString()


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_inside_the_mesh_a_route_still_needs_a_users_token(settings, alices, forged_token, route):
    server, method = _method(route.grpc_path)
    streaming = method.client_streaming
    request = _grpc_request(route, alices[2])
    address = settings.service_address(next(s for s in SERVICES if s.name == server))
    with grpc.insecure_channel(address) as channel:
        assert _rpc(channel, route.grpc_path, streaming, request=request) == grpc.StatusCode.UNAVAILABLE, "plain"
    with service_channel(settings, server, _peer(server), aio=False) as channel:
        if route.auth == AUTH_REQUIRED:
            code = _rpc(channel, route.grpc_path, streaming, request=request)
            assert code == grpc.StatusCode.UNAUTHENTICATED, ("no token", code)
        if route.auth != AUTH_NONE:
            # Alice's own things, with a token in her name that the accounts service did not sign.
            code = _rpc(channel, route.grpc_path, streaming, forged_token, request)
            assert code == grpc.StatusCode.UNAUTHENTICATED, ("forged token", code)


@pytest.mark.parametrize("path", sorted(internal_callers()))
def test_a_mesh_only_method_answers_its_allow_list_alone(settings, path):
    server, method = _method(path)
    streaming = method.client_streaming
    allowed = internal_callers()[path]
    with gateway_channel(settings, aio=False) as channel:
        assert _rpc(channel, path, streaming) in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNIMPLEMENTED), "outside"
    address = settings.service_address(next(s for s in SERVICES if s.name == server))
    with grpc.insecure_channel(address) as channel:
        assert _rpc(channel, path, streaming) == grpc.StatusCode.UNAVAILABLE, "plain"
    no_client_cert = grpc.ssl_channel_credentials(root_certificates=(settings.mesh_dir / "ca.crt").read_bytes())
    with grpc.secure_channel(address, no_client_cert, options=[("grpc.ssl_target_name_override", server)]) as channel:
        assert _rpc(channel, path, streaming) == grpc.StatusCode.UNAVAILABLE, "TLS without a client certificate"
    for identity in mesh_identities():
        with service_channel(settings, server, identity, aio=False) as channel:
            code = _rpc(channel, path, streaming)
        if identity in allowed:
            # An empty request: whatever the method says of it, it is not a refusal of the caller.
            assert code not in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAVAILABLE), (identity, code)
        else:
            assert code == grpc.StatusCode.PERMISSION_DENIED, (identity, code)
