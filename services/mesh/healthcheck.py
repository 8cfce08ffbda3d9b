"""Container health check: exit 0 when the service answers SERVING.

    python -m services.mesh.healthcheck HOST:PORT [SERVICE]

Over the mesh's mutual TLS, with the container's own certificate (PICTOR_MESH_DIR,
PICTOR_MESH_IDENTITY); SERVICE is a proto service of the registry (its server's name is checked).
"""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.config import load_settings
from services.common.mesh_tls import mesh_channel
from services.common.registry import SERVICES


def main() -> None:
    address = sys.argv[1]
    service = sys.argv[2] if len(sys.argv) > 2 else ""
    settings = load_settings()
    server = next((s.name for s in SERVICES if service in s.proto_services), settings.mesh_identity)
    with mesh_channel(address, server, settings.mesh_dir, settings.mesh_identity, aio=False) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
        except grpc.RpcError as e:
            sys.exit(f"{address}: {e.code().name}")
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        sys.exit(f"{address}: {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}")


if __name__ == "__main__":
    main()
