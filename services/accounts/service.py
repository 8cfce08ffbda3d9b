"""Accounts domain logic: validation, passwords, sessions. No gRPC here."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import time
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from services.accounts import totp
from services.accounts.attempts import SignInAttempts
from services.accounts.passwords import PasswordPool
from services.common.auth import TokenSigner
from services.common.dependencies import REDIS_ERRORS
from services.common.errors import (
    AlreadyExists,
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from services.common.ids import IdAllocator, shard_of
from services.common.pagination import check_scan, decimal_int64
from services.common.revocation import TokenRevoker

USERNAME_RE = re.compile(r"^[a-z0-9._]{1,30}$")
# Deliberately simple: one @, a dot in the domain, no spaces or control characters.
# Delivery is the real test.
EMAIL_RE = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]+\.[^@\s.\x00-\x1f\x7f]{2,}$")
# What no username or e-mail address holds (PostgreSQL text cannot hold NUL at all).
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
MAX_DISPLAY_NAME, MAX_BIO = 64, 150
MAX_BATCH = 500
EDITABLE_FIELDS = ("display_name", "bio", "is_private", "show_activity_status", "avatar_media_id")
BAD_LOGIN = "wrong username or password"

log = logging.getLogger(__name__)


@dataclass
class User:
    id: int
    username: str
    display_name: str = ""
    bio: str = ""
    avatar_media_id: int | None = None
    is_private: bool = False
    follower_count: int = 0
    following_count: int = 0
    post_count: int = 0
    created_at: datetime | None = None
    show_activity_status: bool = True
    # Suspended by a moderator: no sign-in, no refresh; others see the account as missing.
    suspended: bool = False
    # How the viewer of a profile stands with this user (view_user only).
    viewer: ViewerRelationship | None = None


@dataclass(frozen=True)
class ViewerRelationship:
    following: bool = False
    requested: bool = False
    muted: bool = False
    # Either side blocked the other.
    blocked: bool = False


@dataclass
class NewUser:
    user: User
    email: str
    password_hash: str


@dataclass
class RefreshToken:
    id: int
    user_id: int
    family_id: int
    secret_hash: bytes
    expires_at: float
    used: bool
    revoked: bool


@dataclass
class SessionRecord:
    """A signed-in device: a refresh-token family that can still refresh."""
    id: int
    signed_in_at: datetime
    last_active_at: datetime
    user_agent: str


@dataclass
class TwoFactorState:
    secret: str
    enabled: bool
    last_step: int


@dataclass
class SessionTokens:
    user: User
    access_token: str
    refresh_token: str
    expires_in: int


class Blocks(Protocol):
    async def relationship(self, viewer_id: int, user_id: int) -> ViewerRelationship:
        """How the viewer stands with the user, from the graph (blocked: either of the two blocked the other)."""
        ...


class Avatars(Protocol):
    async def set_avatar(self, owner_id: int, media_id: int) -> None:
        """Media's record of the owner's avatar (0: none); INVALID_ARGUMENT for media not theirs or not a photo."""


class Members(Protocol):
    async def set_account_privacy(self, user_id: int, is_private: bool) -> None:
        """Tell the graph (which keeps its own record) that the user exists and whether they are private."""
        ...


class AccountsRepository(Protocol):
    async def create_user(self, new: NewUser) -> None: ...
    async def delete_user(self, user_id: int) -> None: ...
    def profile_lock(self, user_id: int) -> AbstractAsyncContextManager[None]: ...
    async def user_id_for_login(self, login: str) -> int | None: ...
    async def get_users(self, user_ids: list[int]) -> dict[int, User]: ...
    async def emails(self, user_ids: list[int]) -> dict[int, str]: ...
    async def password_hash(self, user_id: int) -> str | None: ...
    async def replace_password_hash(self, user_id: int, old: str, new: str) -> None: ...
    async def update_profile(self, user_id: int, changes: dict[str, object]) -> User | None: ...
    async def scan(self, shard: int, after_id: int, limit: int) -> list[User]: ...
    async def add_refresh_token(self, token: RefreshToken, user_agent: str) -> None: ...
    async def rotate_refresh_token(self, spent_id: int, successor: RefreshToken) -> bool: ...
    async def sessions(self, user_id: int) -> list[SessionRecord]: ...
    async def revoke_session(self, user_id: int, family_id: int) -> bool: ...
    async def two_factor(self, user_id: int) -> TwoFactorState | None: ...
    async def set_pending_secret(self, user_id: int, secret: str) -> bool: ...
    async def enable_two_factor(self, user_id: int, secret: str, step: int, code_hashes: list[bytes]) -> bool: ...
    async def accept_step(self, user_id: int, step: int) -> bool: ...
    async def use_recovery_code(self, user_id: int, code_hash: bytes) -> bool: ...
    async def recovery_codes_left(self, user_id: int) -> int: ...
    async def disable_two_factor(self, user_id: int) -> None: ...
    async def delete_account(self, user_id: int, username_free_at: datetime) -> bool: ...
    async def get_refresh_token(self, token_id: int) -> RefreshToken | None: ...
    async def revoke_token_family(self, token_id: int, family_id: int) -> None: ...


# --- validation -------------------------------------------------------------


def suspended() -> PermissionDenied:
    return PermissionDenied("this account is suspended by a moderator", reason="ACCOUNT_SUSPENDED")


def normalize_username(raw: str) -> str:
    username = raw.strip().lower()
    if not USERNAME_RE.match(username):
        raise InvalidArgument("username", "username must be 1-30 characters of a-z, 0-9, '.' and '_'")
    return username


def normalize_email(raw: str) -> str:
    email = raw.strip().lower()
    if len(email) > 254 or not EMAIL_RE.match(email):
        raise InvalidArgument("email", "email must be a valid address such as name@example.com")
    return email


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidArgument("password", f"password must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidArgument("password", f"password must be at most {MAX_PASSWORD} characters")


def check_text(field_name: str, value: str, limit: int) -> str:
    if len(value) > limit:
        raise InvalidArgument(field_name, f"{field_name} must be at most {limit} characters")
    if any(ord(c) < 32 and c not in "\n" for c in value):
        raise InvalidArgument(field_name, f"{field_name} must not contain control characters")
    return value


def validate_profile_changes(changes: dict[str, object]) -> dict[str, object]:
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise InvalidArgument(
            "update_mask", f"cannot change {', '.join(unknown)}; changeable: {', '.join(EDITABLE_FIELDS)}"
        )
    if "display_name" in changes:
        changes["display_name"] = check_text("display_name", str(changes["display_name"]).strip(), MAX_DISPLAY_NAME)
    if "bio" in changes:
        changes["bio"] = check_text("bio", str(changes["bio"]), MAX_BIO)
    for flag in ("is_private", "show_activity_status"):
        if flag in changes:
            changes[flag] = bool(changes[flag])
    if "avatar_media_id" in changes:
        avatar = changes["avatar_media_id"]
        if not isinstance(avatar, int) or avatar < 0:
            raise InvalidArgument("avatar_media_id", "avatar_media_id must be a media id of yours, or 0 for none")
        changes["avatar_media_id"] = avatar or None
    return changes


# --- refresh tokens ----------------------------------------------------------


# What a session keeps of the client's User-Agent.
MAX_USER_AGENT = 200
# Recovery codes given when two-factor sign-in is turned on.
RECOVERY_CODES = 10


def _hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _parse_refresh_token(raw: str) -> tuple[int, str]:
    digits, _, secret = raw.strip().partition(".")
    token_id = decimal_int64(digits)
    if token_id is None or not secret:
        raise Unauthenticated("refresh token is not valid", reason="REFRESH_TOKEN_INVALID")
    return token_id, secret


@dataclass
class AccountsService:
    repo: AccountsRepository
    ids: IdAllocator
    signer: TokenSigner
    refresh_ttl_s: int
    blocks: Blocks
    members: Members
    # Every argon2 call goes through it: bounded workers, a bounded wait, then 503 (services.accounts.passwords).
    passwords: PasswordPool
    # How long a deleted account's username stays taken (PICTOR_USERNAME_GRACE_DAYS).
    username_grace_s: float = 30 * 86400
    # Voids access tokens before they expire (services.common.revocation); None: they live out their TTL.
    revoker: TokenRevoker | None = None
    # Sign-ins per account, whichever name a login uses (services.accounts.attempts); None: unlimited here.
    attempts: SignInAttempts | None = None
    # Media keeps the avatar's photo (and serves it); None: avatars cannot be set.
    avatars: Avatars | None = None

    async def _revoke(self, *, user_id: int = 0, session_id: int = 0) -> None:
        """After the change that calls for it committed: with Redis away it is logged, not failed (the
        tokens then live out their TTL, as before revocation existed)."""
        if self.revoker is None:
            return
        try:
            if user_id:
                await self.revoker.user(user_id)
            if session_id:
                await self.revoker.session(session_id)
        except REDIS_ERRORS as error:
            log.warning("access tokens of user %d / session %d not revoked (%s); they expire within the TTL",
                        user_id, session_id, error)

    async def register(self, username: str, email: str, password: str, display_name: str,
                       user_agent: str = "") -> SessionTokens:
        username = normalize_username(username)
        email = normalize_email(email)
        check_password(password)
        display_name = check_text("display_name", display_name.strip(), MAX_DISPLAY_NAME)
        user = User(id=self.ids.new_id_in_random_shard(), username=username, display_name=display_name)
        await self.repo.create_user(NewUser(user, email, await self.passwords.hash(password)))
        try:
            # Before the client hears of the account, so it can be followed at once.
            await self.members.set_account_privacy(user.id, user.is_private)
        except BaseException:
            # No account the graph does not know: undo it; the client gets the error and may retry.
            await self.repo.delete_user(user.id)
            raise
        created = (await self.repo.get_users([user.id]))[user.id]
        return await self._sign_in(created, user_agent)

    async def login(self, login: str, password: str, user_agent: str = "", totp_code: str = "",
                    recovery_code: str = "") -> SessionTokens:
        if not login.strip():
            raise InvalidArgument("username", "username is required")
        if not password:
            raise InvalidArgument("password", "password is required")
        name = login.strip().lower()
        user_id = None if CONTROL_RE.search(name) else await self.repo.user_id_for_login(name)
        if user_id is not None and self.attempts is not None:
            wait_s = await self.attempts.retry_after_s(user_id)
            if wait_s is not None:
                raise ResourceExhausted(
                    f"too many sign-ins for this account (PICTOR_RATE_LIMIT_SIGN_IN_ACCOUNT); "
                    f"try again in {wait_s} s", reason="RATE_LIMITED", retry_after_s=wait_s)
        stored = await self.repo.password_hash(user_id) if user_id is not None else None
        verified = await self.passwords.verify(stored, password)
        if not verified.ok or user_id is None or stored is None:
            raise Unauthenticated(BAD_LOGIN, reason="BAD_CREDENTIALS")
        # Only after the password, like the second factor: nothing is told to a guesser.
        user = await self.get_user(user_id)
        if user.suspended:
            raise suspended()
        # Only after the password: whether an account has a second factor is not told to a guesser.
        await self._second_factor_if_on(user_id, totp_code, recovery_code)
        if verified.rehashed is not None:
            # Made with older parameters: the new hash replaces it now that the password is known.
            await self.repo.replace_password_hash(user_id, stored, verified.rehashed)
        return await self._sign_in(user, user_agent)

    async def refresh(self, raw_token: str) -> SessionTokens:
        token = await self._check_refresh_token(raw_token, say_suspended=True)
        user = await self.get_user(token.user_id)
        if user.suspended:  # (its tokens were revoked with the suspension; this says why)
            raise suspended()
        successor, raw_successor = self._new_refresh_token(user.id, token.family_id)
        if token.used or not await self.repo.rotate_refresh_token(token.id, successor):
            # A spent token came back: someone holds a copy. Revoke the family, the successor of
            # whoever spent it first included (it was written with the spending).
            await self.repo.revoke_token_family(token.id, token.family_id)
            await self._revoke(session_id=token.family_id)
            raise Unauthenticated("refresh token was already used; sign in again", reason="REFRESH_TOKEN_REUSED")
        return self._tokens(user, token.family_id, raw_successor)

    # --- two-factor sign-in -----------------------------------------------------------

    async def two_factor(self, user_id: int) -> tuple[bool, int]:
        """(on, recovery codes left)."""
        state = await self.repo.two_factor(user_id)
        if state is None or not state.enabled:
            return False, 0
        return True, await self.repo.recovery_codes_left(user_id)

    async def set_up_two_factor(self, user_id: int) -> tuple[str, str]:
        """A new secret for the app: (secret, otpauth URI)."""
        user = await self.get_user(user_id)
        secret = totp.new_secret()
        if not await self.repo.set_pending_secret(user_id, secret):
            raise Conflict("two-factor sign-in is on already; turn it off first", reason="TWO_FACTOR_ENABLED")
        return secret, totp.otpauth_uri(secret, user.username)

    async def enable_two_factor(self, user_id: int, totp_code: str) -> list[str]:
        """On, once the code shows the app holds the secret; the recovery codes, shown this once."""
        state = await self.repo.two_factor(user_id)
        if state is not None and state.enabled:
            raise Conflict("two-factor sign-in is on already", reason="TWO_FACTOR_ENABLED")
        if state is None:
            raise FailedPrecondition("set it up first (POST /v1/users/me/two-factor:setup)",
                                     reason="TWO_FACTOR_NOT_SET_UP")
        step = totp.matching_step(state.secret, totp_code, time.time())
        if step is None:
            raise InvalidArgument("totp_code", "the code does not match the secret (check the app's clock)",
                                  reason="TOTP_INVALID")
        codes = [totp.recovery_code() for _ in range(RECOVERY_CODES)]
        if not await self.repo.enable_two_factor(user_id, state.secret, step, [totp.hash_recovery_code(c)
                                                                                for c in codes]):
            raise Conflict("two-factor sign-in changed meanwhile; set it up again", reason="TWO_FACTOR_CHANGED")
        return codes

    async def disable_two_factor(self, user_id: int, password: str, totp_code: str, recovery_code: str) -> None:
        verified = await self.passwords.verify(await self.repo.password_hash(user_id), password)
        if not verified.ok:
            raise PermissionDenied("the password is not right", reason="BAD_CREDENTIALS")
        state = await self.repo.two_factor(user_id)
        if state is None or not state.enabled:
            raise FailedPrecondition("two-factor sign-in is off", reason="TWO_FACTOR_OFF")
        await self._second_factor(user_id, state, totp_code, recovery_code)
        await self.repo.disable_two_factor(user_id)

    async def delete_account(self, user_id: int, password: str, totp_code: str, recovery_code: str) -> None:
        """With the password (and the second factor when it is on), the account goes at once; its
        account.deleted event has every owner erase the rest (services.common.erasure)."""
        if not password:
            raise InvalidArgument("password", "password is required")
        verified = await self.passwords.verify(await self.repo.password_hash(user_id), password)
        if not verified.ok:
            raise PermissionDenied("the password is not right", reason="BAD_CREDENTIALS")
        await self._second_factor_if_on(user_id, totp_code, recovery_code)
        await self.repo.delete_account(user_id, datetime.fromtimestamp(time.time() + self.username_grace_s, UTC))
        await self._revoke(user_id=user_id)

    async def _second_factor_if_on(self, user_id: int, totp_code: str, recovery_code: str) -> None:
        """With two-factor sign-in on, the code (or a recovery code) is required and spent."""
        state = await self.repo.two_factor(user_id)
        if state is not None and state.enabled:
            if not totp_code.strip() and not recovery_code.strip():
                raise Unauthenticated("two-factor sign-in is on: send totp_code, or a recovery_code",
                                      reason="TWO_FACTOR_REQUIRED")
            await self._second_factor(user_id, state, totp_code, recovery_code)

    async def _second_factor(self, user_id: int, state: TwoFactorState, totp_code: str, recovery_code: str) -> None:
        """The code (or a recovery code) spent, each good once; Unauthenticated otherwise."""
        if recovery_code.strip():
            if not await self.repo.use_recovery_code(user_id, totp.hash_recovery_code(recovery_code)):
                raise Unauthenticated("that recovery code is not valid, or was used", reason="RECOVERY_CODE_INVALID")
            return
        step = totp.matching_step(state.secret, totp_code, time.time(), after_step=state.last_step)
        if step is None or not await self.repo.accept_step(user_id, step):
            raise Unauthenticated("the code is not valid, or was used already", reason="TOTP_INVALID")

    async def sessions(self, user_id: int) -> list[SessionRecord]:
        return await self.repo.sessions(user_id)

    async def sign_out(self, user_id: int, session_id: int) -> None:
        if not await self.repo.revoke_session(user_id, session_id):
            raise NotFound(f"session {session_id} not found", reason="SESSION_NOT_FOUND")
        await self._revoke(session_id=session_id)

    async def revoke(self, raw_token: str) -> None:
        try:
            token = await self._check_refresh_token(raw_token)
        except Unauthenticated:
            return  # Revoking something that grants nothing succeeds.
        await self.repo.revoke_token_family(token.id, token.family_id)
        await self._revoke(session_id=token.family_id)

    async def _check_refresh_token(self, raw_token: str, *, say_suspended: bool = False) -> RefreshToken:
        """The stored token the raw one names; Unauthenticated unless it is valid. say_suspended: a
        revoked token of a suspended account says so (403 ACCOUNT_SUSPENDED) to whoever holds it."""
        if not raw_token.strip():
            raise InvalidArgument("refresh_token", "refresh_token is required")
        token_id, secret = _parse_refresh_token(raw_token)
        token = await self.repo.get_refresh_token(token_id)
        genuine = token is not None and hmac.compare_digest(token.secret_hash, _hash_secret(secret))
        if genuine and token.revoked and say_suspended and (await self.get_user(token.user_id)).suspended:
            raise suspended()
        if not genuine or token.revoked:
            raise Unauthenticated("refresh token is not valid", reason="REFRESH_TOKEN_INVALID")
        if token.expires_at < time.time():
            raise Unauthenticated("refresh token expired; sign in again", reason="REFRESH_TOKEN_EXPIRED")
        return token

    async def _sign_in(self, user: User, user_agent: str) -> SessionTokens:
        """A new session (a new refresh-token family, its first token's id)."""
        token, raw = self._new_refresh_token(user.id, family_id=None)
        await self.repo.add_refresh_token(token, user_agent[:MAX_USER_AGENT])
        return self._tokens(user, token.family_id, raw)

    def _new_refresh_token(self, user_id: int, family_id: int | None) -> tuple[RefreshToken, str]:
        """A token of the family (None: a new one), and what the client is given for it: "<id>.<secret>"."""
        token_id = self.ids.new_id(shard_of(user_id))
        secret = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
        token = RefreshToken(id=token_id, user_id=user_id, family_id=family_id or token_id,
                             secret_hash=_hash_secret(secret), expires_at=time.time() + self.refresh_ttl_s,
                             used=False, revoked=False)
        return token, f"{token_id}.{secret}"

    def _tokens(self, user: User, session_id: int, raw_refresh_token: str) -> SessionTokens:
        return SessionTokens(user, self.signer.sign(user.id, session_id=session_id), raw_refresh_token,
                             self.signer.ttl_s)

    async def get_user(self, user_id: int) -> User:
        user = (await self.repo.get_users([user_id])).get(user_id)
        if user is None:
            raise NotFound(f"user {user_id} not found", reason="USER_NOT_FOUND")
        return user

    async def view_user(self, viewer_id: int | None, user_id: int) -> User:
        """A profile as `viewer_id` (None: signed out) sees it: blocked either way reads as missing."""
        user = await self.get_user(user_id)
        if viewer_id == user_id:
            return user
        if user.suspended:
            raise NotFound(f"user {user_id} not found", reason="USER_NOT_FOUND")
        if not viewer_id:
            return user
        relation = await self.blocks.relationship(viewer_id, user_id)
        if relation.blocked:
            raise NotFound(f"user {user_id} not found", reason="USER_NOT_FOUND")
        return replace(user, viewer=relation)

    async def view_user_by_username(self, viewer_id: int | None, username: str) -> User:
        name = username.strip().lower()
        user_id = await self.repo.user_id_for_login(name) if USERNAME_RE.match(name) else None
        if user_id is None:
            raise NotFound(f"no user named {username!r}", reason="USER_NOT_FOUND")
        return await self.view_user(viewer_id, user_id)

    async def batch_get(self, user_ids: list[int]) -> list[User]:
        if len(user_ids) > MAX_BATCH:
            raise InvalidArgument("user_ids", f"at most {MAX_BATCH} ids per call")
        found = await self.repo.get_users(list(dict.fromkeys(user_ids)))
        return [found[i] for i in user_ids if i in found]

    async def emails(self, user_ids: list[int]) -> dict[int, str]:
        """For the mesh only (digests): each known user's email address."""
        if len(user_ids) > MAX_BATCH:
            raise InvalidArgument("user_ids", f"at most {MAX_BATCH} ids per call")
        return await self.repo.emails(list(dict.fromkeys(user_ids)))

    async def scan(self, shard: int, after_id: int, page_size: int) -> tuple[list[User], int]:
        """For the mesh (search's rebuild): a page of the shard's users and the id to go on after (0: done)."""
        size = check_scan(shard, page_size, self.ids.logical_shards, default=500, maximum=2000)
        users = await self.repo.scan(shard, after_id, size)
        return users, users[-1].id if len(users) == size else 0

    async def showing_activity(self, user_ids: list[int]) -> list[int]:
        """Which of the users show their activity status."""
        return [u.id for u in await self.batch_get(user_ids) if u.show_activity_status]

    async def update_profile(self, user_id: int, changes: dict[str, object]) -> User:
        changes = validate_profile_changes(changes)
        if not changes:
            return await self.get_user(user_id)
        if "avatar_media_id" in changes and self.avatars is None:
            raise FailedPrecondition("avatars cannot be set here", reason="AVATARS_UNAVAILABLE")
        if "avatar_media_id" not in changes and "is_private" not in changes:
            return await self._update(user_id, changes)
        # Media keeps the avatar's photo and the graph its own copy of is_private. One such change of
        # a user at a time, across every accounts process: two at once could leave media holding one
        # photo and the profile naming the other.
        async with self.repo.profile_lock(user_id):
            if "avatar_media_id" in changes:
                # Media first: it holds the new photo (and lets the old one go) before the profile names
                # it. Should the update below fail, the client's retry finds media done and completes it.
                await self.avatars.set_avatar(user_id, changes["avatar_media_id"] or 0)
            # The graph learns "private" before the change commits here and "public" after: whatever
            # fails in between, it errs on the private side and the client, told of the failure,
            # retries (both are idempotent).
            private = bool(changes["is_private"]) if "is_private" in changes else None
            if private is True:
                await self.members.set_account_privacy(user_id, True)
            user = await self._update(user_id, changes)
            if private is False:
                await self.members.set_account_privacy(user_id, False)
        return user

    async def _update(self, user_id: int, changes: dict[str, object]) -> User:
        user = await self.repo.update_profile(user_id, changes)
        if user is None:
            raise NotFound(f"user {user_id} not found", reason="USER_NOT_FOUND")
        return user


__all__ = ["AccountsService", "AlreadyExists", "SessionTokens", "User"]
