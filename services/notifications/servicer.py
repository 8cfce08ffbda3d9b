"""NotificationsService gRPC servicer: proto to domain and back, nothing else."""

from __future__ import annotations

from datetime import UTC

import grpc
from pictor.exports.v1 import exports_pb2
from pictor.notifications.v1 import notifications_pb2, notifications_service_pb2_grpc
from pictor.notifications.v1 import notifications_service_pb2 as pb

from services.common import exports
from services.common.auth import TokenVerifier
from services.notifications.render import GroupRenderer
from services.notifications.service import NotificationsService, Settings

Context = grpc.aio.ServicerContext


def type_names(values: list[int]) -> list[str]:
    """Enum numbers as names; one this proto does not know (or UNSPECIFIED) keeps a name the service refuses."""
    names = []
    for value in values:
        try:
            names.append(notifications_pb2.NotificationType.Name(value))
        except ValueError:
            names.append(str(value))
    return names


def settings_changes(request: pb.UpdateNotificationSettingsRequest) -> dict[str, object]:
    """The fields to change: the mask when given, else the fields present in `settings`."""
    given = request.settings
    if request.update_mask.paths:
        paths = [p.removeprefix("settings.") for p in request.update_mask.paths]
    else:
        paths = [f.name for f, _ in given.ListFields()]
    changes: dict[str, object] = {}
    for path in paths:
        if path == "muted_types":
            changes[path] = type_names(list(given.muted_types))
        elif path == "email_digest":
            changes[path] = given.email_digest
        else:
            changes[path] = None  # the service names it
    return changes


def settings_proto(settings: Settings) -> notifications_pb2.NotificationSettings:
    return notifications_pb2.NotificationSettings(
        muted_types=[notifications_pb2.NotificationType.Value(t) for t in settings.muted_types],
        email_digest=settings.email_digest)


class NotificationsServicer(notifications_service_pb2_grpc.NotificationsServiceServicer):
    def __init__(self, service: NotificationsService, verifier: TokenVerifier, renderer: GroupRenderer,
                 user_data: exports.UserDataExport | None = None) -> None:
        self.service = service
        self.verifier = verifier
        self.renderer = renderer
        self.user_data = user_data

    async def ExportUserData(self, request: exports_pb2.ExportUserDataRequest, context: Context
                             ) -> exports_pb2.ExportUserDataResponse:
        return await exports.answer(self.user_data, request)

    async def ListNotifications(self, request: pb.ListNotificationsRequest, context: Context
                                ) -> pb.ListNotificationsResponse:
        user_id = self.verifier.require_caller(context)
        groups, token = await self.service.list(user_id, request.page_size, request.page_token,
                                                type_names(list(request.types)))
        return pb.ListNotificationsResponse(groups=await self.renderer.protos(user_id, groups), next_page_token=token)

    async def GetUnreadCount(self, request: pb.GetUnreadCountRequest, context: Context) -> pb.GetUnreadCountResponse:
        return pb.GetUnreadCountResponse(count=await self.service.unread_count(self.verifier.require_caller(context)))

    async def MarkRead(self, request: pb.MarkReadRequest, context: Context) -> pb.MarkReadResponse:
        user_id = self.verifier.require_caller(context)
        before = request.before.ToDatetime(tzinfo=UTC) if request.HasField("before") else None
        return pb.MarkReadResponse(unread_count=await self.service.mark_read(user_id, before))

    async def GetNotificationSettings(self, request: pb.GetNotificationSettingsRequest, context: Context
                                      ) -> notifications_pb2.NotificationSettings:
        return settings_proto(await self.service.settings(self.verifier.require_caller(context)))

    async def UpdateNotificationSettings(self, request: pb.UpdateNotificationSettingsRequest, context: Context
                                         ) -> notifications_pb2.NotificationSettings:
        user_id = self.verifier.require_caller(context)
        return settings_proto(await self.service.update_settings(user_id, settings_changes(request)))
