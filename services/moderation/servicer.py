"""ModerationService gRPC servicer: proto to domain and back, nothing else."""

from __future__ import annotations

import grpc
from pictor.exports.v1 import exports_pb2
from pictor.moderation.v1 import moderation_pb2, moderation_service_pb2_grpc
from pictor.moderation.v1 import moderation_service_pb2 as pb

from services.common import exports
from services.common.auth import TokenVerifier
from services.moderation.service import AuditEntry, ModerationService, Report, ReportedTarget

Context = grpc.aio.ServicerContext


def report_proto(report: Report) -> pb.Report:
    return pb.Report(id=report.id, target_type=report.target_type, target_id=report.target_id,
                     reason=report.reason, status=report.status)


def target_proto(target: ReportedTarget) -> moderation_pb2.ReportedTarget:
    message = moderation_pb2.ReportedTarget(
        target_type=target.target_type, target_id=target.target_id, owner_id=target.owner_id,
        report_count=target.report_count,
        reasons={moderation_pb2.Reason.Name(r): n for r, n in target.reasons.items()
                 if r in moderation_pb2.Reason.values()})
    message.first_reported_at.FromDatetime(target.first_reported_at)
    message.last_reported_at.FromDatetime(target.last_reported_at)
    return message


def audit_proto(entry: AuditEntry) -> moderation_pb2.AuditEntry:
    message = moderation_pb2.AuditEntry(
        id=entry.id, actor_id=entry.actor_id, action=entry.action, target_type=entry.target_type,
        target_id=entry.target_id, owner_id=entry.owner_id, reports_closed=entry.reports_closed, note=entry.note)
    if entry.created_at is not None:
        message.created_at.FromDatetime(entry.created_at)
    return message


class ModerationServicer(moderation_service_pb2_grpc.ModerationServiceServicer):
    def __init__(self, service: ModerationService, verifier: TokenVerifier,
                 user_data: exports.UserDataExport | None = None) -> None:
        self.service = service
        self.verifier = verifier
        self.user_data = user_data

    async def ExportUserData(self, request: exports_pb2.ExportUserDataRequest, context: Context
                             ) -> exports_pb2.ExportUserDataResponse:
        return await exports.answer(self.user_data, request)

    async def CreateReport(self, request: pb.CreateReportRequest, context: Context) -> pb.Report:
        reporter = self.verifier.require_caller(context)
        return report_proto(await self.service.report(reporter, request.target_type, request.target_id,
                                                      request.reason, request.note))

    async def ListReportedTargets(self, request: pb.ListReportedTargetsRequest, context: Context
                                  ) -> pb.ListReportedTargetsResponse:
        caller = self.verifier.require_caller(context)
        targets, token = await self.service.queue(caller, request.page_size, request.page_token)
        return pb.ListReportedTargetsResponse(targets=[target_proto(t) for t in targets], next_page_token=token)

    async def TakeAction(self, request: pb.TakeActionRequest, context: Context) -> moderation_pb2.AuditEntry:
        caller = self.verifier.require_caller(context)
        return audit_proto(await self.service.act(caller, request.target_type, request.target_id, request.action,
                                                  request.note))

    async def ListAuditEntries(self, request: pb.ListAuditEntriesRequest, context: Context
                               ) -> pb.ListAuditEntriesResponse:
        caller = self.verifier.require_caller(context)
        entries, token = await self.service.audit(caller, request.page_size, request.page_token)
        return pb.ListAuditEntriesResponse(entries=[audit_proto(e) for e in entries], next_page_token=token)

    async def CheckModerator(self, request: pb.CheckModeratorRequest, context: Context
                             ) -> pb.CheckModeratorResponse:
        return pb.CheckModeratorResponse(is_moderator=await self.service.is_moderator(request.user_id))
