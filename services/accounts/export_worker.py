"""Data export worker: `python -m services.accounts.export_worker` (WorkerSpec "exporter").

Takes PENDING export jobs (services.accounts.exports) from every shard, woken at once by
the id the request pushes to Redis (and every few seconds anyway), and builds each archive
from the owners' mesh-only ExportUserData pages and media's ReadOriginal, never their
tables: one JSON file per kind of row, the original files under media/, a README. Progress
(items gathered, the step) is written as it goes, renewing the job's lease; a job whose
worker died is taken again when its lease is past. An owner that fails the export marks it
FAILED (OWNER_UNAVAILABLE; the user asks again); an archive above PICTOR_EXPORT_MAX_BYTES is
FAILED (ARCHIVE_TOO_LARGE). Once a minute archives past PICTOR_EXPORT_KEEP_DAYS are deleted
(EXPIRED). Replicas share the jobs (FOR UPDATE SKIP LOCKED).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import zipfile
from pathlib import Path

import grpc
import redis.asyncio as aioredis
from psycopg.rows import dict_row

from services.accounts.exports import (
    FAILED,
    READY,
    WAKE_KEY,
    ExportConfig,
    ExportJob,
    PostgresExports,
    archive_path,
    load_export_config,
)
from services.accounts.owners import KINDS, DataOwners
from services.common.db import Database, shard_schema
from services.common.exports import to_json
from services.common.ids import shard_of
from services.common.server import Resources, every, run_worker

log = logging.getLogger(__name__)

EXPIRE_EVERY_S = 60
# Below the Redis client's socket timeout (1.5 s).
IDLE_WAIT_S = 1
SWEEP_EVERY_S = 30
README = """Your Pictor data, as of {created_at} (export {export_id}).

profile.json     your account: username, email, display name, bio, settings
sessions.json    your signed-in devices
posts.json       your posts (media_ids name the files under media/)
comments.json    the comments you wrote (post_id: the post they are on)
likes.json       the posts you liked; saves.json: the posts you saved
following.json   who you follow; followers.json: who follows you; blocks.json: who you blocked
mutes.json       who you muted; follow_requests_sent.json / _received.json: requests still waiting
stories.json     your stories; highlights.json: your highlights and their story_ids
close_friends.json  your close friends; story_mutes.json: whose stories you muted
story_views.json the stories you viewed (while they are kept), with your reaction
messages.json    the direct messages you sent (conversation_id names the conversation)
conversations.json  the conversations you are in; message_reactions.json: your reactions
devices.json     your devices' public keys for end-to-end encrypted messages
media.json       your media items; media/<id>.<format> is each one's original file as uploaded
notification_settings.json  the kinds of notification you muted, and the e-mail digest setting
reports.json     the reports you filed and how each ended (OPEN, ACTIONED, DISMISSED)
moderation_actions.json  what moderators did to your content or account (hidden, suspended)

Ids are strings. What others wrote (the messages they sent you, comments on your posts)
is theirs and is not in this archive; an end-to-end encrypted message is on your devices
only (the server never had its text).
"""


class TooLarge(Exception):
    pass


class ArchiveBuilder:
    def __init__(self, db: Database, exports: PostgresExports, owners: DataOwners, config: ExportConfig) -> None:
        self.db = db
        self.exports = exports
        self.owners = owners
        self.config = config

    async def _own_rows(self, user_id: int) -> tuple[dict, list[dict]]:
        """accounts' own part: the profile and the signed-in devices."""
        s = shard_schema(shard_of(user_id))
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(f"SELECT id, username, email, display_name, bio, is_private, show_activity_status, "
                              f"follower_count, following_count, post_count, created_at, updated_at, suspended_at "
                              f"FROM {s}.users WHERE id = %s", (user_id,))
            profile = await cur.fetchone() or {}
            await cur.execute(f"SELECT family_id AS session_id, min(created_at) AS signed_in_at, "
                              f"max(created_at) AS last_active_at FROM {s}.refresh_tokens WHERE user_id = %s "
                              "AND revoked_at IS NULL GROUP BY family_id ORDER BY 2", (user_id,))
            sessions = await cur.fetchall()
        return profile, sessions

    async def build(self, job: ExportJob) -> int:
        """Write the job's zip; its size in bytes."""
        path = archive_path(self.config.root, job.user_id, job.id)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        done = 0

        async def step(name: str, items: int = 0) -> None:
            nonlocal done
            done += items
            await self.exports.progress(job.id, done, name, self.config.lease_s)

        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
                await step("profile")
                profile, sessions = await self._own_rows(job.user_id)
                archive.writestr("profile.json", to_json(profile))
                archive.writestr("sessions.json", "[" + ",".join(to_json(s) for s in sessions) + "]")
                media: list[dict] = []
                for owner, kind in KINDS:
                    await step(kind)
                    records, token = [], ""
                    while True:
                        page, token = await self.owners.page(owner, job.user_id, kind, token)
                        records += page
                        await step(kind, len(page))
                        if not token:
                            break
                    archive.writestr(f"{kind}.json", "[" + ",".join(records) + "]")
                    if kind == "media":
                        media = [json.loads(r) for r in records]
                for item in media:
                    await step("media files")
                    await self._copy_original(archive, job.user_id, int(item["id"]), raw)
                    await step("media files", 1)
                archive.writestr("README.txt", README.format(created_at=job.created_at.isoformat(),
                                                             export_id=job.id))
            size = partial.stat().st_size
            if size > self.config.max_bytes:
                raise TooLarge
            os.replace(partial, path)
            return size
        finally:
            partial.unlink(missing_ok=True)

    async def _copy_original(self, archive: zipfile.ZipFile, user_id: int, media_id: int, raw) -> None:
        data, size, fmt = await self.owners.original(user_id, media_id, 0)
        with archive.open(f"media/{media_id}.{fmt or 'bin'}", "w", force_zip64=True) as out:
            out.write(data)
            offset = len(data)
            while data and offset < size:
                data, _, _ = await self.owners.original(user_id, media_id, offset)
                out.write(data)
                offset += len(data)
                if raw.tell() > self.config.max_bytes:
                    raise TooLarge

    async def run(self, job: ExportJob) -> None:
        try:
            size = await self.build(job)
        except TooLarge:
            log.warning("export %d of user %d is above PICTOR_EXPORT_MAX_BYTES", job.id, job.user_id)
            await self.exports.finish(job.id, FAILED, 0, "ARCHIVE_TOO_LARGE", self.config.keep_s)
            return
        except grpc.aio.AioRpcError as error:
            log.warning("export %d of user %d failed: an owner answered %s", job.id, job.user_id, error.code())
            await self.exports.finish(job.id, FAILED, 0, "OWNER_UNAVAILABLE", self.config.keep_s)
            return
        await self.exports.finish(job.id, READY, size, "", self.config.keep_s)
        log.info("export %d of user %d ready (%d bytes)", job.id, job.user_id, size)

    async def take_jobs(self, redis: aioredis.Redis, stop: asyncio.Event) -> None:
        """Jobs as they are asked for (the id a request pushes names its shard), and every shard each
        SWEEP_EVERY_S (a wake-up lost, a job whose worker died)."""
        swept = 0.0
        while not stop.is_set():
            shards: list[int] = []
            if time.monotonic() - swept > SWEEP_EVERY_S:
                shards, swept = list(range(self.db.logical_shards)), time.monotonic()
            else:
                woken = await redis.blpop([WAKE_KEY], timeout=IDLE_WAIT_S)
                value = woken[1].decode() if woken and isinstance(woken[1], bytes) else woken and woken[1]
                if value and value.isdigit():
                    shards = [shard_of(int(value))]
            for shard in shards:
                while (job := await self.exports.claim(shard, self.config.lease_s)) is not None:
                    await self.run(job)


def remove_archive(root: Path, user_id: int, export_id: int) -> None:
    archive_path(root, user_id, export_id).unlink(missing_ok=True)


async def work(resources: Resources, stop: asyncio.Event) -> None:
    db = await resources.database(max_size=4)
    config = load_export_config(resources.settings)
    exports = PostgresExports(db)
    builder = ArchiveBuilder(db, exports, DataOwners(resources.channels()), config)

    async def expire() -> None:
        for shard in range(db.logical_shards):
            for user_id, export_id in await exports.expire(shard):
                remove_archive(config.root, user_id, export_id)

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(builder.take_jobs(resources.redis(), stop))
        tasks.create_task(every(min(EXPIRE_EVERY_S, config.keep_s), expire, stop))


def main() -> None:
    run_worker("exporter", work)


if __name__ == "__main__":
    main()
