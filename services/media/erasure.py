"""Media's part of an account's erasure (services.common.erasure).

Everything the user uploaded goes, whatever still uses it (their posts and stories
go too, and a message's photo is the sender's): their open uploads with the
partial files, their media items with every variant and attachment, then the
blobs no media names any more (a photo someone else uploaded too stays theirs),
deleted at once rather than at the collector's next round.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from services.common.db import shard_schema
from services.common.ids import shard_of
from services.media.blobstore import BlobStore, PartFiles
from services.media.repository import PostgresMediaRepository
from services.media.service import collect_garbage


@dataclass
class MediaEraser:
    repo: PostgresMediaRepository
    blobs: BlobStore
    parts: PartFiles

    async def erase_user(self, user_id: int) -> None:
        if not self.repo.db.holds(user_id):
            return
        shard = shard_of(user_id)
        s = shard_schema(shard)
        async with self.repo.db.transaction(shard) as (conn,):
            uploads = [r[0] for r in await (await conn.execute(
                f"DELETE FROM {s}.uploads WHERE owner_id = %s RETURNING id", (user_id,))).fetchall()]
            locked = await self.repo._lock_media(conn, s, "owner_id = %s", (user_id,))
            await conn.execute(f"DELETE FROM {s}.media_attachments WHERE media_id = ANY(%s)", (locked,))
            await self.repo._delete_unattached(conn, s, locked)
        for upload_id in uploads:
            await asyncio.to_thread(self.parts.delete, upload_id)
        await collect_garbage(self.repo, self.blobs, shard)
