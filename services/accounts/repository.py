"""Accounts storage in PostgreSQL: user rows in their shard, name claims in the global schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import psycopg
from psycopg.rows import dict_row

from services.accounts.counts import COLUMNS as COUNT_COLUMNS
from services.accounts.service import NewUser, RefreshToken, SessionRecord, TwoFactorState, User
from services.common import outbox
from services.common.db import GLOBAL_SCHEMA, Database, shard_schema
from services.common.errors import AlreadyExists
from services.common.ids import shard_of

USER_COLUMNS = (
    "id, username, display_name, bio, avatar_media_id, is_private, "
    "follower_count, following_count, post_count, created_at, show_activity_status, "
    "suspended_at IS NOT NULL AS suspended"
)
PROFILE_LOCK = "accounts.profile"
# The stream of user.created, user.updated and user.deleted (for search's index).
TOPIC = "accounts"


async def _user_event(conn: psycopg.AsyncConnection, type: str, user_id: int, username: str = "",
                      display_name: str = "", is_private: bool = False) -> None:
    await outbox.write(conn, shard_of(user_id), TOPIC, type, user_id=user_id, username=username,
                       display_name=display_name, is_private=is_private)


class PostgresAccountsRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create_user(self, new: NewUser) -> None:
        user = new.user
        # Claim the name and email first: the global unique keys decide races.
        async with self.db.global_pool.connection() as conn:
            try:
                async with conn.transaction():
                    # A deleted account's name, held past its grace period, is free again.
                    await conn.execute(
                        f"DELETE FROM {GLOBAL_SCHEMA}.usernames WHERE username = %s AND user_id IS NULL "
                        "AND free_at <= now()", (user.username,))
                    await conn.execute(
                        f"INSERT INTO {GLOBAL_SCHEMA}.usernames (username, user_id) VALUES (%s, %s)",
                        (user.username, user.id),
                    )
                    await conn.execute(
                        f"INSERT INTO {GLOBAL_SCHEMA}.emails (email, user_id) VALUES (%s, %s)", (new.email, user.id)
                    )
            except psycopg.errors.UniqueViolation as e:
                taken = "email" if "emails" in (e.diag.table_name or "") else "username"
                raise AlreadyExists(f"that {taken} is taken", reason=f"{taken.upper()}_TAKEN", field=taken) from None
        try:
            async with self.db.transaction(shard_of(user.id)) as (conn,):
                await conn.execute(
                    f"INSERT INTO {shard_schema(shard_of(user.id))}.users "
                    "(id, username, email, password_hash, display_name) VALUES (%s, %s, %s, %s, %s)",
                    (user.id, user.username, new.email, new.password_hash, user.display_name),
                )
                await _user_event(conn, "user.created", user.id, user.username, user.display_name, user.is_private)
        except BaseException:
            # Release the claims so the name is not lost to a half-made account.
            await self._release_claims(user.id)
            raise

    async def _release_claims(self, user_id: int) -> None:
        async with self.db.global_pool.connection() as conn, conn.transaction():
            await conn.execute(f"DELETE FROM {GLOBAL_SCHEMA}.usernames WHERE user_id = %s", (user_id,))
            await conn.execute(f"DELETE FROM {GLOBAL_SCHEMA}.emails WHERE user_id = %s", (user_id,))

    async def delete_user(self, user_id: int) -> None:
        """Undo create_user (its row, then its name claims): for a registration that could not finish."""
        async with self.db.transaction(shard_of(user_id)) as (conn,):
            cur = await conn.execute(f"DELETE FROM {shard_schema(shard_of(user_id))}.users WHERE id = %s",
                                     (user_id,))
            if cur.rowcount:
                await _user_event(conn, "user.deleted", user_id)
        await self._release_claims(user_id)

    async def delete_account(self, user_id: int, username_free_at: datetime) -> bool:
        """The account goes at once: its row (its refresh tokens, second factor and recovery codes
        with it, ON DELETE CASCADE) and its devices, with the account.deleted event in the same
        transaction; then its email, and its username held by nobody until `username_free_at`.
        Idempotent; False when there was no account."""
        shard = shard_of(user_id)
        s = shard_schema(shard)
        async with self.db.transaction(shard) as (conn,):
            cur = await conn.execute(f"DELETE FROM {s}.users WHERE id = %s", (user_id,))
            await conn.execute(f"DELETE FROM {s}.devices WHERE user_id = %s", (user_id,))
            deleted = cur.rowcount > 0
            if deleted:
                await outbox.write(conn, shard, TOPIC, "account.deleted", user_id=user_id)
        await self.release_claims_of_deleted(user_id, username_free_at)
        return deleted

    async def release_claims_of_deleted(self, user_id: int, username_free_at: datetime) -> None:
        async with self.db.global_pool.connection() as conn, conn.transaction():
            await conn.execute(f"UPDATE {GLOBAL_SCHEMA}.usernames SET user_id = NULL, free_at = %s WHERE user_id = %s",
                               (username_free_at, user_id))
            await conn.execute(f"DELETE FROM {GLOBAL_SCHEMA}.emails WHERE user_id = %s", (user_id,))

    @asynccontextmanager
    async def profile_lock(self, user_id: int) -> AsyncIterator[None]:
        """One change of the user's profile that another service keeps (privacy, avatar) at a time,
        across every accounts process: a session advisory lock held over the change's commit and the
        calls telling the others."""
        key = (PROFILE_LOCK, user_id % 2_147_483_647)
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            await conn.execute("SELECT pg_advisory_lock(hashtext(%s), %s)", key)
            try:
                yield
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtext(%s), %s)", key)

    async def user_id_for_login(self, login: str) -> int | None:
        table, column = ("emails", "email") if "@" in login else ("usernames", "username")
        async with self.db.global_pool.connection() as conn:
            row = await (
                await conn.execute(f"SELECT user_id FROM {GLOBAL_SCHEMA}.{table} WHERE {column} = %s", (login,))
            ).fetchone()
        return row[0] if row else None

    async def get_users(self, user_ids: list[int]) -> dict[int, User]:
        rows = await self.db.select_by_shard(user_ids, f"SELECT {USER_COLUMNS} FROM {{schema}}.users WHERE id = ANY(%s)")
        return {row[0]: User(*row) for row in rows}

    async def emails(self, user_ids: list[int]) -> dict[int, str]:
        rows = await self.db.select_by_shard(user_ids, "SELECT id, email FROM {schema}.users WHERE id = ANY(%s)")
        return dict(rows)

    async def password_hash(self, user_id: int) -> str | None:
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            row = await (
                await conn.execute(
                    f"SELECT password_hash FROM {shard_schema(shard_of(user_id))}.users WHERE id = %s", (user_id,)
                )
            ).fetchone()
        return row[0] if row else None

    async def replace_password_hash(self, user_id: int, old: str, new: str) -> None:
        # Only over the hash that was checked: a password changed meanwhile stays changed.
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            await conn.execute(
                f"UPDATE {shard_schema(shard_of(user_id))}.users SET password_hash = %s "
                "WHERE id = %s AND password_hash = %s",
                (new, user_id, old),
            )

    async def update_profile(self, user_id: int, changes: dict[str, object]) -> User | None:
        # Column names come from the service's fixed list of editable fields.
        assignments = ", ".join(f"{column} = %s" for column in changes)
        async with self.db.transaction(shard_of(user_id)) as (conn,):
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                f"UPDATE {shard_schema(shard_of(user_id))}.users SET {assignments}, updated_at = now() "
                f"WHERE id = %s RETURNING {USER_COLUMNS}",
                (*changes.values(), user_id),
            )
            row = await cur.fetchone()
            if row and {"display_name", "is_private"} & set(changes):
                await _user_event(conn, "user.updated", user_id, row["username"], row["display_name"],
                                  row["is_private"])
        return User(**row) if row else None

    async def suspend(self, user_id: int) -> None:
        """A moderator suspended the account (moderation.account_suspended): marked, and every session
        signed out (their refresh tokens revoked). Idempotent."""
        if not self.db.holds(user_id):
            return
        s = shard_schema(shard_of(user_id))
        async with self.db.transaction(shard_of(user_id)) as (conn,):
            await conn.execute(f"UPDATE {s}.users SET suspended_at = coalesce(suspended_at, now()) WHERE id = %s",
                               (user_id,))
            await conn.execute(f"UPDATE {s}.refresh_tokens SET revoked_at = now() "
                               "WHERE user_id = %s AND revoked_at IS NULL", (user_id,))

    async def scan(self, shard: int, after_id: int, limit: int) -> list[User]:
        """The shard's users in id order after `after_id` (search's index rebuild)."""
        async with self.db.for_shard(shard).connection() as conn:
            rows = await (await conn.execute(
                f"SELECT {USER_COLUMNS} FROM {shard_schema(shard)}.users WHERE id > %s ORDER BY id LIMIT %s",
                (after_id, limit))).fetchall()
        return [User(*row) for row in rows]

    async def add_refresh_token(self, token: RefreshToken, user_agent: str) -> None:
        async with self.db.for_shard(shard_of(token.id)).connection() as conn:
            await conn.execute(
                f"INSERT INTO {shard_schema(shard_of(token.id))}.refresh_tokens "
                "(id, user_id, family_id, secret_hash, expires_at, user_agent) VALUES (%s, %s, %s, %s, %s, %s)",
                (token.id, token.user_id, token.family_id, token.secret_hash,
                 datetime.fromtimestamp(token.expires_at, UTC), user_agent),
            )

    async def rotate_refresh_token(self, spent_id: int, successor: RefreshToken) -> bool:
        """Spend a token and add its successor in one statement; False when it was spent or revoked
        already (a race is a reuse). Atomic, so a revocation of the family that follows a lost race
        always finds the winner's successor: no concurrent refresh keeps a revoked family alive."""
        s = shard_schema(shard_of(spent_id))
        async with self.db.for_shard(shard_of(spent_id)).connection() as conn:
            cur = await conn.execute(
                f"WITH spent AS (UPDATE {s}.refresh_tokens SET used_at = now() "
                "WHERE id = %s AND used_at IS NULL AND revoked_at IS NULL RETURNING user_id, family_id, user_agent) "
                f"INSERT INTO {s}.refresh_tokens (id, user_id, family_id, secret_hash, expires_at, user_agent) "
                "SELECT %s, user_id, family_id, %s, %s, user_agent FROM spent",
                (spent_id, successor.id, successor.secret_hash, datetime.fromtimestamp(successor.expires_at, UTC)),
            )
            return cur.rowcount == 1

    async def sessions(self, user_id: int) -> list[SessionRecord]:
        """The user's families that can still refresh (their newest token unspent, unrevoked, unexpired)."""
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            rows = await (await conn.execute(
                "SELECT family_id, min(created_at), max(created_at), "
                "(array_agg(user_agent ORDER BY created_at))[1] "
                f"FROM {shard_schema(shard_of(user_id))}.refresh_tokens "
                "WHERE user_id = %s AND revoked_at IS NULL GROUP BY family_id "
                "HAVING bool_or(used_at IS NULL AND expires_at > now()) ORDER BY max(created_at) DESC",
                (user_id,))).fetchall()
        return [SessionRecord(*row) for row in rows]

    async def revoke_session(self, user_id: int, family_id: int) -> bool:
        """Revoke the user's family; False when it is not theirs or was revoked already."""
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            cur = await conn.execute(
                f"UPDATE {shard_schema(shard_of(user_id))}.refresh_tokens SET revoked_at = now() "
                "WHERE user_id = %s AND family_id = %s AND revoked_at IS NULL",
                (user_id, family_id),
            )
            return cur.rowcount > 0

    async def get_refresh_token(self, token_id: int) -> RefreshToken | None:
        shard = shard_of(token_id)
        if shard >= self.db.logical_shards:
            return None
        async with self.db.for_shard(shard).connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT id, user_id, family_id, secret_hash, expires_at, used_at IS NOT NULL, "
                    f"revoked_at IS NOT NULL FROM {shard_schema(shard)}.refresh_tokens WHERE id = %s",
                    (token_id,),
                )
            ).fetchone()
        if row is None:
            return None
        return RefreshToken(row[0], row[1], row[2], bytes(row[3]), row[4].timestamp(), row[5], row[6])

    async def revoke_token_family(self, token_id: int, family_id: int) -> None:
        # A family lives in its user's shard, the shard of every token in it.
        async with self.db.for_shard(shard_of(token_id)).connection() as conn:
            await conn.execute(
                f"UPDATE {shard_schema(shard_of(token_id))}.refresh_tokens SET revoked_at = now() "
                "WHERE family_id = %s AND revoked_at IS NULL",
                (family_id,),
            )


    # --- two-factor sign-in ---------------------------------------------------------

    async def two_factor(self, user_id: int) -> TwoFactorState | None:
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            row = await (await conn.execute(
                f"SELECT secret, enabled_at IS NOT NULL, last_step FROM {shard_schema(shard_of(user_id))}.two_factor "
                "WHERE user_id = %s", (user_id,))).fetchone()
        return TwoFactorState(*row) if row else None

    async def set_pending_secret(self, user_id: int, secret: str) -> bool:
        """A new secret, not yet on; False (nothing changed) when two-factor sign-in is on already."""
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            cur = await conn.execute(
                f"INSERT INTO {shard_schema(shard_of(user_id))}.two_factor AS t (user_id, secret) VALUES (%s, %s) "
                "ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, last_step = -1 "
                "WHERE t.enabled_at IS NULL", (user_id, secret))
            return cur.rowcount == 1

    async def enable_two_factor(self, user_id: int, secret: str, step: int, code_hashes: list[bytes]) -> bool:
        """On, with the step that proved it and new recovery codes, if still off with that secret."""
        s = shard_schema(shard_of(user_id))
        async with self.db.for_shard(shard_of(user_id)).connection() as conn, conn.transaction():
            cur = await conn.execute(
                f"UPDATE {s}.two_factor SET enabled_at = now(), last_step = %s "
                "WHERE user_id = %s AND secret = %s AND enabled_at IS NULL AND last_step < %s",
                (step, user_id, secret, step))
            if cur.rowcount != 1:
                return False
            await conn.execute(f"DELETE FROM {s}.recovery_codes WHERE user_id = %s", (user_id,))
            await conn.execute(
                f"INSERT INTO {s}.recovery_codes (user_id, code_hash) SELECT %s, unnest(%s::bytea[])",
                (user_id, code_hashes))
        return True

    async def accept_step(self, user_id: int, step: int) -> bool:
        """Spend a code's step: True only for a step later than every one accepted before (atomic, so
        one code signs in once however many try it at once)."""
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            cur = await conn.execute(
                f"UPDATE {shard_schema(shard_of(user_id))}.two_factor SET last_step = %s "
                "WHERE user_id = %s AND enabled_at IS NOT NULL AND last_step < %s", (step, user_id, step))
            return cur.rowcount == 1

    async def use_recovery_code(self, user_id: int, code_hash: bytes) -> bool:
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            cur = await conn.execute(
                f"UPDATE {shard_schema(shard_of(user_id))}.recovery_codes SET used_at = now() "
                "WHERE user_id = %s AND code_hash = %s AND used_at IS NULL", (user_id, code_hash))
            return cur.rowcount == 1

    async def recovery_codes_left(self, user_id: int) -> int:
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            row = await (await conn.execute(
                f"SELECT count(*) FROM {shard_schema(shard_of(user_id))}.recovery_codes "
                "WHERE user_id = %s AND used_at IS NULL", (user_id,))).fetchone()
        return row[0]

    async def disable_two_factor(self, user_id: int) -> None:
        s = shard_schema(shard_of(user_id))
        async with self.db.for_shard(shard_of(user_id)).connection() as conn, conn.transaction():
            await conn.execute(f"DELETE FROM {s}.two_factor WHERE user_id = %s", (user_id,))
            await conn.execute(f"DELETE FROM {s}.recovery_codes WHERE user_id = %s", (user_id,))


class PostgresCountStore:
    """The profile counts' side of `users`, for the counts consumer (services.accounts.counts)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_once(self, consumer: str, event_id: str, user_id: int, column: str, delta: int) -> bool:
        """One statement, so one transaction: record the event for this user, and add only if it is new."""
        if column not in COUNT_COLUMNS:
            raise ValueError(f"{column} is not a count of users")
        if not self.db.holds(user_id):
            return False
        s = shard_schema(shard_of(user_id))
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            cur = await conn.execute(
                f"WITH fresh AS (INSERT INTO {s}.consumed_events (consumer, event_id, entity_id) VALUES (%s, %s, %s) "
                "ON CONFLICT DO NOTHING RETURNING 1) "
                f"UPDATE {s}.users SET {column} = {column} + %s WHERE id = %s AND EXISTS (SELECT 1 FROM fresh)",
                (consumer, event_id, user_id, delta, user_id))
            return cur.rowcount == 1

    async def prune(self, shard: int, older_than_s: int) -> None:
        """Forget event ids applied longer ago than any redelivery comes."""
        async with self.db.for_shard(shard).connection() as conn:
            await conn.execute(
                f"DELETE FROM {shard_schema(shard)}.consumed_events WHERE applied_at < now() - make_interval(secs => %s)",
                (older_than_s,))
