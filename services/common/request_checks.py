"""What every service checks of a client's request before a handler sees it.

- It decodes. The transcoder passes a path like /v1/usernames/a%FF on as a
  string field holding bad UTF-8, which gRPC would refuse with UNKNOWN (a 500
  at the gateway); here it is INVALID_ARGUMENT naming the field.
- Its ids are ids (check_request_ids): positive in a route's path and in lists,
  never negative anywhere. Values past int64 or not a number never get here:
  the gateway refuses them, naming the field.

Both run in RequestCheckInterceptor, after ErrorInterceptor (which turns the
InvalidArgument into its status).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import grpc
from google.api import annotations_pb2
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import DecodeError, Message

from services.common.errors import InvalidArgument
from services.common.handler_wraps import HandlerWrap

_PATH_FIELD = re.compile(r"{([^}=]+)")
_INT64 = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64}


@cache
def _method(method_path: str) -> MethodDescriptor | None:
    try:
        return descriptor_pool.Default().FindMethodByName(method_path.lstrip("/").replace("/", "."))
    except KeyError:
        return None


# --- ids -------------------------------------------------------------------------


@dataclass(frozen=True)
class _IdRules:
    """What a method's request may carry: the int64 fields to check, and which are in its HTTP path."""

    int64_fields: tuple[str, ...]
    in_path: frozenset[str]


def _is_id(name: str) -> bool:
    return name == "id" or name.endswith(("_id", "_ids"))


@cache
def _id_rules(method_path: str) -> _IdRules | None:
    """The rules for a gRPC method path (None when it has no HTTP rule: the mesh's own calls)."""
    method = _method(method_path)
    if method is None or not method.GetOptions().HasExtension(annotations_pb2.http):
        return None
    rule = method.GetOptions().Extensions[annotations_pb2.http]
    templates = [getattr(r, r.WhichOneof("pattern")) for r in (rule, *rule.additional_bindings)]
    in_path = {f for t in templates if isinstance(t, str) for f in _PATH_FIELD.findall(t)}
    fields = tuple(f.name for f in method.input_type.fields if f.type in _INT64)
    return _IdRules(fields, frozenset(in_path))


def check_request_ids(method_path: str, request: Message) -> None:
    """InvalidArgument (INVALID_ID) naming the field when a client's request carries an id no row can have.

    Ids are positive: an id in the route's path must be one; an id elsewhere
    may be 0 where the field is optional (parent_comment_id), never negative,
    and the ids of a list are each positive. Other int64 inputs (offsets,
    sizes, expiry times) are never negative.
    """
    rules = _id_rules(method_path)
    if rules is None:
        return
    for name in rules.int64_fields:
        value = getattr(request, name)
        repeated = not isinstance(value, int)
        values = list(value) if repeated else [value]
        lowest = 1 if name in rules.in_path or (repeated and _is_id(name)) else 0
        if any(v < lowest for v in values):
            if _is_id(name):
                what = "an id" if lowest else "an id or 0"
                raise InvalidArgument(name, f"{name} must be {what}, a positive 64-bit integer", reason="INVALID_ID")
            raise InvalidArgument(name, f"{name} must not be negative")


# --- text ------------------------------------------------------------------------


def _varint(data: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, i
        shift += 7


def bad_utf8_field(message: Descriptor, data: bytes, prefix: str = "") -> str:
    """The (dotted) name of the first string field in the serialized `data` that is not UTF-8, or ""."""
    i = 0
    try:
        while i < len(data):
            key, i = _varint(data, i)
            number, wire_type = key >> 3, key & 7
            if wire_type == 0:
                _, i = _varint(data, i)
            elif wire_type in (1, 5):
                i += 8 if wire_type == 1 else 4
            elif wire_type == 2:
                size, i = _varint(data, i)
                chunk, i = data[i:i + size], i + size
                field = message.fields_by_number.get(number)
                if field is None:
                    continue
                if field.type == FieldDescriptor.TYPE_STRING:
                    try:
                        chunk.decode("utf-8")
                    except UnicodeDecodeError:
                        return prefix + field.name
                elif field.type == FieldDescriptor.TYPE_MESSAGE:
                    found = bad_utf8_field(field.message_type, chunk, f"{prefix}{field.name}.")
                    if found:
                        return found
            else:
                return ""  # groups: nothing sends them
    except IndexError:
        return ""
    return ""


@dataclass(frozen=True)
class _Undecodable:
    """Stands in for a request that did not parse, so the handler's wrapper can refuse it with a status."""

    field: str


def _refuse(undecodable: _Undecodable) -> InvalidArgument:
    if undecodable.field:
        return InvalidArgument(undecodable.field, f"{undecodable.field} is not valid UTF-8", reason="INVALID_UTF8")
    return InvalidArgument("body", "the request could not be read", reason="MALFORMED_REQUEST")


class RequestCheckInterceptor(HandlerWrap):
    """Runs the checks above before the handler of every unary method."""

    def wrap(self, method_path: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        if handler.unary_unary is None:
            return handler
        method = _method(method_path)
        behavior, deserialize = handler.unary_unary, handler.request_deserializer

        def tolerant(data: bytes) -> Any:
            try:
                return deserialize(data)
            except DecodeError:
                return _Undecodable(bad_utf8_field(method.input_type, data) if method else "")

        async def checked(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if isinstance(request, _Undecodable):
                raise _refuse(request)
            check_request_ids(method_path, request)
            return await behavior(request, context)

        return grpc.unary_unary_rpc_method_handler(
            checked, request_deserializer=tolerant, response_serializer=handler.response_serializer)
