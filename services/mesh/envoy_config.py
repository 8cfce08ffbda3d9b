"""The Envoy gateway's config, generated from the service registry.

Two flavours of one config: `embedded` (loopback addresses, files in the data
directory; what `make run` and the tests start) and `compose` (service DNS
names, files mounted under /etc; checked in as envoy/envoy.yaml and mounted by
docker-compose.yml). Only addresses and file paths differ between them.

Filter chain, in request order:
  header_mutation  strips grpc-* headers from REST responses (REST routes only)
  lua              the HTTP status a service asks for in x-pictor-status (206, 416: media's Range replies)
  jwt_authn        a token, when sent, must verify against the JWKS (its claims go to metadata)
  compressor       brotli or gzip (one filter each) for JSON replies to clients that accept it
  grpc_json_transcoder  JSON <-> gRPC for every service in the registry
  lua              on the sign-in route only: the account a sign-in names, for its bucket
  local_ratelimit  per address, user and account buckets (services.mesh.rate_limits), under
                   one listener-wide ceiling; after the transcoder, so routes are per method
  router           routes on the gRPC path, so native and transcoded calls share routes

Upstream, Envoy calls every service with mutual TLS: its own mesh certificate (`gateway`),
and it checks the service's certificate against the mesh CA and the service's name
(services.common.mesh_tls). Downstream, the listener serves TLS with HSTS when given a
certificate (PICTOR_TLS_CERT, PICTOR_TLS_KEY).

The web client (web/, static files) is served by Envoy itself: one direct_response route
per file, generated from the folder's listing, read when Envoy loads its config.
"""

from __future__ import annotations

import argparse
import importlib
import os
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from services.common.config import RATE_LIMITS, REPO_ROOT, Limit, Settings, env_int, rate_limits
from services.common.mesh_tls import CA_NAME
from services.common.registry import GATEWAY, SERVICES, ServiceSpec, all_proto_services, mesh_only_methods
from services.mesh import rate_limits as limits

CHECKED_IN = REPO_ROOT / "envoy" / "envoy.yaml"
# The compose flavour with TLS at the gateway (compose's `tls` profile).
CHECKED_IN_TLS = REPO_ROOT / "envoy" / "envoy-tls.yaml"
HSTS = "max-age=31536000; includeSubDomains"
# The web client's files, served as they are (no build step): see _web_routes.
WEB_ROOT = REPO_ROOT / "web"
WEB_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".webmanifest": "application/manifest+json",
}
# The page may load nothing from elsewhere: scripts, styles and API calls come from the gateway,
# images from it or from PICTOR_PUBLIC_URL (the base of media's signed URLs), blob: for the
# composer's previews of the files picked.
WEB_CSP = ("default-src 'self'; img-src 'self' blob: {media}; media-src 'self' blob: {media}; connect-src 'self'; "
           "style-src 'self'; "
           "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
WEB_SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    # Envoy's direct responses answer no conditional request, so every load revalidates in full:
    # the whole client is about 100 KB on the same machine, and a new version is seen at once.
    "cache-control": "no-cache",
}
MAX_BODY_BYTES = 64 * 1024 * 1024
# gRPC code numbers for the HTTP statuses Envoy answers by itself, so its own
# errors have the same {code, message} shape as the services' errors.
LOCAL_REPLY_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 408: 4, 413: 3, 429: 8, 431: 3, 500: 13,
                     502: 14, 503: 14, 504: 4}
UNKNOWN = 2
# Streams one cluster of stream servers may hold open through the gateway at once.
STREAMS_PER_CLUSTER = 1_000_000
REST_MARKER = "x-pictor-rest"
# Beside the descriptor: services.mesh.openapi writes it next to pictor.pb.
OPENAPI_NAME = "openapi.json"
OPENAPI_MAX_BYTES = 4 * 1024 * 1024
# Replies Envoy compresses, for clients whose Accept-Encoding allows it: JSON only (never
# text/event-stream, which must reach the client event by event, nor gRPC, which has its own
# framing), and only past one packet's worth: below that the headers and CPU outweigh the saving.
COMPRESSED_CONTENT_TYPES = ("application/json",)
COMPRESS_MIN_BYTES = 1024
# A service that needs an HTTP status gRPC has no word for (media's 206 and 416 for Range
# requests) says it in this response header; the Lua filter sets the status from it on
# transcoded (non-gRPC) replies and drops the header.
STATUS_HEADER = "x-pictor-status"
STATUS_LUA = f"""
function envoy_on_response(handle)
  local headers = handle:headers()
  local status = headers:get("{STATUS_HEADER}")
  if status == nil then return end
  headers:remove("{STATUS_HEADER}")
  local content_type = headers:get("content-type") or ""
  if string.find(content_type, "application/grpc", 1, true) == 1 then return end
  if status == "206" or status == "416" then headers:replace(":status", status) end
end
"""
GRPC_RESPONSE_HEADERS = ("grpc-status", "grpc-message", "grpc-status-details-bin", "grpc-encoding",
                         "grpc-accept-encoding")


OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
OTLP_CLUSTER = "otlp_collector"


@dataclass(frozen=True)
class Target:
    listen_host: str
    gateway_port: int
    admin_host: str
    admin_port: int
    descriptor: str
    # The generated OpenAPI document, served at GET /openapi.json.
    openapi: str
    # Where Envoy reads the web client's files (the same files, mounted in compose).
    web_root: str
    # The origin of media's signed URLs (PICTOR_PUBLIC_URL, the gateway by default), for the CSP.
    media_origin: str
    jwks: str
    issuer: str
    rate_limit_per_s: int
    # name -> (host, port) of each replica (one name that DNS resolves to all of them, with dns)
    upstreams: dict[str, tuple[tuple[str, int], ...]]
    dns: bool
    # The gateway's mesh certificate, key and the mesh CA (upstream mutual TLS).
    mesh_cert: str = ""
    mesh_key: str = ""
    mesh_ca: str = ""
    # The certificate and key served to clients ("": plain HTTP).
    tls_cert: str = ""
    tls_key: str = ""
    # services.mesh.rate_limits' buckets, and how many keys (addresses, users) Envoy tracks.
    rate_limits: dict[str, Limit] = field(default_factory=lambda: {n: d for n, (_, d) in RATE_LIMITS.items()})
    rate_limit_keys: int = limits.MAX_KEYS_DEFAULT
    # An OpenTelemetry collector's OTLP/gRPC endpoint (OTEL_EXPORTER_OTLP_ENDPOINT) for Envoy's spans; "": none.
    otlp_endpoint: str = ""


def _mesh_files(directory: str) -> dict[str, str]:
    return {"mesh_cert": f"{directory}/{GATEWAY}.crt", "mesh_key": f"{directory}/{GATEWAY}.key",
            "mesh_ca": f"{directory}/{CA_NAME}.crt"}


def embedded_target(settings: Settings, descriptor: Path) -> Target:
    return Target(
        listen_host=settings.gateway_host, gateway_port=settings.gateway_port,
        admin_host="127.0.0.1", admin_port=settings.envoy_admin_port,
        descriptor=str(descriptor), openapi=str(descriptor.parent / OPENAPI_NAME),
        web_root=str(WEB_ROOT), media_origin=_origin(settings.public_url),
        jwks=str(settings.jwks_file),
        issuer=settings.jwt_issuer,
        rate_limit_per_s=settings.gateway_rate_limit_per_s,
        upstreams={s.name: tuple((settings.service_hosts[s.name], port) for port in settings.replica_ports[s.name])
                   for s in SERVICES},
        dns=False,
        **_mesh_files(str(settings.mesh_dir)),
        tls_cert=settings.tls_cert_file, tls_key=settings.tls_key_file,
        rate_limits=settings.rate_limits,
        rate_limit_keys=env_int("PICTOR_RATE_LIMIT_MAX_KEYS", limits.MAX_KEYS_DEFAULT),
        otlp_endpoint=os.environ.get(OTLP_ENDPOINT, ""),
    )


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


COMPOSE_MESH_DIR = "/etc/pictor/mesh"
COMPOSE_TLS_CERT, COMPOSE_TLS_KEY = "/etc/pictor/tls/cert.pem", "/etc/pictor/tls/key.pem"


def compose_target(tls: bool = False, from_env: bool = False) -> Target:
    """The checked-in flavour (default limits; `tls`: envoy/envoy-tls.yaml); `from_env`: the
    limits of this environment's PICTOR_RATE_LIMIT_* (for `--out`)."""
    return Target(
        listen_host="0.0.0.0", gateway_port=8443 if tls else 8080, admin_host="127.0.0.1", admin_port=9901,
        descriptor="/etc/envoy/pictor.pb", openapi=f"/etc/envoy/{OPENAPI_NAME}",
        web_root="/etc/pictor/web", media_origin="'self'", jwks="/etc/pictor/keys/jwks.json",
        issuer="pictor",
        rate_limit_per_s=5000, upstreams={s.name: ((s.name, s.port),) for s in SERVICES}, dns=True,
        **_mesh_files(COMPOSE_MESH_DIR),
        tls_cert=COMPOSE_TLS_CERT if tls else "", tls_key=COMPOSE_TLS_KEY if tls else "",
        **({"rate_limits": rate_limits(), "otlp_endpoint": os.environ.get(OTLP_ENDPOINT, "")} if from_env else {}),
    )


def server_streaming_methods() -> list[tuple[ServiceSpec, str]]:
    """(service, gRPC path) of every server-streaming method of the registry."""
    found = []
    for spec in SERVICES:
        for module_name in spec.proto_modules:
            module = importlib.import_module(module_name)
            for service in module.DESCRIPTOR.services_by_name.values():
                found += [(spec, f"/{service.full_name}/{m.name}") for m in service.methods if m.server_streaming]
    return found


def _local_reply_config() -> dict:
    def json_body(code: int | str) -> dict:
        # The reason is Envoy's own (e.g. path_normalization_failed, http1.headers_too_large):
        # some of its refusals have no message.
        return {"json_format": {"code": code, "message": "%LOCAL_REPLY_BODY%",
                                "details": [{"reason": "%RESPONSE_CODE_DETAILS%"}]},
                "content_type": "application/json"}

    # Native gRPC callers get Envoy's own grpc-status with a plain message;
    # everyone else (marked by the REST route, below) gets JSON. A request
    # refused before any route (headers too large, a NUL in the path) has no
    # mark: its own content type says whether it is gRPC.
    native_grpc = {"and_filter": {"filters": [
        {"header_filter": {"header": {"name": REST_MARKER, "present_match": True, "invert_match": True}}},
        {"header_filter": {"header": {"name": "content-type",
                                      "string_match": {"prefix": "application/grpc"}}}}]}}
    # The one 200 Envoy answers itself is the OpenAPI document: as it is.
    document = {"filter": {"status_code_filter": {"comparison": {
        "op": "EQ", "value": {"default_value": 200, "runtime_key": "pictor.reply.200"}}}},
        "body_format_override": {"text_format": "%LOCAL_REPLY_BODY%", "content_type": "application/json"}}
    # Over a rate limit (Envoy's only 429): the reason; Retry-After is added by a Lua filter
    # (services.mesh.rate_limits.RETRY_AFTER_LUA).
    rate_limited = {
        "filter": {"status_code_filter": {"comparison": {"op": "EQ", "value": {
            "default_value": 429, "runtime_key": "pictor.reply.429"}}}},
        "body_format_override": {"json_format": {
            "code": LOCAL_REPLY_CODES[429],
            "message": "too many requests: try again after the seconds Retry-After says",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMITED",
                         "domain": "gateway.pictor"}]},
            "content_type": "application/json"}}
    mappers = [document, {"filter": native_grpc, "body_format_override": {"text_format": "%LOCAL_REPLY_BODY%"}},
               rate_limited]
    for http_status, grpc_code in LOCAL_REPLY_CODES.items():
        if http_status == 429:
            continue
        mappers.append({
            "filter": {"status_code_filter": {"comparison": {
                "op": "EQ", "value": {"default_value": http_status, "runtime_key": f"pictor.reply.{http_status}"}}}},
            "body_format_override": json_body(grpc_code),
        })
    return {"mappers": mappers, "body_format": json_body(UNKNOWN)}


def _routes(t: Target) -> list[dict]:
    first = SERVICES[0].name
    # gRPC routes match only gRPC content: native calls, and REST calls once
    # the transcoder has turned them into gRPC (it re-runs route matching).
    routes: list[dict] = [
        {"match": {"path": path, "grpc": {}},
         "direct_response": {"status": 404, "body": {"inline_string": "this method is only for the mesh"}}}
        for path in mesh_only_methods()
    ]
    # A server stream lives as long as its client wants: no route timeout (Envoy's default of
    # 15 s, or the 30 s below, would cut it); the service's heartbeats keep it from idling out.
    streams = server_streaming_methods()
    for spec, path in streams:
        routes.append({"match": {"path": path, "grpc": {}}, "route": {"cluster": spec.name, "timeout": "0s"}})
    # One route per method with a JSON route, so each takes from its class's buckets.
    streaming = {path for _, path in streams}
    for path, (cluster, cls) in method_classes().items():
        if path not in streaming:
            routes.append(_limited_route(path, cluster, cls))
    for spec in SERVICES:
        for service in spec.proto_services:
            routes.append({"match": {"prefix": f"/{service}/", "grpc": {}},
                           "route": {"cluster": spec.name, "timeout": "30s"}})
    # Reflection describes the whole mesh from any service; health answers for
    # the service that receives it (per-service health is on each port).
    for prefix in ("/grpc.reflection.", "/grpc.health.v1.Health/"):
        routes.append({"match": {"prefix": prefix, "grpc": {}}, "route": {"cluster": first, "timeout": "0s"}})
    routes.append({"match": {"path": "/openapi.json", "headers": [
                       {"name": ":method", "string_match": {"exact": "GET"}}]},
                   "direct_response": {"status": 200, "body": {"filename": t.openapi}},
                   # Not a method: the transcoder would refuse it.
                   "typed_per_filter_config": {"envoy.filters.http.grpc_json_transcoder": {
                       "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": True}}})
    routes += _web_routes(t)
    # Everything else is REST. A REST request matches this route on its
    # original path, before transcoding, which is when header_mutation reads
    # the per-route config: it marks the request as REST (so Envoy's own errors
    # become JSON) and strips grpc-* headers from the response. A path no
    # method maps to never gets past the transcoder (404); what is not /v1 at
    # all ends here.
    routes.append({
        "match": {"prefix": "/"},
        "direct_response": {"status": 404, "body": {"inline_string": "no such route"}},
        "typed_per_filter_config": {"envoy.filters.http.header_mutation": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutationPerRoute",
            "mutations": {
                "request_mutations": [{"append": {"header": {"key": REST_MARKER, "value": "1"},
                                                  "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}}],
                "response_mutations": [{"remove": h} for h in GRPC_RESPONSE_HEADERS],
            },
        }},
    })
    return routes


def method_classes() -> dict[str, tuple[str, str]]:
    """gRPC path of every method with a JSON route, and of the typed twin of one (http_rules.typed_twin)
    -> (its service's cluster, its rate-limit class)."""
    from services.mesh.http_rules import http_routes

    cluster = {service: spec.name for spec in SERVICES for service in spec.proto_services}
    found: dict[str, tuple[str, str]] = {}
    for route in http_routes():
        classed = (cluster[route.method.containing_service.full_name], limits.method_class(route.grpc_path, route.verb))
        found.setdefault(route.grpc_path, classed)
        if route.typed_twin is not None:  # its typed form, called over gRPC, takes from the same buckets
            found.setdefault(f"/{route.typed_twin.containing_service.full_name}/{route.typed_twin.name}", classed)
    return found


def _limited_route(path: str, cluster: str, cls: str) -> dict:
    route = {"match": {"path": path, "grpc": {}},
             "route": {"cluster": cluster, "timeout": "30s", "rate_limits": limits.route_rate_limits(cls)}}
    if cls == limits.SIGN_IN:
        # The Lua filter (code on this route alone) reads the account this sign-in names.
        route["typed_per_filter_config"] = {limits.LUA_FILTER: {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute",
            "source_code": {"inline_string": limits.SIGN_IN_LUA}}}
    return route


def web_files() -> list[Path]:
    """The web client's files, relative to WEB_ROOT, in a stable order."""
    files = sorted(p.relative_to(WEB_ROOT) for p in WEB_ROOT.rglob("*") if p.is_file())
    unknown = [str(p) for p in files if p.suffix not in WEB_CONTENT_TYPES]
    if unknown:
        raise ValueError(f"web/ holds files of no known content type: {unknown}")
    return files


def _web_routes(t: Target) -> list[dict]:
    """GET /<file> for every file of web/, and GET / for index.html.

    The body is read by Envoy when it loads the config (direct_response `filename`), so a changed
    file is served after a restart, a new one after `make generate` too. The local reply mapper
    for 200 (the OpenAPI document's) would call every file JSON: each route sets its own type.
    """
    def route(path: str, file: Path) -> dict:
        headers = {**WEB_SECURITY_HEADERS, "content-security-policy": WEB_CSP.format(media=t.media_origin),
                   "content-type": WEB_CONTENT_TYPES[file.suffix]}
        return {"match": {"path": path, "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]},
                "direct_response": {"status": 200, "body": {"filename": f"{t.web_root}/{file.as_posix()}"}},
                "response_headers_to_add": [{"header": {"key": k, "value": v},
                                             "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
                                            for k, v in headers.items()],
                "typed_per_filter_config": {"envoy.filters.http.grpc_json_transcoder": {
                    "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": True}}}

    files = web_files()
    return [route("/", Path("index.html")), *(route(f"/{f.as_posix()}", f) for f in files)]


def _compressors() -> list[dict]:
    """One compressor filter per encoding; Envoy picks by the client's Accept-Encoding (highest q,
    then the first it names). gzip's window is widened from Envoy's 4 KiB default to 32 KiB, so
    that repeats across a whole page (authors, URL prefixes) are found."""
    libraries = (
        ("brotli", "type.googleapis.com/envoy.extensions.compression.brotli.compressor.v3.Brotli", {}),
        ("gzip", "type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip",
         {"window_bits": 15, "memory_level": 8}),
    )
    return [{"name": f"envoy.filters.http.compressor.{name}", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor",
        "response_direction_config": {"common_config": {
            "min_content_length": COMPRESS_MIN_BYTES, "content_type": list(COMPRESSED_CONTENT_TYPES)}},
        "compressor_library": {"name": name, "typed_config": {"@type": type_url, **options}}}}
        for name, type_url, options in libraries]


def _http_filters(t: Target) -> list[dict]:
    return [
        # First, so that it sees every answer on its way out, Envoy's own replies included: HSTS.
        {"name": "envoy.filters.http.header_mutation", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
            "mutations": _hsts(t)}},
        {"name": "envoy.filters.http.lua", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "default_source_code": {"inline_string": STATUS_LUA}}},
        {"name": "envoy.filters.http.jwt_authn", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"pictor": {
                "issuer": t.issuer, "audiences": ["pictor"],
                "local_jwks": {"filename": t.jwks},
                "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}],
                # Services verify again, so they need the token itself.
                "forward": True,
                # The verified claims, for the per-user rate limits (metadata: no header can forge it).
                "payload_in_metadata": limits.JWT_METADATA[1]}},
            # Calls without a token pass (each method decides whether it needs
            # one); a token that is sent must be valid.
            "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
                {"provider_name": "pictor"}, {"allow_missing": {}}]}}}]}},
        # Before the transcoder, so that on the way back they see its JSON.
        *_compressors(),
        {"name": "envoy.filters.http.grpc_json_transcoder", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
            "proto_descriptor": t.descriptor,
            "services": list(all_proto_services()),
            "print_options": {"add_whitespace": False, "always_print_primitive_fields": True,
                              "always_print_enums_as_ints": False, "preserve_proto_field_names": True},
            "convert_grpc_status": True,
            "case_insensitive_enum_parsing": True,
            "request_validation_options": {"reject_unknown_method": True,
                                           "reject_unknown_query_parameters": True},
            "max_request_body_size": MAX_BODY_BYTES,
            "max_response_body_size": MAX_BODY_BYTES}},
        # Retry-After on a rate limit's 429; the sign-in's route brings its own code, which also
        # reads the account it names.
        {"name": limits.LUA_FILTER, "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "default_source_code": {"inline_string": limits.RETRY_AFTER_LUA}}},
        {"name": "envoy.filters.http.local_ratelimit", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
            "stat_prefix": "gateway_rate_limit",
            # The listener's ceiling, taken by every request.
            "token_bucket": {"max_tokens": t.rate_limit_per_s, "tokens_per_fill": t.rate_limit_per_s,
                             "fill_interval": "1s"},
            "descriptors": limits.descriptors(t.rate_limits),
            "max_dynamic_descriptors": t.rate_limit_keys,
            # x-ratelimit-reset: the seconds until the bucket refills, copied into Retry-After.
            "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
            "rate_limited_as_resource_exhausted": True,
            "filter_enabled": {"default_value": {"numerator": 100, "denominator": "HUNDRED"},
                               "runtime_key": "pictor.rate_limit.enabled"},
            "filter_enforced": {"default_value": {"numerator": 100, "denominator": "HUNDRED"},
                                "runtime_key": "pictor.rate_limit.enforced"},
            "local_rate_limit_per_downstream_connection": False}},
        {"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
    ]


def _upstream_tls(t: Target, name: str) -> dict:
    """Mutual TLS to the service `name`: the gateway's certificate; the service's checked."""
    return {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "sni": name,
        "common_tls_context": {
            "alpn_protocols": ["h2"],
            "tls_certificates": [{"certificate_chain": {"filename": t.mesh_cert},
                                  "private_key": {"filename": t.mesh_key}}],
            "validation_context": {"trusted_ca": {"filename": t.mesh_ca},
                                   "match_typed_subject_alt_names": [
                                       {"san_type": "DNS", "matcher": {"exact": name}}]}}}}


# A request that never reached a service (its replica was gone: connection refused or reset before
# the request went out) is tried again on another replica; one that may have reached it never is,
# so a write is not made twice. Health checks take a replica out within seconds; this covers them.
RETRY_UNSENT = {
    "retry_on": "connect-failure,refused-stream,reset-before-request",
    "num_retries": 2,
    "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}],
    "host_selection_retry_max_attempts": 3,
}


def _cluster(t: Target, name: str, endpoints: tuple[tuple[str, int], ...], proto_service: str, dns: bool) -> dict:
    """A service's cluster: every replica an endpoint (STRICT_DNS: every address its name resolves to),
    round robin among those whose gRPC health check says SERVING."""
    cluster = {
        "name": name,
        "type": "STRICT_DNS" if dns else "STATIC",
        "connect_timeout": "1s",
        "lb_policy": "ROUND_ROBIN",
        "per_connection_buffer_limit_bytes": MAX_BODY_BYTES,
        "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {}}}},
        "transport_socket": _upstream_tls(t, name),
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}}
            for host, port in endpoints]}]},
        "health_checks": [{"timeout": "1s", "interval": "2s", "no_traffic_interval": "2s",
                           "unhealthy_threshold": 2, "healthy_threshold": 1,
                           "grpc_health_check": {"service_name": proto_service}}],
    }
    if any(spec.name == name for spec, _ in server_streaming_methods()):
        # Every open stream is a request in flight for as long as it lives: Envoy's default
        # circuit breaker (1,024 requests per cluster) would refuse the 1,025th stream with a 503.
        cluster["circuit_breakers"] = {"thresholds": [{"max_requests": STREAMS_PER_CLUSTER}]}
    return cluster


def _hsts(t: Target) -> dict:
    """With TLS, every response (Envoy's own included) tells browsers to come back over HTTPS only."""
    if not t.tls_cert:
        return {}
    return {"response_mutations": [{"append": {"header": {"key": "strict-transport-security", "value": HSTS},
                                               "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}}]}


def _tracing(t: Target) -> dict:
    """With an OTLP collector (OTEL_EXPORTER_OTLP_ENDPOINT), Envoy's spans go to it: each request
    continues the client's W3C `traceparent` or starts a trace, and sends it on to the service,
    which carries it further (services.common.tracing). Without one, the client's `traceparent`
    reaches the service as it came (the transcoder passes headers on as metadata), and a request
    without one starts its trace in the first service."""
    if not t.otlp_endpoint:
        return {}
    return {"tracing": {"provider": {"name": "envoy.tracers.opentelemetry", "typed_config": {
        "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig", "service_name": "gateway",
        "grpc_service": {"envoy_grpc": {"cluster_name": OTLP_CLUSTER}, "timeout": "1s"}}}}}


def _otlp_cluster(t: Target) -> list[dict]:
    if not t.otlp_endpoint:
        return []
    parts = urllib.parse.urlsplit(t.otlp_endpoint if "//" in t.otlp_endpoint else f"http://{t.otlp_endpoint}")
    return [{
        "name": OTLP_CLUSTER, "type": "STRICT_DNS", "connect_timeout": "1s",
        "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {}}}},
        "load_assignment": {"cluster_name": OTLP_CLUSTER, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
            "socket_address": {"address": parts.hostname, "port_value": parts.port or 4317}}}}]}]},
    }]


def build(t: Target) -> dict:
    manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
                 "HttpConnectionManager",
        "stat_prefix": "gateway",
        "codec_type": "AUTO",
        "normalize_path": True,
        "merge_slashes": True,
        "use_remote_address": True,
        "local_reply_config": _local_reply_config(),
        "route_config": {"name": "gateway", "max_direct_response_body_size_bytes": OPENAPI_MAX_BYTES,
                         "virtual_hosts": [{"name": "pictor", "domains": ["*"], "routes": _routes(t),
                                            # The transcoder keeps the REST path (query string and all) in
                                            # this header; the services do not read it, and a long one
                                            # would trip gRPC's 8 KiB metadata limit (a 429) before a
                                            # service could say what is wrong with the request.
                                            "request_headers_to_remove": ["x-envoy-original-path"],
                                            "retry_policy": RETRY_UNSENT}]},
        "http_filters": _http_filters(t),
        **_tracing(t),
    }
    chain: dict = {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": manager}]}
    if t.tls_cert:
        chain["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "common_tls_context": {
                "alpn_protocols": ["h2", "http/1.1"],
                "tls_certificates": [{"certificate_chain": {"filename": t.tls_cert},
                                      "private_key": {"filename": t.tls_key}}]}}}
    return {
        "admin": {"address": {"socket_address": {"address": t.admin_host, "port_value": t.admin_port}}},
        "static_resources": {
            "listeners": [{
                "name": "gateway",
                "address": {"socket_address": {"address": t.listen_host, "port_value": t.gateway_port}},
                "enable_reuse_port": False,
                "per_connection_buffer_limit_bytes": MAX_BODY_BYTES,
                "filter_chains": [chain],
            }],
            "clusters": [
                _cluster(t, s.name, t.upstreams[s.name], s.proto_services[0], t.dns) for s in SERVICES
            ] + _otlp_cluster(t),
        },
    }


def render(t: Target) -> str:
    header = "# Generated by `python -m services.mesh.envoy_config`; do not edit by hand.\n"
    return header + yaml.safe_dump(build(t), sort_keys=False, width=120)


def main() -> None:
    parser = argparse.ArgumentParser(description="Write envoy/envoy.yaml and envoy/envoy-tls.yaml (the compose "
                                                 "flavours, with the default rate limits).")
    parser.add_argument("--check", action="store_true", help="fail when the checked-in files are stale")
    parser.add_argument("--out", type=Path, help="write the compose flavour with this environment's "
                                                 "PICTOR_RATE_LIMIT_* to this file instead (compose's "
                                                 "PICTOR_ENVOY_CONFIG)")
    parser.add_argument("--tls", action="store_true", help="with --out: the TLS flavour")
    args = parser.parse_args()
    if args.out:
        args.out.write_text(render(compose_target(tls=args.tls, from_env=True)))
        return
    files = {CHECKED_IN: render(compose_target()), CHECKED_IN_TLS: render(compose_target(tls=True))}
    if args.check:
        if any(not path.exists() or path.read_text() != text for path, text in files.items()):
            raise SystemExit("envoy/envoy.yaml is stale: run `make build`")
        return
    CHECKED_IN.parent.mkdir(exist_ok=True)
    for path, text in files.items():
        path.write_text(text)


if __name__ == "__main__":
    main()
