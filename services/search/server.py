"""Search process: `python -m services.search.server`.

The indexer worker (services.search.worker) keeps the index from events; the
explore_model worker (services.search.model_worker) refreshes explore's model;
`python -m services.search.rebuild` rebuilds the index from the owners.
"""

from __future__ import annotations

import grpc
from pictor.search.v1 import search_service_pb2_grpc

from services.common import erasure, server
from services.common.auth import TokenVerifier
from services.common.clients import GraphClient, PostsClient
from services.common.registry import by_name
from services.search.adapters import GraphRelations, PostPages, RedisExplorePages
from services.search.erasure import SearchEraser
from services.search.prefixes import RedisPrefixIndex
from services.search.repository import PostgresSearchIndex
from services.search.service import SearchService
from services.search.servicer import SearchServicer
from services.search.trending import RedisTrends

SPEC = by_name("search")


async def setup(grpc_server: grpc.aio.Server, resources: server.Resources) -> None:
    settings, channels, client = resources.settings, resources.channels(), resources.redis()
    index = PostgresSearchIndex(await resources.database())
    prefixes = RedisPrefixIndex(client)
    # An index that holds nobody yet (a new stack) is whole from the start: events fill it. One that
    # holds users waits for a rebuild (`python -m services.search.rebuild --only prefixes`).
    if not await prefixes.ready() and not await index.any_user():
        await prefixes.mark_ready()
    erasure.start(resources, "search", SearchEraser(index, client, prefixes).erase_user)
    service = SearchService(index, GraphRelations(GraphClient(channels)),
                            RedisTrends(client), RedisExplorePages(client), prefixes)
    search_service_pb2_grpc.add_SearchServiceServicer_to_server(
        SearchServicer(service, TokenVerifier(settings.jwks_file, settings.jwt_issuer),
                       PostPages(PostsClient(channels))), grpc_server)


def main() -> None:
    server.main(SPEC, setup)


if __name__ == "__main__":
    main()
