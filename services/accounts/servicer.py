"""AccountsService gRPC servicer: proto to domain and back, nothing else."""

from __future__ import annotations

import grpc
from google.api import httpbody_pb2
from google.protobuf import empty_pb2
from pictor.accounts.v1 import accounts_pb2, accounts_service_pb2_grpc
from pictor.accounts.v1 import accounts_service_pb2 as pb

from services.accounts.devices import Device, DeviceKeys
from services.accounts.exports import ExportJob, ExportService
from services.accounts.service import AccountsService, SessionRecord, SessionTokens, User
from services.common.auth import TokenVerifier
from services.common.config import Settings


def user_to_proto(user: User, settings: Settings, own: bool = False) -> accounts_pb2.User:
    """The profile; `own`: as its owner sees it (with their settings)."""
    message = accounts_pb2.User(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        bio=user.bio,
        avatar_url=settings.avatar_url(user.avatar_media_id),
        is_private=user.is_private,
        follower_count=user.follower_count,
        following_count=user.following_count,
        post_count=user.post_count,
    )
    if user.avatar_media_id:
        message.avatar_media_id = user.avatar_media_id
    if user.created_at is not None:
        message.created_at.FromDatetime(user.created_at)
    if own:
        message.show_activity_status = user.show_activity_status
    if user.viewer is not None:
        message.viewer.SetInParent()
        message.viewer.following = user.viewer.following
        message.viewer.requested = user.viewer.requested
        message.viewer.muted = user.viewer.muted
    return message


def export_to_proto(job: ExportJob) -> accounts_pb2.Export:
    message = accounts_pb2.Export(id=job.id, state=accounts_pb2.Export.State.Value(job.state),
                                  items_done=job.items_done, current_step=job.current_step,
                                  download_url=job.download_url, size_bytes=job.size_bytes, error=job.error)
    message.created_at.FromDatetime(job.created_at)
    if job.finished_at is not None:
        message.finished_at.FromDatetime(job.finished_at)
    if job.expires_at is not None:
        message.expires_at.FromDatetime(job.expires_at)
    return message


def session_to_proto(session: SessionTokens, settings: Settings) -> pb.Session:
    return pb.Session(
        user=user_to_proto(session.user, settings, own=True),
        access_token=session.access_token,
        refresh_token=session.refresh_token,
        expires_in=session.expires_in,
    )


def user_agent(context: grpc.aio.ServicerContext) -> str:
    """The client's User-Agent (Envoy passes a JSON client's on), "" when it sent none."""
    return next((str(v) for k, v in context.invocation_metadata() or () if k == "user-agent"), "")


def session_info_to_proto(session: SessionRecord, current: int | None) -> pb.SessionInfo:
    message = pb.SessionInfo(id=session.id, user_agent=session.user_agent, current=session.id == current)
    message.signed_in_at.FromDatetime(session.signed_in_at)
    message.last_active_at.FromDatetime(session.last_active_at)
    return message


def profile_changes(request: pb.UpdateMeRequest) -> dict[str, object]:
    """The fields to change: the mask when given, else every field present in `user`."""
    if request.update_mask.paths:
        paths = [p.removeprefix("user.") for p in request.update_mask.paths]
    else:
        paths = [f.name for f, _ in request.user.ListFields()]
    # The service rejects paths that are not editable; unknown ones map to None.
    return {path: getattr(request.user, path, None) for path in paths}


def device_to_proto(device: Device) -> accounts_pb2.Device:
    message = accounts_pb2.Device(id=device.id, user_id=device.user_id, public_key=device.public_key)
    if device.created_at is not None:
        message.created_at.FromDatetime(device.created_at)
    return message


class AccountsServicer(accounts_service_pb2_grpc.AccountsServiceServicer):
    def __init__(self, service: AccountsService, verifier: TokenVerifier, devices: DeviceKeys,
                 exports: ExportService, settings: Settings) -> None:
        self.service = service
        # For the avatars' URLs (Settings.avatar_url).
        self.settings = settings
        self.verifier = verifier
        self.devices = devices
        self.exports = exports

    async def CreateExport(self, request: pb.CreateExportRequest, context: grpc.aio.ServicerContext
                           ) -> accounts_pb2.Export:
        return export_to_proto(await self.exports.create(self.verifier.require_caller(context)))

    async def GetExport(self, request: pb.GetExportRequest, context: grpc.aio.ServicerContext) -> accounts_pb2.Export:
        caller = self.verifier.require_caller(context)
        return export_to_proto(await self.exports.get(caller, request.export_id))

    async def GetExportArchive(self, request: pb.GetExportArchiveRequest, context: grpc.aio.ServicerContext
                               ) -> httpbody_pb2.HttpBody:
        data, name = await self.exports.archive(request.export_id, request.exp, request.sig)
        await context.send_initial_metadata((("content-disposition", f'attachment; filename="{name}"'),
                                             ("cache-control", "private, no-store")))
        return httpbody_pb2.HttpBody(content_type="application/zip", data=data)

    async def CreateDevice(self, request: pb.CreateDeviceRequest, context: grpc.aio.ServicerContext
                           ) -> accounts_pb2.Device:
        return device_to_proto(await self.devices.publish(self.verifier.require_caller(context), request.public_key))

    async def ListUserDevices(self, request: pb.ListUserDevicesRequest, context: grpc.aio.ServicerContext
                              ) -> pb.ListUserDevicesResponse:
        devices = await self.devices.of_user(self.verifier.require_caller(context), request.user_id)
        return pb.ListUserDevicesResponse(devices=[device_to_proto(d) for d in devices])

    async def ListDeviceIds(self, request: pb.ListDeviceIdsRequest, context: grpc.aio.ServicerContext
                            ) -> pb.ListDeviceIdsResponse:
        pairs = await self.devices.ids_of(list(request.user_ids))
        return pb.ListDeviceIdsResponse(devices=[pb.ListDeviceIdsResponse.UserDevice(user_id=u, device_id=d)
                                                 for u, d in pairs])

    async def GetMe(self, request: pb.GetMeRequest, context: grpc.aio.ServicerContext) -> accounts_pb2.User:
        return user_to_proto(await self.service.get_user(self.verifier.require_caller(context)), self.settings, own=True)

    async def GetUser(self, request: pb.GetUserRequest, context: grpc.aio.ServicerContext) -> accounts_pb2.User:
        viewer = self.verifier.caller(context)
        return user_to_proto(await self.service.view_user(viewer, request.user_id), self.settings)

    async def GetUserByUsername(
        self, request: pb.GetUserByUsernameRequest, context: grpc.aio.ServicerContext
    ) -> accounts_pb2.User:
        viewer = self.verifier.caller(context)
        return user_to_proto(await self.service.view_user_by_username(viewer, request.username), self.settings)

    async def BatchGetUsers(
        self, request: pb.BatchGetUsersRequest, context: grpc.aio.ServicerContext
    ) -> pb.BatchGetUsersResponse:
        users = await self.service.batch_get(list(request.user_ids))
        return pb.BatchGetUsersResponse(users=[user_to_proto(u, self.settings) for u in users])

    async def BatchGetEmails(
        self, request: pb.BatchGetEmailsRequest, context: grpc.aio.ServicerContext
    ) -> pb.BatchGetEmailsResponse:
        return pb.BatchGetEmailsResponse(emails=await self.service.emails(list(request.user_ids)))

    async def GetActivityStatusSettings(
        self, request: pb.GetActivityStatusSettingsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetActivityStatusSettingsResponse:
        return pb.GetActivityStatusSettingsResponse(
            showing_user_ids=await self.service.showing_activity(list(request.user_ids)))

    async def ScanUsers(self, request: pb.ScanUsersRequest, context: grpc.aio.ServicerContext) -> pb.ScanUsersResponse:
        users, next_after = await self.service.scan(request.shard, request.after_id, request.page_size)
        return pb.ScanUsersResponse(users=[user_to_proto(u, self.settings) for u in users], next_after_id=next_after)

    async def CreateAccount(self, request: pb.CreateAccountRequest, context: grpc.aio.ServicerContext) -> pb.Session:
        session = await self.service.register(request.username, request.email, request.password, request.display_name,
                                              user_agent(context))
        return session_to_proto(session, self.settings)

    async def UpdateMe(self, request: pb.UpdateMeRequest, context: grpc.aio.ServicerContext) -> accounts_pb2.User:
        caller = self.verifier.require_caller(context)
        return user_to_proto(await self.service.update_profile(caller, profile_changes(request)), self.settings, own=True)

    async def CreateSession(self, request: pb.CreateSessionRequest, context: grpc.aio.ServicerContext) -> pb.Session:
        return session_to_proto(await self.service.login(request.username, request.password, user_agent(context),
                                                         request.totp_code, request.recovery_code), self.settings)

    async def RefreshSession(
        self, request: pb.RefreshSessionRequest, context: grpc.aio.ServicerContext
    ) -> pb.Session:
        return session_to_proto(await self.service.refresh(request.refresh_token), self.settings)

    async def RevokeSession(
        self, request: pb.RevokeSessionRequest, context: grpc.aio.ServicerContext
    ) -> empty_pb2.Empty:
        await self.service.revoke(request.refresh_token)
        return empty_pb2.Empty()

    async def ListSessions(self, request: pb.ListSessionsRequest,
                           context: grpc.aio.ServicerContext) -> pb.ListSessionsResponse:
        caller, current = self.verifier.caller_session(context)
        return pb.ListSessionsResponse(
            sessions=[session_info_to_proto(s, current) for s in await self.service.sessions(caller)])

    async def GetTwoFactor(self, request: pb.GetTwoFactorRequest, context: grpc.aio.ServicerContext) -> pb.TwoFactor:
        enabled, left = await self.service.two_factor(self.verifier.require_caller(context))
        return pb.TwoFactor(enabled=enabled, recovery_codes_left=left)

    async def SetUpTwoFactor(self, request: pb.SetUpTwoFactorRequest,
                             context: grpc.aio.ServicerContext) -> pb.TwoFactorSetup:
        secret, uri = await self.service.set_up_two_factor(self.verifier.require_caller(context))
        return pb.TwoFactorSetup(secret=secret, otpauth_uri=uri)

    async def EnableTwoFactor(self, request: pb.EnableTwoFactorRequest,
                              context: grpc.aio.ServicerContext) -> pb.RecoveryCodes:
        codes = await self.service.enable_two_factor(self.verifier.require_caller(context), request.totp_code)
        return pb.RecoveryCodes(recovery_codes=codes)

    async def DisableTwoFactor(self, request: pb.DisableTwoFactorRequest,
                               context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        await self.service.disable_two_factor(self.verifier.require_caller(context), request.password,
                                              request.totp_code, request.recovery_code)
        return empty_pb2.Empty()

    async def DeleteMe(self, request: pb.DeleteMeRequest, context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        await self.service.delete_account(self.verifier.require_caller(context), request.password,
                                          request.totp_code, request.recovery_code)
        return empty_pb2.Empty()

    async def DeleteSession(self, request: pb.DeleteSessionRequest,
                            context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        await self.service.sign_out(self.verifier.require_caller(context), request.session_id)
        return empty_pb2.Empty()
