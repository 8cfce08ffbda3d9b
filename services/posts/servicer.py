"""PostsService gRPC servicer: proto to domain and back, nothing else."""

from __future__ import annotations

import grpc
from google.protobuf import empty_pb2
from pictor.exports.v1 import exports_pb2
from pictor.posts.v1 import posts_pb2, posts_service_pb2_grpc
from pictor.posts.v1 import posts_service_pb2 as pb

from services.common import exports
from services.common.auth import TokenVerifier
from services.posts.cache import compact
from services.posts.reading import PostReader
from services.posts.service import Location, Post, PostsService, not_found

Context = grpc.aio.ServicerContext


def scanned_proto(post: Post) -> posts_pb2.Post:
    """A post as the index rebuild reads it: the row's fields, no media, the author's id only."""
    message = posts_pb2.Post(id=post.id, caption=post.caption, hashtags=post.hashtags, mentions=post.mentions,
                             like_count=post.like_count, comment_count=post.comment_count)
    message.author.id = post.author_id
    if post.location is not None:
        message.location.CopyFrom(posts_pb2.Location(name=post.location.name, lat=post.location.lat,
                                                     lng=post.location.lng))
    if post.created_at is not None:
        message.created_at.FromDatetime(post.created_at)
    return message


class PostsServicer(posts_service_pb2_grpc.PostsServiceServicer):
    def __init__(self, service: PostsService, verifier: TokenVerifier, reader: PostReader,
                 user_data: exports.UserDataExport | None = None) -> None:
        self.service = service
        self.verifier = verifier
        self.reader = reader
        self.user_data = user_data

    async def ExportUserData(self, request: exports_pb2.ExportUserDataRequest, context: grpc.aio.ServicerContext
                             ) -> exports_pb2.ExportUserDataResponse:
        return await exports.answer(self.user_data, request)

    async def ScanPosts(self, request: pb.ScanPostsRequest, context: Context) -> pb.ScanPostsResponse:
        posts, next_after = await self.service.scan(request.shard, request.after_id, request.page_size)
        return pb.ScanPostsResponse(posts=[scanned_proto(p) for p in posts], next_after_id=next_after)

    async def GetPost(self, request: pb.GetPostRequest, context: Context) -> posts_pb2.Post:
        viewer = self.verifier.caller(context) or 0
        posts = await self.reader.read(viewer, [request.post_id])
        if posts:
            return posts[0]
        hidden = await self.service.hidden_for(viewer, request.post_id)
        if hidden is None:
            raise not_found(request.post_id)
        return await self.reader.shape_uncached(viewer, hidden)

    async def ListUserPosts(self, request: pb.ListUserPostsRequest, context: Context) -> pb.ListPostsResponse:
        viewer = self.verifier.caller(context) or 0
        posts, token = await self.service.list_by_author(viewer, request.user_id, request.page_size,
                                                         request.page_token)
        # list_by_author has just asked graph whether the viewer may see the author.
        shown = await self.reader.read(viewer, [p.id for p in posts], viewable={request.user_id})
        return pb.ListPostsResponse(posts=[compact(p) for p in shown], next_page_token=token)

    async def CreatePost(self, request: pb.CreatePostRequest, context: Context) -> posts_pb2.Post:
        author = self.verifier.require_caller(context)
        location = None
        if request.HasField("location"):
            loc = request.location
            location = Location(loc.name, loc.lat, loc.lng)
        post = await self.service.create(author, list(request.media_ids), request.caption, location,
                                         request.request_id)
        return await self.reader.shape(author, post)

    async def UpdatePost(self, request: pb.UpdatePostRequest, context: Context) -> posts_pb2.Post:
        viewer = self.verifier.require_caller(context)
        if not request.HasField("caption"):
            return await self.reader.shape(viewer, await self.service.get(viewer, request.post_id))
        return await self.reader.shape(viewer, await self.service.update_caption(viewer, request.post_id,
                                                                                 request.caption))

    async def DeletePost(self, request: pb.DeletePostRequest, context: Context) -> empty_pb2.Empty:
        await self.service.delete(self.verifier.require_caller(context), request.post_id)
        await self.reader.forget(request.post_id)
        return empty_pb2.Empty()

    async def ListSavedPosts(self, request: pb.ListSavedPostsRequest, context: Context) -> pb.ListPostsResponse:
        viewer = self.verifier.require_caller(context)
        posts, token = await self.reader.saved(viewer, request.page_size, request.page_token)
        return pb.ListPostsResponse(posts=[compact(p) for p in posts], next_page_token=token)

    async def BatchGetPosts(self, request: pb.BatchGetPostsRequest, context: Context) -> pb.BatchGetPostsResponse:
        return pb.BatchGetPostsResponse(posts=await self.reader.read(request.viewer_id, list(request.post_ids),
                                                                     viewer_state=not request.without_viewer_state))

    async def CheckPostAccess(self, request: pb.CheckPostAccessRequest, context: Context
                              ) -> pb.CheckPostAccessResponse:
        found = await self.service.visible(request.viewer_id, list(request.post_ids))
        return pb.CheckPostAccessResponse(posts=[pb.PostRef(post_id=p.id, author_id=p.author_id) for p in found])

    async def ListRecentPostIds(self, request: pb.ListRecentPostIdsRequest, context: Context
                                ) -> pb.ListRecentPostIdsResponse:
        found = await self.service.recent_ids(list(request.author_ids), request.limit)
        return pb.ListRecentPostIdsResponse(posts=[pb.PostRef(post_id=p, author_id=a) for p, a in found])

    async def RebuildTimelines(self, request: pb.RebuildTimelinesRequest, context: Context) -> empty_pb2.Empty:
        await self.service.rebuild_timelines(list(request.author_ids))
        return empty_pb2.Empty()

    async def CheckPostsExist(self, request: pb.CheckPostsExistRequest, context: Context
                              ) -> pb.CheckPostsExistResponse:
        return pb.CheckPostsExistResponse(existing_post_ids=await self.service.existing(list(request.post_ids)))
