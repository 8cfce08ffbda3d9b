"""Ids: new ones from hotpath's sharded generator (one per logical shard), and
the check that refuses ids no row can have before a handler sees them."""

from __future__ import annotations

import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import grpc
from google.api import annotations_pb2
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from hotpath.ids import IdGenerator, shard_of
from services.common.errors import InvalidArgument

__all__ = ["IdAllocator", "IdCheckInterceptor", "check_request_ids", "shard_of"]


class IdAllocator:
    """Hands out ids in a given logical shard, or in a random one for new users.

    NOTE: the generator's uniqueness holds within one process. Running two
    replicas of one service needs disjoint sequence ranges per replica (not
    yet needed: the launcher runs one process per service).
    """

    def __init__(self, logical_shards: int) -> None:
        self.logical_shards = logical_shards
        self._generators: dict[int, IdGenerator] = {}

    def new_id(self, shard: int) -> int:
        generator = self._generators.get(shard)
        if generator is None:
            generator = self._generators[shard] = IdGenerator(shard)
        return generator.next_id()

    def new_id_in_random_shard(self) -> int:
        return self.new_id(random.randrange(self.logical_shards))


# --- ids a client sends -----------------------------------------------------------

_PATH_FIELD = re.compile(r"{([^}=]+)")
_INT64 = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64}


@dataclass(frozen=True)
class _IdRules:
    """What a method's request may carry: the int64 fields to check, and which are in its HTTP path."""

    int64_fields: tuple[str, ...]
    in_path: frozenset[str]


def _is_id(name: str) -> bool:
    return name == "id" or name.endswith(("_id", "_ids"))


@cache
def _rules(method_path: str) -> _IdRules | None:
    """The rules for a gRPC method path (None when it has no HTTP rule: the mesh's own calls)."""
    name = method_path.lstrip("/").replace("/", ".")
    try:
        method = descriptor_pool.Default().FindMethodByName(name)
    except KeyError:
        return None
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return None
    rule = options.Extensions[annotations_pb2.http]
    templates = [getattr(r, r.WhichOneof("pattern")) for r in (rule, *rule.additional_bindings)]
    in_path = {f for t in templates if isinstance(t, str) for f in _PATH_FIELD.findall(t)}
    fields = tuple(f.name for f in method.input_type.fields if f.type in _INT64)
    return _IdRules(fields, frozenset(in_path))


def check_request_ids(method_path: str, request: Message) -> None:
    """InvalidArgument naming the field when a client's request carries an id no row can have.

    Ids are positive: an id in the route's path must be one; an id elsewhere
    may be 0 where the field is optional (parent_comment_id), never negative,
    and the ids of a list are each positive. Other int64 inputs (offsets,
    sizes, expiry times) are never negative. Values past int64 and what is not
    a number never get here: the gateway refuses them.
    """
    rules = _rules(method_path)
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


class IdCheckInterceptor(grpc.aio.ServerInterceptor):
    """Runs check_request_ids before the handler of every unary method with an HTTP rule.

    It goes after ErrorInterceptor, which turns the InvalidArgument into its status.
    """

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or handler.unary_unary is None or _rules(method) is None:
            return handler
        behavior = handler.unary_unary

        async def checked(request: Any, context: grpc.aio.ServicerContext) -> Any:
            check_request_ids(method, request)
            return await behavior(request, context)

        return grpc.unary_unary_rpc_method_handler(
            checked, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)
