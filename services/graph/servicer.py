"""GraphService gRPC servicer: proto to domain and back, nothing else."""

from __future__ import annotations

import grpc
from google.protobuf import empty_pb2
from pictor.exports.v1 import exports_pb2
from pictor.graph.v1 import graph_service_pb2 as pb
from pictor.graph.v1 import graph_service_pb2_grpc

from services.common import exports
from services.common.auth import TokenVerifier
from services.common.clients import AccountsClient
from services.graph.service import FollowState, GraphService, Page, page_token

Context = grpc.aio.ServicerContext
EMPTY = empty_pb2.Empty()


class GraphServicer(graph_service_pb2_grpc.GraphServiceServicer):
    def __init__(self, service: GraphService, verifier: TokenVerifier, accounts: AccountsClient,
                 user_data: exports.UserDataExport | None = None) -> None:
        self.service = service
        self.verifier = verifier
        self.accounts = accounts
        self.user_data = user_data

    async def ExportUserData(self, request: exports_pb2.ExportUserDataRequest, context: grpc.aio.ServicerContext
                             ) -> exports_pb2.ExportUserDataResponse:
        return await exports.answer(self.user_data, request)

    async def _users(self, page: Page) -> pb.ListUsersResponse:
        found = await self.accounts.get_users(page.user_ids)
        return pb.ListUsersResponse(users=[found[u] for u in page.user_ids if u in found],
                                    next_page_token=page_token(page))

    @staticmethod
    def _state(state: FollowState) -> pb.FollowResponse:
        return pb.FollowResponse(state=pb.FollowState.Value(state.value))

    async def Follow(self, request: pb.FollowRequest, context: Context) -> pb.FollowResponse:
        viewer = self.verifier.require_caller(context)
        return self._state(await self.service.follow(viewer, request.user_id))

    async def Unfollow(self, request: pb.UnfollowRequest, context: Context) -> pb.FollowResponse:
        viewer = self.verifier.require_caller(context)
        return self._state(await self.service.unfollow(viewer, request.user_id))

    async def ListFollowers(self, request: pb.ListFollowersRequest, context: Context) -> pb.ListUsersResponse:
        viewer = self.verifier.caller(context) or 0
        return await self._users(await self.service.list_users(
            "followers", viewer, request.user_id, request.page_size, request.page_token))

    async def ListFollowing(self, request: pb.ListFollowingRequest, context: Context) -> pb.ListUsersResponse:
        viewer = self.verifier.caller(context) or 0
        return await self._users(await self.service.list_users(
            "following", viewer, request.user_id, request.page_size, request.page_token))

    async def ListFollowRequests(self, request: pb.ListFollowRequestsRequest, context: Context) -> pb.ListUsersResponse:
        owner = self.verifier.require_caller(context)
        return await self._users(await self.service.list_own("requests", owner, request.page_size, request.page_token))

    async def ListBlocked(self, request: pb.ListBlockedRequest, context: Context) -> pb.ListUsersResponse:
        owner = self.verifier.require_caller(context)
        return await self._users(await self.service.list_own("blocked", owner, request.page_size, request.page_token))

    async def ApproveFollowRequest(self, request: pb.ApproveFollowRequestRequest, context: Context) -> empty_pb2.Empty:
        await self.service.approve(self.verifier.require_caller(context), request.user_id)
        return EMPTY

    async def RejectFollowRequest(self, request: pb.RejectFollowRequestRequest, context: Context) -> empty_pb2.Empty:
        await self.service.reject(self.verifier.require_caller(context), request.user_id)
        return EMPTY

    async def RemoveFollower(self, request: pb.RemoveFollowerRequest, context: Context) -> empty_pb2.Empty:
        await self.service.remove_follower(self.verifier.require_caller(context), request.user_id)
        return EMPTY

    async def Block(self, request: pb.BlockRequest, context: Context) -> empty_pb2.Empty:
        await self.service.block(self.verifier.require_caller(context), request.user_id)
        return EMPTY

    async def Unblock(self, request: pb.UnblockRequest, context: Context) -> empty_pb2.Empty:
        await self.service.unblock(self.verifier.require_caller(context), request.user_id)
        return EMPTY

    async def Mute(self, request: pb.MuteRequest, context: Context) -> empty_pb2.Empty:
        await self.service.mute(self.verifier.require_caller(context), request.user_id)
        return EMPTY

    async def Unmute(self, request: pb.UnmuteRequest, context: Context) -> empty_pb2.Empty:
        await self.service.unmute(self.verifier.require_caller(context), request.user_id)
        return EMPTY

    async def GetRelationships(self, request: pb.GetRelationshipsRequest, context: Context
                               ) -> pb.GetRelationshipsResponse:
        found = await self.service.relationships(request.viewer_id, list(request.owner_ids))
        return pb.GetRelationshipsResponse(relationships=[
            pb.Relationship(owner_id=r.owner_id, following=r.following, requested=r.requested, blocked=r.blocked,
                            muted=r.muted, owner_is_private=r.owner_is_private, can_view=r.can_view)
            for r in found
        ])

    async def FilterViewers(self, request: pb.FilterViewersRequest, context: Context) -> pb.FilterViewersResponse:
        found, allowed = await self.service.filter_viewers(request.owner_id, list(request.viewer_ids))
        return pb.FilterViewersResponse(owner_found=found, allowed_viewer_ids=allowed)

    async def SetAccountPrivacy(self, request: pb.SetAccountPrivacyRequest, context: Context) -> empty_pb2.Empty:
        await self.service.set_account_privacy(request.user_id, request.is_private)
        return EMPTY

    async def ListFollowerIds(self, request: pb.ListFollowerIdsRequest, context: Context) -> pb.ListIdsResponse:
        ids, token = await self.service.follower_ids(request.user_id, request.page_size, request.page_token)
        return pb.ListIdsResponse(user_ids=ids, next_page_token=token)

    async def ListFollowingIds(self, request: pb.ListFollowingIdsRequest, context: Context) -> pb.ListIdsResponse:
        return pb.ListIdsResponse(user_ids=await self.service.following_ids(request.user_id))

    async def GetExclusions(self, request: pb.GetExclusionsRequest, context: Context) -> pb.GetExclusionsResponse:
        muted, blocked = await self.service.exclusions(request.user_id)
        return pb.GetExclusionsResponse(muted_ids=muted, blocked_ids=blocked)
