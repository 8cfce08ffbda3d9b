"""PostsService gRPC servicer: proto to domain and back, nothing else."""

from __future__ import annotations

import asyncio
import logging

import grpc
from google.protobuf import empty_pb2
from pictor.engagement.v1.engagement_service_pb2 import PostState
from pictor.posts.v1 import posts_pb2, posts_service_pb2 as pb, posts_service_pb2_grpc

from services.common.auth import TokenVerifier
from services.common.clients import AccountsClient, EngagementClient, MediaClient, user_summary
from services.posts.service import Location, Post, PostsService

Context = grpc.aio.ServicerContext
log = logging.getLogger(__name__)


class PostHydrator:
    """Turns posts into their JSON shape as one viewer sees them: authors, signed media URLs and
    engagement (counts, liked_by_me, saved_by_me), each fetched in one batch for all the posts."""

    def __init__(self, accounts: AccountsClient, media: MediaClient, engagement: EngagementClient) -> None:
        self.accounts = accounts
        self.media = media
        self.engagement = engagement

    async def _states(self, viewer_id: int, post_ids: list[int]) -> dict[int, PostState]:
        try:
            return await self.engagement.post_states(viewer_id, post_ids)
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            # Posts without their counts beat no posts: the feed survives an engagement outage.
            log.warning("engagement unavailable; posts go out without likes and counts")
            return {}

    async def protos(self, posts: list[Post], viewer_id: int = 0) -> list[posts_pb2.Post]:
        """`viewer_id` (0: signed out) is whose liked_by_me and saved_by_me the posts carry."""
        authors, media, states = await asyncio.gather(
            self.accounts.get_users([p.author_id for p in posts]),
            self.media.get_media([m for p in posts for m in p.media_ids]),
            self._states(viewer_id, [p.id for p in posts]))
        result = []
        for post in posts:
            message = posts_pb2.Post(
                id=post.id, caption=post.caption, hashtags=post.hashtags, mentions=post.mentions,
                media=[media[m] for m in post.media_ids if m in media],
                like_count=post.like_count, comment_count=post.comment_count,
            )
            if post.id in states:
                state = states[post.id]
                message.like_count, message.comment_count = state.like_count, state.comment_count
                message.liked_by_me, message.saved_by_me = state.liked_by_me, state.saved_by_me
            if post.author_id in authors:
                message.author.CopyFrom(user_summary(authors[post.author_id]))
            if post.location is not None:
                message.location.CopyFrom(posts_pb2.Location(
                    name=post.location.name, lat=post.location.lat, lng=post.location.lng))
            if post.created_at is not None:
                message.created_at.FromDatetime(post.created_at)
            result.append(message)
        return result

    async def proto(self, post: Post, viewer_id: int = 0) -> posts_pb2.Post:
        return (await self.protos([post], viewer_id))[0]


class PostsServicer(posts_service_pb2_grpc.PostsServiceServicer):
    def __init__(self, service: PostsService, verifier: TokenVerifier, hydrator: PostHydrator) -> None:
        self.service = service
        self.verifier = verifier
        self.hydrator = hydrator

    async def GetPost(self, request: pb.GetPostRequest, context: Context) -> posts_pb2.Post:
        viewer = self.verifier.caller(context) or 0
        return await self.hydrator.proto(await self.service.get(viewer, request.post_id), viewer)

    async def ListUserPosts(self, request: pb.ListUserPostsRequest, context: Context) -> pb.ListPostsResponse:
        viewer = self.verifier.caller(context) or 0
        posts, token = await self.service.list_by_author(viewer, request.user_id, request.page_size,
                                                         request.page_token)
        return pb.ListPostsResponse(posts=await self.hydrator.protos(posts, viewer), next_page_token=token)

    async def CreatePost(self, request: pb.CreatePostRequest, context: Context) -> posts_pb2.Post:
        author = self.verifier.require_caller(context)
        location = None
        if request.HasField("location"):
            loc = request.location
            location = Location(loc.name, loc.lat, loc.lng)
        post = await self.service.create(author, list(request.media_ids), request.caption, location,
                                         request.request_id)
        return await self.hydrator.proto(post, author)

    async def UpdatePost(self, request: pb.UpdatePostRequest, context: Context) -> posts_pb2.Post:
        viewer = self.verifier.require_caller(context)
        if not request.HasField("caption"):
            return await self.hydrator.proto(await self.service.get(viewer, request.post_id), viewer)
        return await self.hydrator.proto(await self.service.update_caption(viewer, request.post_id, request.caption),
                                         viewer)

    async def DeletePost(self, request: pb.DeletePostRequest, context: Context) -> empty_pb2.Empty:
        await self.service.delete(self.verifier.require_caller(context), request.post_id)
        return empty_pb2.Empty()

    async def BatchGetPosts(self, request: pb.BatchGetPostsRequest, context: Context) -> pb.BatchGetPostsResponse:
        posts = await self.service.visible(request.viewer_id, list(request.post_ids))
        return pb.BatchGetPostsResponse(posts=await self.hydrator.protos(posts, request.viewer_id))

    async def ListRecentPostIds(self, request: pb.ListRecentPostIdsRequest, context: Context
                                ) -> pb.ListRecentPostIdsResponse:
        found = await self.service.recent_ids(list(request.author_ids), request.limit)
        return pb.ListRecentPostIdsResponse(posts=[pb.PostRef(post_id=p, author_id=a) for p, a in found])
