"""Moderation process: `python -m services.moderation.server`.

Reports, the moderators' queue and actions, the audit log. Its actions reach the owners of the
content as events on the "moderation" topic (services.moderation.events).
"""

from __future__ import annotations

import grpc
from pictor.moderation.v1 import moderation_service_pb2_grpc

from services.common import erasure, server
from services.common.auth import TokenVerifier
from services.common.exports import UserDataExport
from services.common.registry import by_name
from services.moderation.adapters import OwnerTargets
from services.moderation.erasure import ModerationEraser
from services.moderation.exports import KINDS
from services.moderation.repository import PostgresModerationRepository
from services.moderation.service import ModerationService
from services.moderation.servicer import ModerationServicer

SPEC = by_name("moderation")


async def setup(grpc_server: grpc.aio.Server, resources: server.Resources) -> None:
    settings, channels = resources.settings, resources.channels()
    targets = OwnerTargets(channels)
    db = await resources.database()
    service = ModerationService(PostgresModerationRepository(db), await resources.ids(), targets)
    erasure.start(resources, "moderation", ModerationEraser(db).erase_user)
    verifier = TokenVerifier(settings.jwks_file, settings.jwt_issuer)
    moderation_service_pb2_grpc.add_ModerationServiceServicer_to_server(
        ModerationServicer(service, verifier, UserDataExport(db, KINDS)), grpc_server)


def main() -> None:
    server.main(SPEC, setup)


if __name__ == "__main__":
    main()
