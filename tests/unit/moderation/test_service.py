"""Moderation's rules (ModerationService) with in-memory fakes: what a report needs, who may act, and
which event an action hands to the owners."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.common.errors import InvalidArgument, NotFound, PermissionDenied
from services.common.ids import IdAllocator
from services.common.pagination import encode_token
from services.moderation.events import ACCOUNT_SUSPENDED, CONTENT_HIDDEN
from services.moderation.service import (
    ACCOUNT,
    DISMISS,
    HIDE,
    SUSPEND,
    AuditEntry,
    ModerationService,
    OwnerEvent,
    Report,
)

POST = 1
MODERATOR, REPORTER, AUTHOR = 11, 12, 13


class Repo:
    def __init__(self) -> None:
        self.moderators = {MODERATOR}
        self.reports: list[Report] = []
        self.acted: list[tuple[AuditEntry, str, OwnerEvent | None]] = []

    async def is_moderator(self, user_id: int) -> bool:
        return user_id in self.moderators

    async def add_report(self, report: Report) -> Report:
        self.reports.append(report)
        return report

    async def act(self, entry: AuditEntry, status: str, event: OwnerEvent | None) -> AuditEntry | None:
        if not any(r.target_id == entry.target_id for r in self.reports):
            return None
        self.acted.append((entry, status, event))
        return replace(entry, owner_id=AUTHOR, reports_closed=1)


class Targets:
    """The reporter sees post 500 (AUTHOR's) and account AUTHOR; nothing else."""

    async def owner(self, viewer_id: int, target_type: int, target_id: int) -> int | None:
        return {(POST, 500): AUTHOR, (ACCOUNT, AUTHOR): AUTHOR}.get((target_type, target_id))


@pytest.fixture
def repo() -> Repo:
    return Repo()


@pytest.fixture
def service(repo: Repo) -> ModerationService:
    return ModerationService(repo, IdAllocator(8), Targets())  # type: ignore[arg-type]


async def test_a_report_of_what_the_reporter_sees_keeps_its_owner(service, repo):
    report = await service.report(REPORTER, POST, 500, 1, "  spam  ")
    assert (report.owner_id, report.note, report.status) == (AUTHOR, "spam", "OPEN")


async def test_a_report_of_what_the_reporter_cannot_see_is_not_found(service):
    with pytest.raises(NotFound) as raised:
        await service.report(REPORTER, POST, 501, 1, "")
    assert raised.value.reason == "TARGET_NOT_FOUND"


@pytest.mark.parametrize("target_type,target_id,reason,field", [
    (0, 500, 1, "target_type"), (9, 500, 1, "target_type"), (POST, 0, 1, "target_id"),
    (POST, 500, 0, "reason"), (POST, 500, 10, "reason"), (ACCOUNT, REPORTER, 1, "target_id"),
])
async def test_bad_report_input_names_the_field(service, target_type, target_id, reason, field):
    with pytest.raises(InvalidArgument) as raised:
        await service.report(REPORTER, target_type, target_id, reason, "")
    assert raised.value.field == field


async def test_only_a_moderator_may_act_and_bad_input_is_refused_first(service, repo):
    await service.report(REPORTER, POST, 500, 1, "")
    with pytest.raises(PermissionDenied):
        await service.act(REPORTER, POST, 500, DISMISS, "")
    with pytest.raises(InvalidArgument):
        await service.act(REPORTER, POST, 500, 0, "")
    assert repo.acted == []


async def test_hiding_an_account_is_refused_suspending_it_names_its_owner(service, repo):
    await service.report(REPORTER, ACCOUNT, AUTHOR, 8, "")
    with pytest.raises(InvalidArgument):
        await service.act(MODERATOR, ACCOUNT, AUTHOR, HIDE, "")
    entry = await service.act(MODERATOR, ACCOUNT, AUTHOR, SUSPEND, "")
    _, status, event = repo.acted[-1]
    assert (entry.owner_id, status, event.type) == (AUTHOR, "ACTIONED", ACCOUNT_SUSPENDED)


async def test_hide_hands_the_owners_a_content_hidden_event_and_dismiss_none(service, repo):
    await service.report(REPORTER, POST, 500, 1, "")
    await service.act(MODERATOR, POST, 500, HIDE, "")
    await service.act(MODERATOR, POST, 500, DISMISS, "")
    (_, hidden_status, hidden), (_, dismissed_status, dismissed) = repo.acted
    assert (hidden_status, hidden.type, hidden.data["target_type"]) == ("ACTIONED", CONTENT_HIDDEN, "post")
    assert (dismissed_status, dismissed) == ("DISMISSED", None)


async def test_acting_on_a_target_without_an_open_report_is_not_found(service):
    with pytest.raises(NotFound) as raised:
        await service.act(MODERATOR, POST, 777, DISMISS, "")
    assert raised.value.reason == "REPORT_NOT_FOUND"


async def test_the_queue_refuses_a_token_of_another_listing(service):
    with pytest.raises(InvalidArgument) as raised:
        await service.queue(MODERATOR, 10, encode_token("moderation-audit", before=5))
    assert raised.value.reason == "INVALID_PAGE_TOKEN"
