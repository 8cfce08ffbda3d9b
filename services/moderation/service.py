"""Moderation's rules: who may report what, the moderators' queue, their actions and the audit log.

No gRPC here. A report names a target the reporter can see (its owner says so: Targets); the
queue groups the open reports per target; an action closes every open report on its target,
writes its audit entry and, for HIDE and SUSPEND, the event the owners apply (all in one
transaction, in the target's shard: services.moderation.repository).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from services.common.errors import InvalidArgument, NotFound, PermissionDenied
from services.common.ids import IdAllocator, shard_of
from services.common.pagination import decode_token, encode_token, iso_time, page_size, positive_int64
from services.common.text import without_nul
from services.moderation import events

# pictor.moderation.v1.TargetType, by number: the name carried in events.
TARGET_TYPES = {1: "post", 2: "comment", 3: "story", 4: "message", 5: "account"}
ACCOUNT = 5
# pictor.moderation.v1.Reason: 1..9.
REASONS = range(1, 10)
# pictor.moderation.v1.Action.
HIDE, SUSPEND, DISMISS, GRANT, REVOKE = 1, 2, 3, 4, 5
MAX_NOTE = 1000
QUEUE_PAGE, QUEUE_MAX = 20, 100
AUDIT_PAGE, AUDIT_MAX = 50, 200
OPEN, ACTIONED, DISMISSED = "OPEN", "ACTIONED", "DISMISSED"


@dataclass(frozen=True)
class Report:
    id: int
    reporter_id: int
    target_type: int
    target_id: int
    owner_id: int
    reason: int
    note: str = ""
    status: str = OPEN


@dataclass(frozen=True)
class ReportedTarget:
    target_type: int
    target_id: int
    owner_id: int
    report_count: int
    reasons: dict[int, int]
    first_reported_at: datetime
    last_reported_at: datetime


@dataclass(frozen=True)
class AuditEntry:
    id: int
    actor_id: int
    action: int
    target_type: int
    target_id: int
    owner_id: int
    reports_closed: int = 0
    note: str = ""
    created_at: datetime | None = None


@dataclass(frozen=True)
class OwnerEvent:
    """The event an action hands to the owners: (type, payload)."""

    type: str
    data: dict[str, object] = field(default_factory=dict)


class ModerationRepository(Protocol):
    async def is_moderator(self, user_id: int) -> bool: ...
    async def set_moderator(self, user_id: int, on: bool, entry: AuditEntry) -> bool:
        """Grant or revoke, with its audit entry when it changed anything; whether it did."""
    async def add_report(self, report: Report) -> Report:
        """The new report, or the reporter's open one on that target (a repeat)."""
    async def reported_targets(self, after: tuple[str, int, int] | None, limit: int) -> list[ReportedTarget]: ...
    async def act(self, entry: AuditEntry, status: str, event: OwnerEvent | None) -> AuditEntry | None:
        """Close the target's open reports, write the entry (owner_id and reports_closed filled in from
        them) and the event; None when the target has no open report."""
    async def audit(self, before_id: int | None, limit: int) -> list[AuditEntry]: ...


class Targets(Protocol):
    async def owner(self, viewer_id: int, target_type: int, target_id: int) -> int | None:
        """Who wrote the target (the account itself for ACCOUNT) when the viewer can see it, else None."""


def check_note(note: str) -> str:
    if len(note) > MAX_NOTE:
        raise InvalidArgument("note", f"note must be at most {MAX_NOTE} characters")
    return without_nul("note", note).strip()


def check_target(target_type: int, target_id: int) -> None:
    if target_type not in TARGET_TYPES:
        raise InvalidArgument("target_type", "target_type must be one of TARGET_TYPE_POST, TARGET_TYPE_COMMENT, "
                              "TARGET_TYPE_STORY, TARGET_TYPE_MESSAGE, TARGET_TYPE_ACCOUNT",
                              reason="INVALID_TARGET_TYPE")
    if target_id <= 0:
        raise InvalidArgument("target_id", "target_id must be a positive id", reason="INVALID_ID")


def target_not_found(target_type: int, target_id: int) -> NotFound:
    return NotFound(f"{TARGET_TYPES[target_type]} {target_id} not found", reason="TARGET_NOT_FOUND")


@dataclass
class ModerationService:
    repo: ModerationRepository
    ids: IdAllocator
    targets: Targets

    def _holds(self, target_id: int) -> bool:
        return shard_of(target_id) < self.ids.logical_shards

    async def report(self, reporter_id: int, target_type: int, target_id: int, reason: int, note: str) -> Report:
        check_target(target_type, target_id)
        if reason not in REASONS:
            raise InvalidArgument("reason", "reason must be one of REASON_SPAM, REASON_NUDITY, REASON_HARASSMENT, "
                                  "REASON_HATE, REASON_VIOLENCE, REASON_SELF_HARM, REASON_INTELLECTUAL_PROPERTY, "
                                  "REASON_IMPERSONATION, REASON_OTHER", reason="INVALID_REASON")
        note = check_note(note)
        if target_type == ACCOUNT and target_id == reporter_id:
            raise InvalidArgument("target_id", "you cannot report your own account", reason="CANNOT_REPORT_SELF")
        owner = await self.targets.owner(reporter_id, target_type, target_id) if self._holds(target_id) else None
        if owner is None:
            raise target_not_found(target_type, target_id)
        return await self.repo.add_report(Report(self.ids.new_id(shard_of(target_id)), reporter_id, target_type,
                                                 target_id, owner, reason, note))

    async def is_moderator(self, user_id: int) -> bool:
        return user_id > 0 and await self.repo.is_moderator(user_id)

    async def require_moderator(self, user_id: int) -> None:
        if not await self.is_moderator(user_id):
            raise PermissionDenied("only moderators may do this", reason="NOT_A_MODERATOR")

    async def queue(self, moderator_id: int, size: int, token: str) -> tuple[list[ReportedTarget], str]:
        # Bad input is 400 whoever asks (it tells nothing); then the role.
        limit = page_size(size, default=QUEUE_PAGE, maximum=QUEUE_MAX)
        cursor = decode_token(token, "moderation-queue", at=iso_time, type=positive_int64, id=positive_int64)
        await self.require_moderator(moderator_id)
        after = (cursor["at"], cursor["type"], cursor["id"]) if cursor else None
        found = await self.repo.reported_targets(after, limit + 1)
        page = found[:limit]
        if len(found) <= limit:
            return page, ""
        last = page[-1]
        return page, encode_token("moderation-queue", at=last.first_reported_at.isoformat(),
                                  type=last.target_type, id=last.target_id)

    async def act(self, moderator_id: int, target_type: int, target_id: int, action: int, note: str) -> AuditEntry:
        check_target(target_type, target_id)
        if action not in (HIDE, SUSPEND, DISMISS):
            raise InvalidArgument("action", "action must be one of ACTION_HIDE, ACTION_SUSPEND, ACTION_DISMISS",
                                  reason="INVALID_ACTION")
        if action == HIDE and target_type == ACCOUNT:
            raise InvalidArgument("action", "an account is not hidden: suspend it (ACTION_SUSPEND)",
                                  reason="INVALID_ACTION")
        note = check_note(note)
        await self.require_moderator(moderator_id)
        if not self._holds(target_id):
            raise NotFound(f"no open report on {TARGET_TYPES[target_type]} {target_id}", reason="REPORT_NOT_FOUND")
        entry = AuditEntry(self.ids.new_id(shard_of(target_id)), moderator_id, action, target_type, target_id, 0,
                           note=note)
        event = None
        if action == HIDE:
            event = OwnerEvent(events.CONTENT_HIDDEN, {"target_type": TARGET_TYPES[target_type],
                                                       "target_id": target_id, "moderator_id": moderator_id})
        elif action == SUSPEND:
            event = OwnerEvent(events.ACCOUNT_SUSPENDED, {"moderator_id": moderator_id})
        done = await self.repo.act(entry, DISMISSED if action == DISMISS else ACTIONED, event)
        if done is None:
            raise NotFound(f"no open report on {TARGET_TYPES[target_type]} {target_id}", reason="REPORT_NOT_FOUND")
        return done

    async def audit(self, moderator_id: int, size: int, token: str) -> tuple[list[AuditEntry], str]:
        limit = page_size(size, default=AUDIT_PAGE, maximum=AUDIT_MAX)
        cursor = decode_token(token, "moderation-audit", before=positive_int64)
        await self.require_moderator(moderator_id)
        found = await self.repo.audit(cursor["before"] if cursor else None, limit + 1)
        page = found[:limit]
        return page, encode_token("moderation-audit", before=page[-1].id) if len(found) > limit else ""

    async def set_moderator(self, user_id: int, on: bool, note: str = "") -> bool:
        """The admin command's: grant (or revoke) the role; whether anything changed."""
        entry = AuditEntry(self.ids.new_id(shard_of(user_id)), 0, GRANT if on else REVOKE, ACCOUNT, user_id,
                           user_id, note=check_note(note))
        return await self.repo.set_moderator(user_id, on, entry)
