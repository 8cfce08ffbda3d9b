"""MessagingService gRPC servicer: proto to domain and back, nothing else."""

from __future__ import annotations

import grpc
from google.protobuf import empty_pb2
from pictor.exports.v1 import exports_pb2
from pictor.messaging.v1 import messaging_pb2, messaging_service_pb2_grpc
from pictor.messaging.v1 import messaging_service_pb2 as pb

from services.common import exports
from services.common.auth import TokenVerifier
from services.common.clients import AccountsClient
from services.messaging import render
from services.messaging.service import ConversationView, Draft, Envelope, MessagingService

Context = grpc.aio.ServicerContext


def conversation_changes(request: pb.UpdateConversationRequest) -> dict[str, object]:
    """The fields to change: the mask when given, else the fields present in `conversation`."""
    given = request.conversation
    if request.update_mask.paths:
        paths = [p.removeprefix("conversation.") for p in request.update_mask.paths]
    else:
        paths = [f.name for f, _ in given.ListFields()]
    return {path: getattr(given, path, None) if path in ("title", "muted") else None for path in paths}


class MessagingServicer(messaging_service_pb2_grpc.MessagingServiceServicer):
    def __init__(self, service: MessagingService, verifier: TokenVerifier, people: AccountsClient,
                 user_data: exports.UserDataExport | None = None) -> None:
        self.service = service
        self.verifier = verifier
        self.people = people
        self.user_data = user_data

    async def ExportUserData(self, request: exports_pb2.ExportUserDataRequest, context: grpc.aio.ServicerContext
                             ) -> exports_pb2.ExportUserDataResponse:
        return await exports.answer(self.user_data, request)

    async def _protos(self, views: list[ConversationView]) -> list[messaging_pb2.Conversation]:
        people = await self.people.summaries(list({m.user_id for v in views for m in v.members}))
        return [render.conversation_proto(v, people) for v in views]

    async def _proto(self, view: ConversationView) -> messaging_pb2.Conversation:
        return (await self._protos([view]))[0]

    async def GetConversation(self, request: pb.GetConversationRequest, context: Context
                              ) -> messaging_pb2.Conversation:
        caller = self.verifier.require_caller(context)
        return await self._proto(await self.service.get(caller, request.conversation_id))

    async def ListConversations(self, request: pb.ListConversationsRequest, context: Context
                                ) -> pb.ListConversationsResponse:
        caller = self.verifier.require_caller(context)
        views, token = await self.service.list(caller, request.folder, request.page_size,
                                               request.page_token)
        return pb.ListConversationsResponse(conversations=await self._protos(views), next_page_token=token)

    async def CreateConversation(self, request: pb.CreateConversationRequest, context: Context
                                 ) -> messaging_pb2.Conversation:
        caller = self.verifier.require_caller(context)
        return await self._proto(await self.service.create(caller, list(request.member_ids), request.title,
                                                           request.secret))

    async def UpdateConversation(self, request: pb.UpdateConversationRequest, context: Context
                                 ) -> messaging_pb2.Conversation:
        caller = self.verifier.require_caller(context)
        return await self._proto(await self.service.update(caller, request.conversation_id,
                                                           conversation_changes(request)))

    async def LeaveConversation(self, request: pb.LeaveConversationRequest, context: Context) -> empty_pb2.Empty:
        await self.service.leave(self.verifier.require_caller(context), request.conversation_id)
        return empty_pb2.Empty()

    async def AcceptConversation(self, request: pb.AcceptConversationRequest, context: Context
                                 ) -> messaging_pb2.Conversation:
        caller = self.verifier.require_caller(context)
        return await self._proto(await self.service.accept(caller, request.conversation_id))

    async def DeclineConversation(self, request: pb.DeclineConversationRequest, context: Context
                                  ) -> empty_pb2.Empty:
        await self.service.decline(self.verifier.require_caller(context), request.conversation_id)
        return empty_pb2.Empty()

    async def AddMembers(self, request: pb.AddMembersRequest, context: Context) -> messaging_pb2.Conversation:
        caller = self.verifier.require_caller(context)
        return await self._proto(await self.service.add_members(caller, request.conversation_id,
                                                                list(request.user_ids)))

    async def RemoveMember(self, request: pb.RemoveMemberRequest, context: Context) -> empty_pb2.Empty:
        await self.service.remove_member(self.verifier.require_caller(context), request.conversation_id,
                                         request.user_id)
        return empty_pb2.Empty()

    async def SendMessage(self, request: pb.SendMessageRequest, context: Context) -> messaging_pb2.Message:
        caller = self.verifier.require_caller(context)
        draft = Draft(request.client_message_id, request.text, request.media_id, request.post_id, request.story_id,
                      [Envelope(e.device_id, e.ciphertext) for e in request.envelopes], request.sender_device_id)
        return render.message_proto(await self.service.send(caller, request.conversation_id, draft))

    async def ListMessages(self, request: pb.ListMessagesRequest, context: Context) -> pb.ListMessagesResponse:
        caller = self.verifier.require_caller(context)
        views, token = await self.service.messages(caller, request.conversation_id, request.page_size,
                                                   request.page_token)
        return pb.ListMessagesResponse(messages=[render.message_proto(v) for v in views], next_page_token=token)

    async def CheckMessageAccess(self, request: pb.CheckMessageAccessRequest, context: Context
                                 ) -> pb.CheckMessageAccessResponse:
        return pb.CheckMessageAccessResponse(sender_id=await self.service.sender_seen_by(request.viewer_id,
                                                                                         request.message_id))

    async def ListContacts(self, request: pb.ListContactsRequest, context: Context) -> pb.ListContactsResponse:
        found = await self.service.contacts(request.user_id, list(request.among) if request.among else None)
        return pb.ListContactsResponse(user_ids=sorted(found))

    async def UnsendMessage(self, request: pb.UnsendMessageRequest, context: Context) -> empty_pb2.Empty:
        await self.service.unsend(self.verifier.require_caller(context), request.message_id)
        return empty_pb2.Empty()

    async def AddReaction(self, request: pb.AddReactionRequest, context: Context) -> messaging_pb2.Message:
        caller = self.verifier.require_caller(context)
        return render.message_proto(await self.service.react(caller, request.message_id, request.emoji))

    async def RemoveReaction(self, request: pb.RemoveReactionRequest, context: Context) -> messaging_pb2.Message:
        caller = self.verifier.require_caller(context)
        return render.message_proto(await self.service.react(caller, request.message_id, None))

    async def MarkRead(self, request: pb.MarkReadRequest, context: Context) -> empty_pb2.Empty:
        await self.service.mark_read(self.verifier.require_caller(context), request.conversation_id,
                                     request.message_id)
        return empty_pb2.Empty()

    async def SendTyping(self, request: pb.SendTypingRequest, context: Context) -> empty_pb2.Empty:
        await self.service.typing(self.verifier.require_caller(context), request.conversation_id)
        return empty_pb2.Empty()
