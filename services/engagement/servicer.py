"""EngagementService gRPC servicer: proto to domain and back, nothing else."""

from __future__ import annotations

import grpc
from google.protobuf import empty_pb2
from pictor.engagement.v1 import engagement_pb2, engagement_service_pb2_grpc
from pictor.engagement.v1 import engagement_service_pb2 as pb
from pictor.exports.v1 import exports_pb2

from services.common import exports
from services.common.auth import TokenVerifier
from services.common.clients import AccountsClient, user_summary
from services.engagement.purge import PostPurger
from services.engagement.service import Comment, EngagementService, Order
from services.engagement.warm_states import state_proto

Context = grpc.aio.ServicerContext
EMPTY = empty_pb2.Empty()


class EngagementServicer(engagement_service_pb2_grpc.EngagementServiceServicer):
    def __init__(self, service: EngagementService, verifier: TokenVerifier, accounts: AccountsClient,
                 purger: PostPurger,
                 user_data: exports.UserDataExport | None = None) -> None:
        self.service = service
        self.verifier = verifier
        self.accounts = accounts
        self.purger = purger
        self.user_data = user_data

    async def ExportUserData(self, request: exports_pb2.ExportUserDataRequest, context: grpc.aio.ServicerContext
                             ) -> exports_pb2.ExportUserDataResponse:
        return await exports.answer(self.user_data, request)

    async def ScanLikes(self, request: pb.ScanLikesRequest, context: Context) -> pb.ScanLikesResponse:
        likes = await self.service.scan_likes(request.shard, (request.after_post_id, request.after_user_id),
                                              request.page_size)
        return pb.ScanLikesResponse(likes=[pb.ScannedLike(post_id=p, user_id=u, created_at_ms=int(at.timestamp() * 1000))
                                           for p, u, at in likes])

    async def _comments(self, comments: list[Comment], token: str = "") -> pb.ListCommentsResponse:
        return pb.ListCommentsResponse(comments=await self._comment_protos(comments), next_page_token=token)

    async def _comment_protos(self, comments: list[Comment]) -> list[engagement_pb2.Comment]:
        authors = await self.accounts.get_users([c.author_id for c in comments]) if comments else {}
        result = []
        for c in comments:
            message = engagement_pb2.Comment(id=c.id, post_id=c.post_id, text=c.text, parent_comment_id=c.parent_id,
                                             reply_count=c.reply_count, mentions=c.mentions)
            if c.author_id in authors:
                message.author.CopyFrom(user_summary(authors[c.author_id]))
            if c.created_at is not None:
                message.created_at.FromDatetime(c.created_at)
            result.append(message)
        return result

    async def ListComments(self, request: pb.ListCommentsRequest, context: Context) -> pb.ListCommentsResponse:
        viewer = self.verifier.caller(context) or 0
        order = Order.OLDEST if request.order == pb.OLDEST else Order.NEWEST
        comments, token = await self.service.list_comments(viewer, request.post_id, order, request.page_size,
                                                           request.page_token)
        return await self._comments(comments, token)

    async def ListCommentReplies(self, request: pb.ListCommentRepliesRequest, context: Context
                                 ) -> pb.ListCommentsResponse:
        viewer = self.verifier.caller(context) or 0
        replies, token = await self.service.list_replies(viewer, request.comment_id, request.page_size,
                                                         request.page_token)
        return await self._comments(replies, token)

    async def CreateComment(self, request: pb.CreateCommentRequest, context: Context) -> engagement_pb2.Comment:
        viewer = self.verifier.require_caller(context)
        comment = await self.service.create_comment(viewer, request.post_id, request.text, request.parent_comment_id)
        return (await self._comment_protos([comment]))[0]

    async def DeleteComment(self, request: pb.DeleteCommentRequest, context: Context) -> empty_pb2.Empty:
        await self.service.delete_comment(self.verifier.require_caller(context), request.comment_id)
        return EMPTY

    async def LikePost(self, request: pb.LikePostRequest, context: Context) -> pb.LikeResponse:
        liked, count = await self.service.like(self.verifier.require_caller(context), request.post_id)
        return pb.LikeResponse(liked=liked, like_count=count)

    async def UnlikePost(self, request: pb.UnlikePostRequest, context: Context) -> pb.LikeResponse:
        liked, count = await self.service.unlike(self.verifier.require_caller(context), request.post_id)
        return pb.LikeResponse(liked=liked, like_count=count)

    async def ListPostLikes(self, request: pb.ListPostLikesRequest, context: Context) -> pb.ListPostLikesResponse:
        viewer = self.verifier.caller(context) or 0
        user_ids, token = await self.service.likers(viewer, request.post_id, request.page_size, request.page_token)
        found = await self.accounts.get_users(user_ids) if user_ids else {}
        return pb.ListPostLikesResponse(users=[found[u] for u in user_ids if u in found], next_page_token=token)

    async def SavePost(self, request: pb.SavePostRequest, context: Context) -> pb.SaveResponse:
        return pb.SaveResponse(saved=await self.service.save(self.verifier.require_caller(context), request.post_id))

    async def UnsavePost(self, request: pb.UnsavePostRequest, context: Context) -> pb.SaveResponse:
        return pb.SaveResponse(saved=await self.service.unsave(self.verifier.require_caller(context), request.post_id))

    async def ListSavedPostIds(self, request: pb.ListSavedPostIdsRequest, context: Context
                               ) -> pb.ListSavedPostIdsResponse:
        # Whether the user can still see them is for the posts service, which hydrates them.
        post_ids, token = await self.service.saved(request.user_id, request.page_size, request.page_token)
        return pb.ListSavedPostIdsResponse(post_ids=post_ids, next_page_token=token)

    async def GetPostStates(self, request: pb.GetPostStatesRequest, context: Context) -> pb.GetPostStatesResponse:
        states = await self.service.states(request.viewer_id, list(request.post_ids))
        return pb.GetPostStatesResponse(states=[state_proto(s) for s in states])

    async def CheckCommentAccess(self, request: pb.CheckCommentAccessRequest, context: Context
                                 ) -> pb.CheckCommentAccessResponse:
        comment = await self.service.seen_comment(request.viewer_id, request.comment_id)
        return pb.CheckCommentAccessResponse(author_id=comment.author_id)

    async def PurgePost(self, request: pb.PurgePostRequest, context: Context) -> pb.PurgePostResponse:
        purged = await self.purger.purge(request.post_id)
        return pb.PurgePostResponse(likes_removed=purged.likes, comments_removed=purged.comments,
                                    saves_removed=purged.saves)
