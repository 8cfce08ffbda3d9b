"""Media storage in PostgreSQL: media, their variants and uploads, in the owner's shard."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from services.common import outbox
from services.common.db import Database, shard_schema
from services.common.errors import Conflict
from services.common.ids import shard_of
from services.media.edits import Edit
from services.media.service import MediaRecord, StoredVariant, Upload

MEDIA_COLUMNS = ("id, owner_id, width, height, placeholder, original_key, original_format, original_bytes, "
                 "captured_at, created_at, alt_text, edit, kind, state, failure_reason, duration_ms, has_audio")
UPLOAD_COLUMNS = "id, owner_id, content_type, size_bytes, sha256, received_bytes, expires_at, media_id, alt_text"
# First key of the (int, int) advisory locks on an owner's uploads ("upld"); blob keys use the bigint form.
UPLOADS_LOCK_SPACE = 0x75706C64
# ... and of the locks on an owner's avatar ("avtr").
AVATAR_LOCK_SPACE = 0x61767472


def blob_lock_ids(keys: Iterable[str]) -> list[int]:
    """Advisory lock ids of blob keys (their first 64 bits, as signed bigints), sorted: every
    holder takes them in this order."""
    ids = set()
    for key in keys:
        value = int(key[:16], 16)
        ids.add(value - (1 << 64) if value >= 1 << 63 else value)
    return sorted(ids)


def _record(row: dict, variants: list[StoredVariant]) -> MediaRecord:
    edit = row.pop("edit")
    return MediaRecord(**row, variants=tuple(variants), edit=Edit.from_dict(edit) if edit else None)


class PostgresMediaRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_media(self, record: MediaRecord, write_blobs: Callable[[], Awaitable[object]],
                        completes_upload: int | None = None) -> datetime:
        """Write the blobs (`write_blobs`), then the rows, holding the blobs' keys shared meanwhile.

        The collector (unused_blobs) takes the keys exclusively, so it never
        deletes a blob between this finding it stored already and the row
        naming it committing.
        """
        shard = shard_of(record.id)
        schema = shard_schema(shard)
        async with self.db.for_shard(shard).connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock_shared(k) FROM unnest(%s::bigint[]) AS k",
                               (blob_lock_ids(record.blob_keys),))
            await write_blobs()
            edit = record.edit
            cur = await conn.execute(
                f"INSERT INTO {schema}.media (id, owner_id, width, height, placeholder, original_key, "
                "original_format, original_bytes, captured_at, alt_text, source_media_id, edit) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING created_at",
                (record.id, record.owner_id, record.width, record.height, record.placeholder,
                 record.original_key, record.original_format, record.original_bytes, record.captured_at,
                 record.alt_text, edit.source_media_id if edit else None,
                 Jsonb(edit.to_dict()) if edit else None),
            )
            created_at = (await cur.fetchone())[0]
            async with conn.cursor() as variants:
                await variants.executemany(
                    f"INSERT INTO {schema}.media_variants (media_id, size, format, width, height, blob_key, "
                    "byte_size) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [(record.id, v.size, v.format, v.width, v.height, v.blob_key, v.byte_size)
                     for v in record.variants],
                )
            if completes_upload is not None:
                done = await conn.execute(
                    f"UPDATE {schema}.uploads SET media_id = %s WHERE id = %s AND media_id IS NULL",
                    (record.id, completes_upload),
                )
                if done.rowcount != 1:
                    # Leaving the block with this error rolls the media back.
                    raise Conflict(f"upload {completes_upload} was completed meanwhile: complete it again "
                                   "to get its media", reason="UPLOAD_COMPLETED")
        return created_at

    async def add_video(self, record: MediaRecord, write_blob: Callable[[], Awaitable[object]],
                        completes_upload: int) -> datetime:
        """The video's row (PROCESSING), its job and the upload's completion in one transaction, the
        original's blob written first under its key's shared lock (as add_media)."""
        shard = shard_of(record.id)
        s = shard_schema(shard)
        async with self.db.for_shard(shard).connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock_shared(k) FROM unnest(%s::bigint[]) AS k",
                               (blob_lock_ids([record.original_key]),))
            await write_blob()
            cur = await conn.execute(
                f"INSERT INTO {s}.media (id, owner_id, width, height, placeholder, original_key, original_format, "
                "original_bytes, alt_text, kind, state, duration_ms, has_audio) "
                "VALUES (%s, %s, %s, %s, '', %s, %s, %s, %s, 'video', %s, %s, %s) RETURNING created_at",
                (record.id, record.owner_id, record.width, record.height, record.original_key,
                 record.original_format, record.original_bytes, record.alt_text, record.state, record.duration_ms,
                 record.has_audio))
            created_at = (await cur.fetchone())[0]
            await conn.execute(f"INSERT INTO {s}.video_jobs (media_id, owner_id) VALUES (%s, %s)",
                               (record.id, record.owner_id))
            done = await conn.execute(f"UPDATE {s}.uploads SET media_id = %s WHERE id = %s AND media_id IS NULL",
                                      (record.id, completes_upload))
            if done.rowcount != 1:
                raise Conflict(f"upload {completes_upload} was completed meanwhile: complete it again "
                               "to get its media", reason="UPLOAD_COMPLETED")
        return created_at

    # --- the transcoder's jobs (services.media.transcoder) -------------------------------

    async def due_video_jobs(self, limit: int) -> list[int]:
        """Media ids of jobs nobody holds (never taken, or their lease ran out), oldest first."""
        rows = await self.db.every_shard(
            "SELECT media_id, created_at FROM {schema}.video_jobs WHERE leased_until IS NULL OR leased_until < now() "
            "ORDER BY created_at LIMIT %s", (limit,))
        return [r[0] for r in sorted(rows, key=lambda r: r[1])][:limit]

    async def video_job_counts(self) -> tuple[int, int]:
        """(jobs waiting for a transcoder, jobs held by one), over every shard: for the metrics."""
        rows = await self.db.every_shard(
            "SELECT count(*) FILTER (WHERE leased_until IS NULL OR leased_until < now()), "
            "count(*) FILTER (WHERE leased_until >= now()) FROM {schema}.video_jobs")
        return sum(r[0] for r in rows), sum(r[1] for r in rows)

    async def claim_video_job(self, media_id: int, worker: str, lease_s: float) -> tuple[int, str, int] | None:
        """Take the job for `lease_s` unless someone holds it: (attempts so far, the original's blob key,
        the owner)."""
        shard = shard_of(media_id)
        s = shard_schema(shard)
        async with self.db.transaction(shard) as (conn,):
            row = await (await conn.execute(
                f"UPDATE {s}.video_jobs j SET leased_until = now() + make_interval(secs => %s), leased_by = %s, "
                "attempts = attempts + 1 FROM " + s + ".media m WHERE j.media_id = %s AND m.id = j.media_id AND "
                "(j.leased_until IS NULL OR j.leased_until < now()) RETURNING j.attempts, m.original_key, j.owner_id",
                (lease_s, worker, media_id))).fetchone()
        return (row[0], row[1], row[2]) if row else None

    async def extend_video_job(self, media_id: int, worker: str, lease_s: float, progress: int) -> bool:
        """The heartbeat: the lease pushed forward; False when the job is no longer this worker's."""
        shard = shard_of(media_id)
        async with self.db.for_shard(shard).connection() as conn:
            done = await conn.execute(
                f"UPDATE {shard_schema(shard)}.video_jobs SET leased_until = now() + make_interval(secs => %s), "
                "progress = %s WHERE media_id = %s AND leased_by = %s", (lease_s, progress, media_id, worker))
            return done.rowcount == 1

    async def finish_video(self, media_id: int, worker: str, state: str, failure_reason: str = "",
                           result: MediaRecord | None = None,
                           write_blobs: Callable[[], Awaitable[object]] | None = None) -> bool:
        """End the job: READY with `result`'s size, placeholder, duration and files (written by
        `write_blobs` under their keys' shared locks), or FAILED with the reason; the job row goes and
        media.processed (and media.updated, for posts' caches, when posts hold it) is written in the
        same transaction. False (nothing changed) when the job is no longer this worker's."""
        shard = shard_of(media_id)
        s = shard_schema(shard)
        async with self.db.transaction(shard) as (conn,):
            job = await (await conn.execute(
                f"SELECT owner_id FROM {s}.video_jobs WHERE media_id = %s AND leased_by = %s FOR UPDATE",
                (media_id, worker))).fetchone()
            if job is None:
                return False
            owner_id = job[0]
            if result is not None:
                await conn.execute("SELECT pg_advisory_xact_lock_shared(k) FROM unnest(%s::bigint[]) AS k",
                                   (blob_lock_ids([v.blob_key for v in result.variants]),))
                if write_blobs is not None:
                    await write_blobs()
                async with conn.cursor() as variants:
                    await variants.executemany(
                        f"INSERT INTO {s}.media_variants (media_id, size, format, width, height, blob_key, byte_size) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        [(media_id, v.size, v.format, v.width, v.height, v.blob_key, v.byte_size)
                         for v in result.variants])
                await conn.execute(
                    f"UPDATE {s}.media SET state = %s, width = %s, height = %s, placeholder = %s, duration_ms = %s, "
                    "has_audio = %s, failure_reason = '' WHERE id = %s",
                    (state, result.width, result.height, result.placeholder, result.duration_ms, result.has_audio,
                     media_id))
            else:
                await conn.execute(f"UPDATE {s}.media SET state = %s, failure_reason = %s WHERE id = %s",
                                   (state, failure_reason, media_id))
            await conn.execute(f"DELETE FROM {s}.video_jobs WHERE media_id = %s", (media_id,))
            posts = [r[0] for r in await (await conn.execute(
                f"SELECT post_id FROM {s}.media_attachments WHERE media_id = %s", (media_id,))).fetchall()]
            await outbox.write(conn, shard, "media", "media.processed", media_id=media_id, owner_id=owner_id,
                               state=state, failure_reason=failure_reason, post_ids=posts,
                               duration_ms=result.duration_ms if result else 0)
            if posts:
                await outbox.write(conn, shard, "media", "media.updated", media_id=media_id, owner_id=owner_id,
                                   post_ids=posts)
        return True

    async def get_media(self, media_ids: list[int]) -> dict[int, MediaRecord]:
        by_shard: dict[int, list[int]] = defaultdict(list)
        for media_id in media_ids:
            by_shard[shard_of(media_id)].append(media_id)
        found: dict[int, MediaRecord] = {}
        for shard, ids in by_shard.items():
            schema = shard_schema(shard)
            async with self.db.for_shard(shard).connection() as conn:
                cur = conn.cursor(row_factory=dict_row)
                await cur.execute(f"SELECT {MEDIA_COLUMNS} FROM {schema}.media WHERE id = ANY(%s)", (ids,))
                rows = await cur.fetchall()
                await cur.execute(
                    f"SELECT media_id, size, format, width, height, blob_key, byte_size FROM {schema}.media_variants "
                    "WHERE media_id = ANY(%s) ORDER BY media_id, size, format",
                    ([row["id"] for row in rows],),
                )
                variants: dict[int, list[StoredVariant]] = defaultdict(list)
                for v in await cur.fetchall():
                    media_id = v.pop("media_id")
                    variants[media_id].append(StoredVariant(**v))
            for row in rows:
                found[row["id"]] = _record(row, variants[row["id"]])
        return found

    async def set_alt_text(self, owner_id: int, media_id: int, alt_text: str) -> MediaRecord | None:
        """Set the alt text and, in the same transaction, tell posts (a media.updated event naming the
        posts that use the item) when it changed, so their cached shapes go."""
        shard = shard_of(media_id)
        s = shard_schema(shard)
        async with self.db.transaction(shard) as (conn,):
            row = await (await conn.execute(
                f"SELECT alt_text FROM {s}.media WHERE id = %s AND owner_id = %s FOR UPDATE",
                (media_id, owner_id))).fetchone()
            if row is None:
                return None
            if row[0] != alt_text:
                await conn.execute(f"UPDATE {s}.media SET alt_text = %s WHERE id = %s", (alt_text, media_id))
                posts = [r[0] for r in await (await conn.execute(
                    f"SELECT post_id FROM {s}.media_attachments WHERE media_id = %s", (media_id,))).fetchall()]
                if posts:
                    await outbox.write(conn, shard, "media", "media.updated", media_id=media_id,
                                       owner_id=owner_id, post_ids=posts)
        return (await self.get_media([media_id])).get(media_id)

    async def add_upload(self, upload: Upload, max_open: int, max_bytes: int) -> tuple[int, int] | None:
        """Insert the upload within its owner's limits (see MediaRepository); one owner's creates take
        turns (an advisory lock on the owner), so two at once cannot both squeeze under a limit."""
        shard = shard_of(upload.id)
        s = shard_schema(shard)
        async with self.db.transaction(shard) as (conn,):
            await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (UPLOADS_LOCK_SPACE, upload.owner_id % (1 << 31)))
            count, declared = await (await conn.execute(
                f"SELECT count(*), coalesce(sum(size_bytes), 0) FROM {s}.uploads "
                "WHERE owner_id = %s AND media_id IS NULL AND expires_at > now()", (upload.owner_id,))).fetchone()
            if count + 1 > max_open or declared + upload.size_bytes > max_bytes:
                return count, declared
            await conn.execute(
                f"INSERT INTO {s}.uploads (id, owner_id, content_type, size_bytes, sha256, "
                "expires_at, alt_text) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (upload.id, upload.owner_id, upload.content_type, upload.size_bytes, upload.sha256,
                 upload.expires_at, upload.alt_text),
            )
        return None

    async def get_upload(self, upload_id: int) -> Upload | None:
        shard = shard_of(upload_id)
        async with self.db.for_shard(shard).connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(f"SELECT {UPLOAD_COLUMNS} FROM {shard_schema(shard)}.uploads WHERE id = %s",
                              (upload_id,))
            row = await cur.fetchone()
        return Upload(**row) if row else None

    async def advance_upload(self, upload_id: int, expected: int, received: int,
                             write: Callable[[], Awaitable[object]]) -> Upload | None:
        """While received_bytes is `expected`, run `write` (the chunk, fsynced) and move it to `received`.

        The row stays locked (FOR UPDATE) from the check to the commit, so two
        processes appending at the same offset take turns: the second finds
        the offset moved and writes nothing.
        """
        shard = shard_of(upload_id)
        s = shard_schema(shard)
        async with self.db.transaction(shard) as (conn,):
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(f"SELECT 1 FROM {s}.uploads WHERE id = %s AND received_bytes = %s FOR UPDATE",
                              (upload_id, expected))
            if await cur.fetchone() is None:
                return None
            await write()
            await cur.execute(f"UPDATE {s}.uploads SET received_bytes = %s WHERE id = %s RETURNING {UPLOAD_COLUMNS}",
                              (received, upload_id))
            row = await cur.fetchone()
        return Upload(**row)

    async def delete_expired_uploads(self, shard: int, now: datetime, limit: int) -> list[int]:
        async with self.db.for_shard(shard).connection() as conn:
            cur = await conn.execute(
                f"DELETE FROM {shard_schema(shard)}.uploads WHERE id IN (SELECT id FROM {shard_schema(shard)}.uploads "
                "WHERE expires_at < %s LIMIT %s) RETURNING id",
                (now, limit),
            )
            return [row[0] for row in await cur.fetchall()]

    async def add_variants(self, media_id: int, variants: tuple[StoredVariant, ...],
                           write_blobs: Callable[[], Awaitable[object]]) -> bool:
        """More variants of an existing media item (a story's full-screen renditions), their blobs written
        first under their keys' shared locks (as add_media); False when the item is gone or has them."""
        shard = shard_of(media_id)
        s = shard_schema(shard)
        async with self.db.transaction(shard) as (conn,):
            if await (await conn.execute(f"SELECT 1 FROM {s}.media WHERE id = %s FOR SHARE", (media_id,))).fetchone() \
                    is None:
                return False
            await conn.execute("SELECT pg_advisory_xact_lock_shared(k) FROM unnest(%s::bigint[]) AS k",
                               (blob_lock_ids([v.blob_key for v in variants]),))
            await write_blobs()
            async with conn.cursor() as cur:
                await cur.executemany(
                    f"INSERT INTO {s}.media_variants (media_id, size, format, width, height, blob_key, byte_size) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [(media_id, v.size, v.format, v.width, v.height, v.blob_key, v.byte_size) for v in variants])
                return cur.rowcount > 0

    # --- attachments: which posts use each media item ------------------------------------

    async def attach(self, owner_id: int, post_id: int, media_ids: list[int], confirmed: bool = False) -> set[int]:
        """Record that the post uses these media, if every one exists and is the owner's; returns the
        ids that do not (nothing is recorded then).

        The rows stay locked (FOR SHARE) until the attachments commit, so a
        release or a collection of the same media (FOR UPDATE) waits for
        them and then sees them; an attach that comes second finds the media
        gone.
        """
        shard = shard_of(owner_id)
        async with self.db.transaction(shard) as (conn,):
            return await self.attach_in(conn, shard_schema(shard), owner_id, post_id, media_ids, confirmed)

    @staticmethod
    async def attach_in(conn, s: str, owner_id: int, post_id: int, media_ids: list[int], confirmed: bool) -> set[int]:
        """attach, inside the caller's transaction on the owner's shard."""
        found = {r[0] for r in await (await conn.execute(
            f"SELECT id FROM {s}.media WHERE id = ANY(%s) AND owner_id = %s ORDER BY id FOR SHARE",
            (media_ids, owner_id))).fetchall()}
        missing = set(media_ids) - found
        if missing:
            return missing
        await conn.execute(
            f"INSERT INTO {s}.media_attachments (media_id, post_id, confirmed) "
            "SELECT unnest(%s::bigint[]), %s, %s ON CONFLICT DO NOTHING", (media_ids, post_id, confirmed))
        return set()

    async def set_avatar(self, owner_id: int, media_id: int) -> list[int] | None:
        """Make the owner's media `media_id` (0: none) the one their own id holds, letting go of any
        other it held, and delete those no attachment holds any more: their ids, or None when
        `media_id` is not the owner's. One owner's changes take turns (an advisory lock on the
        owner): two at once each read the avatar before and would both have stayed held."""
        shard = shard_of(owner_id)
        s = shard_schema(shard)
        async with self.db.transaction(shard) as (conn,):
            await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (AVATAR_LOCK_SPACE, owner_id % (1 << 31)))
            if media_id and await self.attach_in(conn, s, owner_id, owner_id, [media_id], confirmed=True):
                return None
            held = [r[0] for r in await (await conn.execute(
                f"SELECT media_id FROM {s}.media_attachments WHERE post_id = %s AND media_id <> %s",
                (owner_id, media_id))).fetchall()]
            if not held:
                return []
            locked = await self._lock_media(conn, s, "id = ANY(%s) AND owner_id = %s", (held, owner_id))
            await conn.execute(f"DELETE FROM {s}.media_attachments WHERE post_id = %s AND media_id = ANY(%s)",
                               (owner_id, held))
            return await self._delete_unattached(conn, s, locked)

    async def is_avatar(self, owner_id: int, media_id: int) -> bool:
        s = shard_schema(shard_of(owner_id))
        async with self.db.for_shard(shard_of(owner_id)).connection() as conn:
            return await (await conn.execute(
                f"SELECT 1 FROM {s}.media_attachments WHERE media_id = %s AND post_id = %s",
                (media_id, owner_id))).fetchone() is not None

    async def release(self, owner_id: int, media_ids: list[int], post_id: int = 0) -> list[int]:
        """Forget the post's attachments to these media (post_id 0: none), then delete the owner's media
        among them that no attachment holds any more; returns their ids."""
        shard = shard_of(owner_id)
        s = shard_schema(shard)
        async with self.db.transaction(shard) as (conn,):
            locked = await self._lock_media(conn, s, "id = ANY(%s) AND owner_id = %s", (media_ids, owner_id))
            if post_id:
                await conn.execute(f"DELETE FROM {s}.media_attachments WHERE post_id = %s AND media_id = ANY(%s)",
                                   (post_id, media_ids))
            return await self._delete_unattached(conn, s, locked)

    async def collect_unused(self, shard: int, created_before: datetime, limit: int) -> list[int]:
        """Delete up to `limit` media of the shard created before `created_before` that no post uses;
        returns their ids."""
        s = shard_schema(shard)
        async with self.db.transaction(shard) as (conn,):
            # SKIP LOCKED: media an attach holds right now are in use; the next round looks again.
            locked = await self._lock_media(
                conn, s, f"created_at < %s AND NOT EXISTS (SELECT 1 FROM {s}.media_attachments a "
                "WHERE a.media_id = media.id)", (created_before,), limit=limit, skip_locked=True)
            return await self._delete_unattached(conn, s, locked)

    @staticmethod
    async def _lock_media(conn, s: str, where: str, params: tuple, limit: int | None = None,
                          skip_locked: bool = False) -> list[int]:
        rows = await (await conn.execute(
            f"SELECT id FROM {s}.media WHERE {where} ORDER BY id LIMIT %s "
            f"FOR UPDATE{' SKIP LOCKED' if skip_locked else ''}", (*params, limit))).fetchall()
        return [r[0] for r in rows]

    @staticmethod
    async def _delete_unattached(conn, s: str, locked: list[int]) -> list[int]:
        """Of the media locked FOR UPDATE in this transaction, delete those no attachment holds, their
        blob keys queued in blob_garbage in the same transaction.

        NOTE: the attachments are read by a statement after the lock, so in
        READ COMMITTED it sees every attach that committed while we waited.
        """
        if not locked:
            return []
        held = {r[0] for r in await (await conn.execute(
            f"SELECT DISTINCT media_id FROM {s}.media_attachments WHERE media_id = ANY(%s)", (locked,))).fetchall()}
        free = [m for m in locked if m not in held]
        if free:
            await conn.execute(
                f"INSERT INTO {s}.blob_garbage (blob_key) SELECT original_key FROM {s}.media WHERE id = ANY(%s) "
                f"UNION SELECT blob_key FROM {s}.media_variants WHERE media_id = ANY(%s) ON CONFLICT DO NOTHING",
                (free, free))
            await conn.execute(f"DELETE FROM {s}.media WHERE id = ANY(%s)", (free,))
        return free

    async def unconfirmed_posts(self, shard: int, attached_before: datetime, limit: int) -> list[int]:
        """Posts of the shard with attachments older than `attached_before` that posts has not confirmed."""
        async with self.db.for_shard(shard).connection() as conn:
            rows = await (await conn.execute(
                f"SELECT DISTINCT post_id FROM (SELECT post_id FROM {shard_schema(shard)}.media_attachments "
                "WHERE NOT confirmed AND attached_at < %s ORDER BY attached_at LIMIT %s) a",
                (attached_before, limit))).fetchall()
        return [r[0] for r in rows]

    async def settle_attachments(self, shard: int, existing: list[int], missing: list[int]) -> int:
        """Confirm the attachments of posts that exist; drop those of posts that never appeared (their
        creation failed after attaching). Returns how many were dropped."""
        s = shard_schema(shard)
        async with self.db.transaction(shard) as (conn,):
            await conn.execute(f"UPDATE {s}.media_attachments SET confirmed = true WHERE post_id = ANY(%s)",
                               (existing,))
            dropped = await conn.execute(f"DELETE FROM {s}.media_attachments WHERE post_id = ANY(%s) AND NOT confirmed",
                                         (missing,))
            return dropped.rowcount

    async def queued_garbage(self, shard: int, limit: int) -> list[str]:
        async with self.db.for_shard(shard).connection() as conn:
            rows = await (await conn.execute(
                f"SELECT blob_key FROM {shard_schema(shard)}.blob_garbage ORDER BY queued_at LIMIT %s",
                (limit,))).fetchall()
        return [r[0] for r in rows]

    async def drop_garbage(self, shard: int, keys: list[str]) -> None:
        async with self.db.for_shard(shard).connection() as conn:
            await conn.execute(f"DELETE FROM {shard_schema(shard)}.blob_garbage WHERE blob_key = ANY(%s)", (keys,))

    @asynccontextmanager
    async def unused_blobs(self, keys: list[str]) -> AsyncIterator[set[str]]:
        """The keys no media row in any shard names, held exclusively until the block ends.

        In every database, in the shard map's order, one transaction takes the
        keys' locks and reads its own shards, on one connection: holding a
        lock never waits for a pooled connection.
        """
        ids = blob_lock_ids(keys)
        named: set[str] = set()
        async with AsyncExitStack() as stack:
            for shards in self.db.shards_by_database():
                conn = await stack.enter_async_context(self.db.for_shard(shards[0]).connection())
                await stack.enter_async_context(conn.transaction())
                await conn.execute("SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k", (ids,))
                rows = await self.db.each_schema(
                    conn, shards, "SELECT original_key FROM {schema}.media WHERE original_key = ANY(%s) "
                    "UNION ALL SELECT blob_key FROM {schema}.media_variants WHERE blob_key = ANY(%s)", (keys, keys))
                named.update(r[0] for r in rows)
            yield set(keys) - named
