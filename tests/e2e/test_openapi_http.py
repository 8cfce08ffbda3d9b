"""GET /openapi.json through the gateway, and the document agreeing with what the routes do."""

from __future__ import annotations

import json

import pytest

from services.mesh.http_rules import AUTH_REQUIRED, http_routes
from services.mesh.openapi import OPENAPI_FILE

pytestmark = pytest.mark.e2e


def test_the_gateway_serves_the_generated_document(gateway):
    r = gateway.get("/openapi.json")
    assert r.status == 200
    assert r.headers["content-type"] == "application/json"
    assert r.body == OPENAPI_FILE.read_bytes()
    assert json.loads(r.body)["openapi"].startswith("3.")


def test_the_document_is_only_read(gateway):
    r = gateway.post("/openapi.json", {})
    assert r.status == 404 and "code" in r.json


@pytest.mark.parametrize("route", [r for r in http_routes() if r.auth == AUTH_REQUIRED], ids=lambda r: r.name)
def test_a_route_documented_as_needing_a_token_answers_401_without_one(gateway, route):
    path = route.path(**{f.name: "1" for f in route.path_fields})
    if route.raw_body:
        r = gateway.request(route.verb.upper(), path, raw=b"x", headers={"content-type": "image/jpeg"})
    else:
        r = gateway.request(route.verb.upper(), path, {} if route.body else None)
    assert r.status == 401, (r.status, r.body)
    assert r.json["code"] == 16
