"""Moderators, granted and revoked on the server: `python -m services.moderation.admin grant|revoke <username>`
(`make moderator-grant USERNAME=...`, `make moderator-revoke USERNAME=...`).

Against a running stack, with its PICTOR_* settings (like `make search-index`): accounts says whose
the username is; moderation's own tables take the grant and its audit entry (actor 0: this command),
in the user's shard. A grant takes effect at once: every moderation call checks the table.
Exit status 0 when done (also when nothing changed: granting twice), 1 for an unknown username.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.common.clients import AccountsClient, MeshChannels
from services.common.config import load_settings
from services.common.db import Database
from services.common.ids import leased_allocator
from services.moderation.repository import PostgresModerationRepository
from services.moderation.service import ModerationService


async def run(command: str, username: str, note: str) -> int:
    settings = load_settings()
    # moderation's own command: it calls as moderation (the search index rebuild runs as search).
    channels, db = MeshChannels(settings, identity="moderation"), Database(settings, max_size=2)
    await db.open()
    try:
        user_id = await AccountsClient(channels).user_id_by_username(username)
        if user_id is None:
            print(f"no user named {username!r}", file=sys.stderr)
            return 1
        # It mints an audit entry's id beside the running services: under a worker number of its own.
        ids = await leased_allocator(lambda: db.global_pool, settings.logical_shards, "moderation-admin")
        try:
            service = ModerationService(PostgresModerationRepository(db), ids, None)
            changed = await service.set_moderator(user_id, command == "grant", note)
        finally:
            assert ids.lease is not None
            await ids.lease.release()
        state = "a moderator" if command == "grant" else "not a moderator"
        print(f"{username} (id {user_id}) is {state}{'' if changed else ' (already)'}")
        return 0
    finally:
        await channels.close()
        await db.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.moderation.admin", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["grant", "revoke"])
    parser.add_argument("username")
    parser.add_argument("--note", default="", help="kept in the audit log")
    args = parser.parse_args(argv)
    sys.exit(asyncio.run(run(args.command, args.username, args.note)))


if __name__ == "__main__":
    main()
