"""Accounts' part of an account's erasure (services.common.erasure): the account.deleted event's
own writer makes sure the row, the devices, the email and the username's link are gone (they
went with DeleteMe already; this repeats it harmlessly, and finishes a deletion whose global
step failed). The username stays held by nobody until its grace period ends."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from services.accounts.repository import PostgresAccountsRepository
from services.common.config import env_float

DEFAULT_GRACE_DAYS = 30.0


def username_grace_s() -> float:
    """PICTOR_USERNAME_GRACE_DAYS (default 30; fractions allowed, for tests): how long a deleted
    account's username stays taken."""
    days = env_float("PICTOR_USERNAME_GRACE_DAYS", DEFAULT_GRACE_DAYS)
    if days < 0:
        raise SystemExit(f"PICTOR_USERNAME_GRACE_DAYS must not be negative, got {days!r}")
    return days * 86400


@dataclass
class AccountsEraser:
    repo: PostgresAccountsRepository
    grace_s: float

    # Where the data exports live (services.accounts.exports): the user's archives go too (their
    # export rows went with the user row).
    export_root: Path | None = None

    async def erase_user(self, user_id: int) -> None:
        await self.repo.delete_account(user_id, datetime.fromtimestamp(time.time() + self.grace_s, UTC))
        if self.export_root is not None:
            shutil.rmtree(self.export_root / str(user_id), ignore_errors=True)
