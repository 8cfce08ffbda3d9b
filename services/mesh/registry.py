"""The one place that defines the services of the mesh.

The launcher, the Envoy config, docker-compose.yml, the reflection catalogue and
the tests all derive from SERVICES. Adding a service means adding a line here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceSpec:
    # Short name: the process name, the Envoy cluster, the compose service and
    # the PICTOR_<NAME>_* environment prefix.
    name: str
    # Default gRPC port on loopback (overridden by PICTOR_<NAME>_PORT).
    port: int
    # Fully qualified proto services this process serves.
    proto_services: tuple[str, ...]
    # Generated modules (pb2) that define those services, for reflection.
    proto_modules: tuple[str, ...]

    @property
    def module(self) -> str:
        """The Python module whose `main()` runs this service."""
        return f"services.{self.name}.server"

    @property
    def env_prefix(self) -> str:
        return f"PICTOR_{self.name.upper()}"


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        name="accounts",
        port=50051,
        proto_services=("pictor.accounts.v1.AccountsService",),
        proto_modules=("pictor.accounts.v1.accounts_service_pb2",),
    ),
)


def by_name(name: str) -> ServiceSpec:
    for spec in SERVICES:
        if spec.name == name:
            return spec
    raise KeyError(f"no service named {name!r}; known: {[s.name for s in SERVICES]}")


def all_proto_services() -> tuple[str, ...]:
    return tuple(name for spec in SERVICES for name in spec.proto_services)
