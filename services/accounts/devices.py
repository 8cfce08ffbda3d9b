"""Devices: the public keys a user's devices publish for end-to-end encrypted conversations.

Accounts owns them (table `devices`, in the user's shard). A key is an X25519
public key, 32 bytes; a private key never reaches the server. Anyone signed in
may read a user's keys (to encrypt to them), except across a block (NOT_FOUND,
as for no such user); the messaging service asks for device ids through the
mesh-only ListDeviceIds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from services.accounts.service import ViewerRelationship
from services.common.db import Database, shard_schema
from services.common.errors import InvalidArgument, NotFound, ResourceExhausted
from services.common.ids import IdAllocator, shard_of

PUBLIC_KEY_BYTES = 32
MAX_DEVICES = 20
MAX_BATCH = 500


@dataclass(frozen=True)
class Device:
    id: int
    user_id: int
    public_key: bytes
    created_at: datetime | None = None


class Blocks(Protocol):
    async def relationship(self, viewer_id: int, user_id: int) -> ViewerRelationship: ...


class PostgresDevices:
    def __init__(self, db: Database) -> None:
        self.db = db

    def holds(self, user_id: int) -> bool:
        return self.db.holds(user_id)

    async def add(self, device: Device, limit: int) -> bool:
        """Insert unless the user has `limit` devices already (one statement decides)."""
        s = shard_schema(shard_of(device.user_id))
        async with self.db.for_shard(shard_of(device.user_id)).connection() as conn:
            cur = await conn.execute(
                f"INSERT INTO {s}.devices (user_id, id, public_key) SELECT %s, %s, %s "
                f"WHERE (SELECT count(*) FROM {s}.devices WHERE user_id = %s) < %s",
                (device.user_id, device.id, device.public_key, device.user_id, limit))
        return cur.rowcount == 1

    async def user_exists(self, user_id: int) -> bool:
        s = shard_schema(shard_of(user_id))
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            return await (await conn.execute(f"SELECT 1 FROM {s}.users WHERE id = %s", (user_id,))).fetchone() is not None

    async def of_user(self, user_id: int) -> list[Device]:
        s = shard_schema(shard_of(user_id))
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            rows = await (await conn.execute(
                f"SELECT id, user_id, public_key, created_at FROM {s}.devices WHERE user_id = %s ORDER BY id",
                (user_id,))).fetchall()
        return [Device(r[0], r[1], bytes(r[2]), r[3]) for r in rows]

    async def ids_of(self, user_ids: list[int]) -> list[tuple[int, int]]:
        rows = await self.db.select_by_shard(user_ids, "SELECT user_id, id FROM {schema}.devices "
                                                       "WHERE user_id = ANY(%s) ORDER BY user_id, id")
        return [(r[0], r[1]) for r in rows]


@dataclass
class DeviceKeys:
    store: PostgresDevices
    ids: IdAllocator
    blocks: Blocks

    async def publish(self, user_id: int, public_key: bytes) -> Device:
        if len(public_key) != PUBLIC_KEY_BYTES:
            raise InvalidArgument("public_key", f"public_key must be an X25519 public key of {PUBLIC_KEY_BYTES} "
                                                "bytes (base64 in JSON)", reason="INVALID_PUBLIC_KEY")
        device = Device(self.ids.new_id(shard_of(user_id)), user_id, public_key)
        if not await self.store.add(device, MAX_DEVICES):
            raise ResourceExhausted(f"at most {MAX_DEVICES} devices per user", reason="TOO_MANY_DEVICES")
        return next(d for d in await self.store.of_user(user_id) if d.id == device.id)

    async def of_user(self, viewer_id: int, user_id: int) -> list[Device]:
        if not self.store.holds(user_id) or not await self.store.user_exists(user_id) or (
                viewer_id != user_id and (await self.blocks.relationship(viewer_id, user_id)).blocked):
            raise NotFound(f"user {user_id} not found", reason="USER_NOT_FOUND")
        return await self.store.of_user(user_id)

    async def ids_of(self, user_ids: list[int]) -> list[tuple[int, int]]:
        if len(user_ids) > MAX_BATCH:
            raise InvalidArgument("user_ids", f"at most {MAX_BATCH} ids per call")
        return await self.store.ids_of(user_ids)
