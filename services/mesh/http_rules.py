"""The gateway's JSON routes, read from the protos' google.api.http rules.

The OpenAPI generator and the tests that try bad input on every route read
them here, so a new rule is covered without being listed anywhere else. What a
route needs of its caller (a token, or none) is read from its servicer: a
handler that calls `require_caller` needs one, one that calls `caller` takes
one when sent.
"""

from __future__ import annotations

import ast
import importlib
import re
from dataclasses import dataclass
from functools import cache

from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor

from services.common.config import REPO_ROOT
from services.common.registry import SERVICES

VERBS = ("get", "put", "post", "delete", "patch")
# Messages that travel as one JSON string, not as an object.
STRING_MESSAGES = {"google.protobuf.Timestamp", "google.protobuf.FieldMask", "google.protobuf.Duration"}
HTTP_BODY = "google.api.HttpBody"
# A method `<Name>Json` returning a HttpBody beside a `<Name>` taking the same request is <Name>'s reply
# written as JSON by the service (the gateway sends it on): the route's JSON is <Name>'s output's.
JSON_TWIN_SUFFIX = "Json"
AUTH_REQUIRED, AUTH_OPTIONAL, AUTH_NONE = "required", "optional", "none"


@dataclass(frozen=True)
class HttpRoute:
    verb: str
    # The rule's path template, e.g. "/v1/uploads/{upload_id}:complete".
    template: str
    method: MethodDescriptor
    # "" (no body), "*" (the request's fields not in the path) or one field's name.
    body: str
    auth: str

    @property
    def name(self) -> str:
        return f"{self.verb.upper()} {self.template}"

    @property
    def grpc_path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def path_fields(self) -> list[FieldDescriptor]:
        names = re.findall(r"{([^}=]+)", self.template)
        return [self.method.input_type.fields_by_name[n] for n in names]

    @property
    def body_fields(self) -> list[FieldDescriptor]:
        if self.body == "*":
            in_path = {f.name for f in self.path_fields}
            return [f for f in self.method.input_type.fields if f.name not in in_path]
        return [self.method.input_type.fields_by_name[self.body]] if self.body else []

    @property
    def query_fields(self) -> list[tuple[str, FieldDescriptor]]:
        """(dotted name, field) of the scalars a caller may pass in the query string."""
        if self.body == "*":
            return []
        taken = {f.name for f in (*self.path_fields, *self.body_fields)}
        return [(name, f) for name, f in _flatten(self.method.input_type) if name.split(".")[0] not in taken]

    @property
    def raw_body(self) -> bool:
        """The body is the raw bytes of a google.api.HttpBody (an upload), not JSON."""
        fields = self.body_fields
        return self.body not in ("", "*") and fields[0].message_type is not None \
            and fields[0].message_type.full_name == HTTP_BODY

    @property
    def typed_twin(self) -> MethodDescriptor | None:
        """The typed method whose reply this route sends as JSON the service wrote (JSON_TWIN_SUFFIX)."""
        name = self.method.name.removesuffix(JSON_TWIN_SUFFIX)
        twin = self.method.containing_service.methods_by_name.get(name) if name != self.method.name else None
        if twin is None or self.method.output_type.full_name != HTTP_BODY \
                or twin.input_type is not self.method.input_type:
            return None
        return twin

    def path(self, **values: object) -> str:
        return re.sub(r"{([^}=]+)(=[^}]*)?}", lambda m: str(values[m.group(1)]), self.template)


def _flatten(message: Descriptor, prefix: str = "") -> list[tuple[str, FieldDescriptor]]:
    fields = []
    for field in message.fields:
        name = prefix + field.name
        if field.message_type is not None and field.message_type.full_name not in STRING_MESSAGES:
            if not field.is_repeated and field.message_type.full_name != HTTP_BODY:
                fields.extend(_flatten(field.message_type, name + "."))
            continue
        fields.append((name, field))
    return fields


def _rules(rule: http_pb2.HttpRule) -> list[tuple[str, str, str]]:
    found = []
    for r in (rule, *rule.additional_bindings):
        pattern = r.WhichOneof("pattern")
        if pattern == "custom":
            found.append((r.custom.kind.lower(), r.custom.path, r.body))
        elif pattern in VERBS:
            found.append((pattern, getattr(r, pattern), r.body))
    return found


@cache
def _servicer_auth(service_name: str) -> dict[str, str]:
    """Handler name -> whether it requires, accepts or ignores a caller's token."""
    source = (REPO_ROOT / "services" / service_name / "servicer.py").read_text()
    found = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef):
            calls = {c.func.attr for c in ast.walk(node)
                     if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)}
            found[node.name] = (AUTH_REQUIRED if "require_caller" in calls
                                else AUTH_OPTIONAL if "caller" in calls else AUTH_NONE)
    return found


def http_routes() -> list[HttpRoute]:
    """Every route of every service in the registry, in registry and proto order."""
    routes = []
    for spec in SERVICES:
        for module_name in spec.proto_modules:
            module = importlib.import_module(module_name)
            for service in module.DESCRIPTOR.services_by_name.values():
                for method in service.methods:
                    options = method.GetOptions()
                    if not options.HasExtension(annotations_pb2.http):
                        continue
                    auth = _servicer_auth(spec.name).get(method.name, AUTH_NONE)
                    for verb, template, body in _rules(options.Extensions[annotations_pb2.http]):
                        routes.append(HttpRoute(verb, template, method, body, auth))
    return routes
