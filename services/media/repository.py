"""Media storage in PostgreSQL: media, their variants and uploads, in the owner's shard."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from psycopg.rows import dict_row

from services.common.db import Database, shard_schema
from services.common.errors import Conflict
from services.common.ids import shard_of
from services.media.service import MediaRecord, StoredVariant, Upload

MEDIA_COLUMNS = ("id, owner_id, width, height, placeholder, original_key, original_format, original_bytes, "
                 "captured_at, created_at")
UPLOAD_COLUMNS = "id, owner_id, content_type, size_bytes, sha256, received_bytes, expires_at, media_id"


class PostgresMediaRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_media(self, record: MediaRecord, completes_upload: int | None = None) -> datetime:
        shard = shard_of(record.id)
        schema = shard_schema(shard)
        async with self.db.for_shard(shard).connection() as conn, conn.transaction():
            cur = await conn.execute(
                f"INSERT INTO {schema}.media (id, owner_id, width, height, placeholder, original_key, "
                "original_format, original_bytes, captured_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "RETURNING created_at",
                (record.id, record.owner_id, record.width, record.height, record.placeholder,
                 record.original_key, record.original_format, record.original_bytes, record.captured_at),
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
                found[row["id"]] = MediaRecord(**row, variants=tuple(variants[row["id"]]))
        return found

    async def add_upload(self, upload: Upload) -> None:
        shard = shard_of(upload.id)
        async with self.db.for_shard(shard).connection() as conn:
            await conn.execute(
                f"INSERT INTO {shard_schema(shard)}.uploads (id, owner_id, content_type, size_bytes, sha256, "
                "expires_at) VALUES (%s, %s, %s, %s, %s, %s)",
                (upload.id, upload.owner_id, upload.content_type, upload.size_bytes, upload.sha256,
                 upload.expires_at),
            )

    async def get_upload(self, upload_id: int) -> Upload | None:
        shard = shard_of(upload_id)
        async with self.db.for_shard(shard).connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(f"SELECT {UPLOAD_COLUMNS} FROM {shard_schema(shard)}.uploads WHERE id = %s",
                              (upload_id,))
            row = await cur.fetchone()
        return Upload(**row) if row else None

    async def advance_upload(self, upload_id: int, expected: int, received: int) -> Upload | None:
        shard = shard_of(upload_id)
        async with self.db.for_shard(shard).connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                f"UPDATE {shard_schema(shard)}.uploads SET received_bytes = %s "
                f"WHERE id = %s AND received_bytes = %s RETURNING {UPLOAD_COLUMNS}",
                (received, upload_id, expected),
            )
            row = await cur.fetchone()
        return Upload(**row) if row else None

    async def delete_expired_uploads(self, shard: int, now: datetime, limit: int) -> list[int]:
        async with self.db.for_shard(shard).connection() as conn:
            cur = await conn.execute(
                f"DELETE FROM {shard_schema(shard)}.uploads WHERE id IN (SELECT id FROM {shard_schema(shard)}.uploads "
                "WHERE expires_at < %s LIMIT %s) RETURNING id",
                (now, limit),
            )
            return [row[0] for row in await cur.fetchall()]
