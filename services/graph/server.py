"""Graph process: `python -m services.graph.server`."""

from __future__ import annotations

import grpc
from pictor.graph.v1 import graph_service_pb2_grpc

from services.common import erasure, server
from services.common.auth import TokenVerifier
from services.common.clients import AccountsClient
from services.common.exports import UserDataExport
from services.common.registry import by_name
from services.graph.erasure import GraphEraser
from services.graph.exports import KINDS
from services.graph.repository import PostgresGraphRepository, PostgresProfiles
from services.graph.service import GraphService
from services.graph.servicer import GraphServicer

SPEC = by_name("graph")


async def setup(grpc_server: grpc.aio.Server, resources: server.Resources) -> None:
    settings = resources.settings
    db = await resources.database()
    accounts = AccountsClient(resources.channels())
    edges = PostgresGraphRepository(db)
    service = GraphService(edges, PostgresProfiles(db))
    erasure.start(resources, "graph", GraphEraser(db, edges).erase_user)
    verifier = TokenVerifier(settings.jwks_file, settings.jwt_issuer)
    graph_service_pb2_grpc.add_GraphServiceServicer_to_server(GraphServicer(service, verifier, accounts, UserDataExport(db, KINDS)), grpc_server)


def main() -> None:
    server.main(SPEC, setup)


if __name__ == "__main__":
    main()
