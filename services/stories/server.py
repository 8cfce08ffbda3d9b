"""Stories process: `python -m services.stories.server`.

The story_cleanup worker (services.stories.worker) cleans up after deleted stories.
"""

from __future__ import annotations

import grpc
from pictor.stories.v1 import stories_service_pb2_grpc

from services.common import erasure, server
from services.common.auth import TokenVerifier
from services.common.clients import AccountsClient, GraphClient, MediaClient
from services.common.exports import UserDataExport
from services.common.registry import by_name
from services.stories.adapters import AuthorSummaries, GraphRelations, StoryMedia
from services.stories.erasure import StoriesEraser
from services.stories.exports import KINDS
from services.stories.index import RedisStoryIndex
from services.stories.repository import PostgresStoryRepository
from services.stories.service import StoriesConfig, StoriesService
from services.stories.servicer import StoriesServicer
from services.stories.views import ViewBatcher

SPEC = by_name("stories")


async def setup(grpc_server: grpc.aio.Server, resources: server.Resources) -> None:
    settings, channels = resources.settings, resources.channels()
    config = StoriesConfig.from_env()
    db = await resources.database()
    linger = config.batch_linger_s
    repo = PostgresStoryRepository(db, linger)
    erasure.start(resources, "stories", StoriesEraser(db, resources.redis()).erase_user)
    views = ViewBatcher(repo, linger_s=linger)
    resources.on_close(views.close)
    media = StoryMedia(MediaClient(channels))
    service = StoriesService(repo, RedisStoryIndex(resources.redis(), repo, config.ttl_s, linger), views,
                             GraphRelations(GraphClient(channels), linger), media, await resources.ids(), config)
    stories_service_pb2_grpc.add_StoriesServiceServicer_to_server(
        StoriesServicer(service, TokenVerifier(settings.jwks_file, settings.jwt_issuer),
                        AuthorSummaries(AccountsClient(channels)), media, UserDataExport(db, KINDS)), grpc_server)


def main() -> None:
    server.main(SPEC, setup)


if __name__ == "__main__":
    main()
