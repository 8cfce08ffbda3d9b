"""The OpenAPI document generated from the protos' HTTP rules."""

from __future__ import annotations

import pytest

from services.mesh import openapi
from services.mesh.http_rules import AUTH_NONE, AUTH_OPTIONAL, AUTH_REQUIRED, http_routes


@pytest.fixture(scope="module")
def document() -> dict:
    return openapi.document()


def schema(document: dict, name: str) -> dict:
    return document["components"]["schemas"][name]


def test_every_http_rule_is_an_operation(document):
    routes = http_routes()
    assert routes
    for route in routes:
        operation = document["paths"][route.template][route.verb]
        assert operation["x-grpc-method"] == route.grpc_path


def test_operation_ids_are_unique(document):
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def test_int64_is_a_string_enums_are_names_timestamps_are_date_times(document):
    post = schema(document, "pictor.posts.v1.Post")["properties"]
    assert post["id"]["type"] == "string" and post["id"]["format"] == "int64"
    assert post["created_at"] == {"type": "string", "format": "date-time"}
    assert post["like_count"]["type"] == "string"
    assert schema(document, "pictor.media.v1.Variant")["properties"]["width"]["type"] == "integer"
    follow = schema(document, "pictor.graph.v1.FollowResponse")["properties"]["state"]
    assert follow["type"] == "string" and "FOLLOWING" in follow["enum"]


def test_a_field_mask_is_a_string_query_parameter(document):
    parameters = document["paths"]["/v1/users/me"]["patch"]["parameters"]
    assert {"name": "update_mask", "in": "query"}.items() <= parameters[0].items()
    assert parameters[0]["schema"]["type"] == "string"


def test_path_ids_are_required_positive_strings(document):
    parameter = document["paths"]["/v1/posts/{post_id}"]["get"]["parameters"][0]
    assert parameter["in"] == "path" and parameter["required"] is True
    assert parameter["schema"]["pattern"] == "^[1-9][0-9]{0,17}$"


def test_bodies_leave_out_what_the_path_carries(document):
    body = document["paths"]["/v1/posts/{post_id}/comments"]["post"]["requestBody"]["content"]
    assert set(body["application/json"]["schema"]["properties"]) == {"text", "parent_comment_id"}


def test_raw_uploads_take_image_bytes(document):
    content = document["paths"]["/v1/media"]["post"]["requestBody"]["content"]
    assert content["image/jpeg"]["schema"] == {"type": "string", "format": "binary"}


def test_a_route_whose_json_the_service_writes_is_documented_and_limited_as_its_typed_method(document):
    """GET /v1/feed is GetFeedJson (a google.api.HttpBody of the page's JSON): its document is GetFeed's
    reply, and GetFeed itself stays open to gRPC clients through the gateway, under the same limits."""
    from services.common.registry import mesh_only_methods
    from services.mesh.envoy_config import method_classes

    route, = (r for r in http_routes() if r.template == "/v1/feed")
    assert (route.method.name, route.typed_twin.name) == ("GetFeedJson", "GetFeed")
    operation = document["paths"]["/v1/feed"]["get"]
    assert (operation["operationId"], operation["x-grpc-method"]) == ("GetFeed", route.grpc_path)
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] \
        == {"$ref": "#/components/schemas/pictor.feed.v1.GetFeedResponse"}
    assert operation["security"] == [{"bearer": []}]
    typed = "/pictor.feed.v1.FeedService/GetFeed"
    assert typed not in mesh_only_methods() and method_classes()[typed] == method_classes()[route.grpc_path]
    download, = (r for r in http_routes() if r.method.name == "GetMediaFile")  # a HttpBody of its own bytes
    assert download.typed_twin is None


@pytest.mark.parametrize(("template", "verb", "auth"), [
    ("/v1/users/me", "get", AUTH_REQUIRED), ("/v1/posts/{post_id}", "get", AUTH_OPTIONAL),
    ("/v1/accounts", "post", AUTH_NONE)])
def test_security_follows_what_the_servicer_asks_of_its_caller(document, template, verb, auth):
    security = document["paths"][template][verb]["security"]
    assert security == {AUTH_REQUIRED: [{"bearer": []}], AUTH_OPTIONAL: [{}, {"bearer": []}], AUTH_NONE: []}[auth]
    assert document["components"]["securitySchemes"]["bearer"]["bearerFormat"] == "JWT"


def test_every_error_is_the_envelope(document):
    for ops in document["paths"].values():
        for operation in ops.values():
            default = operation["responses"]["default"]["content"]["application/json"]["schema"]
            assert default == {"$ref": "#/components/schemas/Error"}
    assert schema(document, "Error")["required"] == ["code", "message"]
