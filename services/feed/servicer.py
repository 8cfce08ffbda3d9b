"""FeedService gRPC servicer: proto to domain and back, nothing else."""

from __future__ import annotations

import grpc
from pictor.feed.v1 import feed_service_pb2 as pb
from pictor.feed.v1 import feed_service_pb2_grpc

from services.common.auth import TokenVerifier
from services.feed.service import CHRONOLOGICAL, RANKED, FeedService


class FeedServicer(feed_service_pb2_grpc.FeedServiceServicer):
    def __init__(self, service: FeedService, verifier: TokenVerifier) -> None:
        self.service = service
        self.verifier = verifier

    async def GetFeed(self, request: pb.GetFeedRequest, context: grpc.aio.ServicerContext) -> pb.GetFeedResponse:
        viewer = self.verifier.require_caller(context)
        mode = CHRONOLOGICAL if request.mode == pb.CHRONOLOGICAL else RANKED
        posts, token = await self.service.page(viewer, mode, request.page_size, request.page_token)
        return pb.GetFeedResponse(posts=posts, next_page_token=token)
