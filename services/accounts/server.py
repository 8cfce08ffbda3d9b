"""Accounts process: `python -m services.accounts.server`."""

from __future__ import annotations

import grpc
from pictor.accounts.v1 import accounts_service_pb2_grpc

from services.accounts.attempts import SignInAttempts
from services.accounts.devices import DeviceKeys, PostgresDevices
from services.accounts.erasure import AccountsEraser, username_grace_s
from services.accounts.exports import (
    ArchiveSigner,
    ExportService,
    PostgresExports,
    load_export_config,
    load_or_create_key,
)
from services.accounts.passwords import PasswordPool, load_password_pool_config
from services.accounts.repository import PostgresAccountsRepository
from services.accounts.service import AccountsService, ViewerRelationship
from services.accounts.servicer import AccountsServicer
from services.common import erasure, server
from services.common.auth import TokenSigner, TokenVerifier
from services.common.clients import GraphClient, MediaClient
from services.common.config import rate_limits
from services.common.dependencies import connect_redis
from services.common.registry import by_name
from services.common.revocation import TokenRevoker

SPEC = by_name("accounts")


class GraphBlocks:
    def __init__(self, graph: GraphClient) -> None:
        self.graph = graph

    async def relationship(self, viewer_id: int, user_id: int) -> ViewerRelationship:
        relation = (await self.graph.relationships(viewer_id, [user_id])).get(user_id)
        if relation is None:
            return ViewerRelationship()
        return ViewerRelationship(following=relation.following, requested=relation.requested,
                                  muted=relation.muted, blocked=relation.blocked)


async def setup(grpc_server: grpc.aio.Server, resources: server.Resources) -> None:
    settings = resources.settings
    graph = GraphClient(resources.channels())
    passwords = PasswordPool(load_password_pool_config())
    resources.on_close(passwords.close)
    db, ids = await resources.database(), await resources.ids()
    repo = PostgresAccountsRepository(db)
    # Not a health dependency: accounts serves without Redis (revocations then wait for the tokens' TTL).
    tokens_redis = connect_redis(settings.redis_url)
    resources.on_close(tokens_redis.aclose)
    service = AccountsService(
        repo=repo,
        ids=ids,
        signer=TokenSigner.from_files(settings.jwt_private_key_file, settings.jwt_issuer, settings.access_token_ttl_s),
        refresh_ttl_s=settings.refresh_token_ttl_s,
        blocks=GraphBlocks(graph),
        members=graph,
        passwords=passwords,
        username_grace_s=username_grace_s(),
        revoker=TokenRevoker(tokens_redis, settings.access_token_ttl_s),
        attempts=SignInAttempts(tokens_redis, rate_limits()["sign_in_account"]),
        avatars=MediaClient(resources.channels()),
    )
    config = load_export_config(settings)
    erasure.start(resources, "accounts", AccountsEraser(repo, service.username_grace_s, config.root).erase_user)
    verifier = TokenVerifier(settings.jwks_file, settings.jwt_issuer)
    devices = DeviceKeys(PostgresDevices(db), ids, GraphBlocks(graph))
    exports = ExportService(PostgresExports(db), ids, ArchiveSigner(
        load_or_create_key(config.root / "url.key"), config.url_ttl_s), config, tokens_redis)
    accounts_service_pb2_grpc.add_AccountsServiceServicer_to_server(
        AccountsServicer(service, verifier, devices, exports, settings), grpc_server)


def main() -> None:
    server.main(SPEC, setup)


if __name__ == "__main__":
    main()
