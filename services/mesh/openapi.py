"""The OpenAPI 3 document of the JSON API, generated from the protos' HTTP rules.

Run by `make build` after codegen (it reads the generated descriptors); the
gateway serves the result at `GET /openapi.json`. Schemas follow what the
transcoder does: int64 as a string, enums by name, Timestamp as an RFC 3339
date-time, FieldMask as a comma-separated string; every error, the gateway's
own included, is the JSON envelope `Error`.

    python -m services.mesh.openapi [--out build/gen/openapi.json]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from services.mesh.codegen import DEFAULT_OUT, REPO_ROOT
from services.mesh.http_rules import AUTH_NONE, AUTH_REQUIRED, HTTP_BODY, HttpRoute, http_routes

OPENAPI_FILE = DEFAULT_OUT / "openapi.json"
ERROR = "Error"
INT64 = {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"}
UINT64 = {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"}
# What a request may send (18 digits stay inside int64): an id in a path is
# positive; other int64 inputs (an optional id, an offset) are not negative.
PATH_ID = {"type": "string", "format": "int64", "pattern": "^[1-9][0-9]{0,17}$"}
NOT_NEGATIVE = {"type": "string", "format": "int64", "pattern": "^(0|[1-9][0-9]{0,17})$"}
_T = FieldDescriptor
INT64_TYPES = {_T.TYPE_INT64, _T.TYPE_SINT64, _T.TYPE_SFIXED64}
SCALARS: dict[int, dict[str, Any]] = {
    _T.TYPE_INT64: INT64, _T.TYPE_SINT64: INT64, _T.TYPE_SFIXED64: INT64,
    _T.TYPE_UINT64: UINT64, _T.TYPE_FIXED64: UINT64,
    _T.TYPE_INT32: {"type": "integer", "format": "int32"}, _T.TYPE_SINT32: {"type": "integer", "format": "int32"},
    _T.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    _T.TYPE_UINT32: {"type": "integer", "format": "int32", "minimum": 0},
    _T.TYPE_FIXED32: {"type": "integer", "format": "int32", "minimum": 0},
    _T.TYPE_BOOL: {"type": "boolean"}, _T.TYPE_STRING: {"type": "string"},
    _T.TYPE_BYTES: {"type": "string", "format": "byte"},
    _T.TYPE_DOUBLE: {"type": "number", "format": "double"}, _T.TYPE_FLOAT: {"type": "number", "format": "float"},
}
WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$"},
    "google.protobuf.FieldMask": {"type": "string", "description": "Comma-separated field paths."},
    "google.protobuf.Empty": {"type": "object"},
}
# The gateway's error envelope: google.rpc.Status with google.rpc.ErrorInfo details (and RetryInfo).
ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "integer", "description": "The gRPC status code."},
        "message": {"type": "string"},
        "details": {"type": "array", "items": {
            "type": "object",
            "properties": {
                "@type": {"type": "string"},
                "reason": {"type": "string", "description": "UPPER_SNAKE_CASE, e.g. INVALID_ID."},
                "domain": {"type": "string"},
                "metadata": {"type": "object", "additionalProperties": {"type": "string"},
                             "description": "`field` names the input at fault."},
                "retry_delay": {"type": "string", "description": "In a google.rpc.RetryInfo detail (after the "
                                "ErrorInfo) of a 503 that knows when to come back, e.g. \"2s\"; the "
                                "Retry-After header says the same."},
            }}},
    },
}
RAW_TYPES = ("application/octet-stream", "image/jpeg", "image/png", "image/webp", "image/gif", "image/avif",
             "image/heic")


class _Schemas:
    """Component schemas for the messages the routes reach, named by their full proto name."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {ERROR: ERROR_SCHEMA}

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            return {"type": "object", "additionalProperties": self.single(field.message_type.fields_by_name["value"])}
        schema = self.single(field)
        if field.is_repeated:
            return {"type": "array", "items": schema}
        return schema

    def single(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.enum_type is not None:
            return {"type": "string", "enum": [v.name for v in field.enum_type.values]}
        if field.message_type is not None:
            return self.message(field.message_type)
        return dict(SCALARS[field.type])

    def message(self, message: Descriptor) -> dict[str, Any]:
        if message.full_name in WELL_KNOWN:
            return dict(WELL_KNOWN[message.full_name])
        if message.full_name not in self.components:
            self.components[message.full_name] = {}  # placeholder: messages may refer to themselves
            self.components[message.full_name] = self.object(message.fields)
        return {"$ref": f"#/components/schemas/{message.full_name}"}

    def object(self, fields: list[FieldDescriptor]) -> dict[str, Any]:
        return {"type": "object", "properties": {f.name: self.field(f) for f in fields}}

    def request_field(self, field: FieldDescriptor, *, in_path: bool = False) -> dict[str, Any]:
        """A field of a request message as a client fills it: ids as the services accept them."""
        if field.type not in INT64_TYPES:
            return self.field(field)
        if field.is_repeated:
            return {"type": "array", "items": PATH_ID}
        return dict(PATH_ID if in_path else NOT_NEGATIVE)


def _comments() -> dict[str, str]:
    """Leading comments of services and methods, by full name (from the descriptor set's source info)."""
    path = DEFAULT_OUT / "pictor.pb"
    found: dict[str, str] = {}
    if not path.exists():
        return found
    for file in descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes()).file:
        for location in file.source_code_info.location:
            p = list(location.path)
            if len(p) == 4 and p[0] == 6 and p[2] == 2:  # service N, method M
                service = file.service[p[1]]
                name = f"{file.package}.{service.name}.{service.method[p[3]].name}"
                found[name] = " ".join(location.leading_comments.split())
    return found


def _parameter(name: str, where: str, field: FieldDescriptor, schemas: _Schemas) -> dict[str, Any]:
    schema = schemas.request_field(field, in_path=where == "path")
    parameter = {"name": name, "in": where, "required": where == "path", "schema": schema}
    if where == "query" and schema.get("type") == "array":
        parameter.update(style="form", explode=True)
    return parameter


def _request_body(route: HttpRoute, schemas: _Schemas) -> dict[str, Any] | None:
    if not route.body:
        return None
    if route.raw_body:
        binary = {"schema": {"type": "string", "format": "binary"}}
        return {"required": True, "content": {t: binary for t in RAW_TYPES}}
    if route.body == "*":
        schema = {"type": "object", "properties": {f.name: schemas.request_field(f) for f in route.body_fields}}
    else:
        schema = schemas.field(route.body_fields[0])
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _success(route: HttpRoute, schemas: _Schemas) -> dict[str, Any]:
    output = route.method.output_type
    if route.typed_twin is not None:  # JSON the service wrote: its typed twin's reply
        output = route.typed_twin.output_type
    elif output.full_name == HTTP_BODY:
        return {"description": "The bytes, with their own content type.",
                "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}
    return {"description": "OK", "content": {"application/json": {"schema": schemas.message(output)}}}


def _operation(route: HttpRoute, schemas: _Schemas, comments: dict[str, str]) -> dict[str, Any]:
    method = route.typed_twin or route.method  # a JSON twin is documented as the method it writes
    operation: dict[str, Any] = {
        "operationId": method.name,
        "tags": [method.containing_service.name],
        "summary": comments.get(method.full_name, "") or method.name,
        "x-grpc-method": route.grpc_path,
    }
    parameters = [_parameter(f.name, "path", f, schemas) for f in route.path_fields]
    parameters += [_parameter(name, "query", f, schemas) for name, f in route.query_fields]
    if parameters:
        operation["parameters"] = parameters
    body = _request_body(route, schemas)
    if body:
        operation["requestBody"] = body
    if route.auth == AUTH_REQUIRED:
        operation["security"] = [{"bearer": []}]
    elif route.auth == AUTH_NONE:
        operation["security"] = []
    else:  # a token is optional: anonymous or signed in
        operation["security"] = [{}, {"bearer": []}]
    operation["responses"] = {
        "200": _success(route, schemas),
        "default": {"description": "An error: the JSON envelope, with the matching HTTP status.",
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR}"}}}},
    }
    return operation


def document() -> dict[str, Any]:
    schemas = _Schemas()
    comments = _comments()
    paths: dict[str, dict[str, Any]] = {}
    seen: dict[str, list[HttpRoute]] = {}
    for route in http_routes():
        operation = _operation(route, schemas, comments)
        if route.method.name in seen:  # an additional binding of one method
            operation["operationId"] += f"_{len(seen[route.method.name])}"
        seen.setdefault(route.method.name, []).append(route)
        paths.setdefault(route.template, {})[route.verb] = operation
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Pictor",
            "version": "v1",
            "description": "JSON through the Envoy gateway, generated from the protos' google.api.http rules. "
                           "Ids are 64-bit integers and travel as JSON strings; timestamps are RFC 3339. "
                           "Every error is the JSON envelope `Error` with the matching HTTP status.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                           "description": "access_token from POST /v1/accounts or /v1/sessions"}},
        },
    }


def render() -> str:
    return json.dumps(document(), indent=1, sort_keys=False) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OPENAPI_FILE)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = render()
    args.out.write_text(text)
    print(f"wrote {len(json.loads(text)['paths'])} paths into {os.path.relpath(args.out, REPO_ROOT)}")


if __name__ == "__main__":
    main()
