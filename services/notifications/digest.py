"""Digest worker: `python -m services.notifications.digest` (WorkerSpec "digest").

Users with unread notifications, labelled with one of `PICTOR_DIGEST_CLASSES`
(PASSIVE: they visit but rarely act), no stream open for `PICTOR_DIGEST_AWAY_S`
(3600) and `email_digest` on get at most one email a day listing what they
missed, and only when something new came since the last one. Whether a
stream is open it learns from realtime's presence.changed events (topic
"presence"), and the labels from realtime's classifier (user.classified, topic
"classes"), both in consumer group "notifications-presence" and kept as its own
projection (notification_digests). A user it never heard of counts as away,
and as INACTIVE (the classifier's label for users no event named).
Every `PICTOR_DIGEST_INTERVAL_MS` (60000) it claims the users due, shard by
shard (the claim is the day's digest: two replicas never send two), and
sends each through SMTP at `PICTOR_SMTP_URL` (smtp://[user:password@]host:port);
without one, the digest goes to the log. A send that fails gives the claim back.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import unquote, urlsplit

from pictor.realtime.v1 import realtime_pb2

from services.common.clients import AccountsClient
from services.common.config import env_int, env_str, events_claim_idle_ms
from services.common.events import Consumer, Event
from services.common.server import Resources, run_worker, wait_for_stop
from services.notifications.adapters import People
from services.notifications.repository import PostgresNotificationStore
from services.notifications.service import Group

log = logging.getLogger(__name__)

GROUP = "notifications-presence"
TOPICS = ["presence", "classes"]
# The labels the classifier gives ("LIVE", "ACTIVE", "PASSIVE", "INACTIVE", "POPULAR").
CLASSES = tuple(value.name.removeprefix("USER_CLASS_") for value in realtime_pb2.UserClass.DESCRIPTOR.values
                if value.number)
# At most one digest per user in this many seconds.
PERIOD_S = 86_400
# Users claimed per shard and round.
BATCH = 100
# Lines of a digest.
SHOWN = 5

PHRASES = {
    "LIKE": "liked your post",
    "COMMENT": "commented on your post",
    "REPLY": "replied to your comment",
    "MENTION": "mentioned you",
    "FOLLOW": "started following you",
    "FOLLOW_REQUEST": "asked to follow you",
    "FOLLOW_ACCEPTED": "accepted your follow request",
}


@dataclass(frozen=True)
class DigestConfig:
    away_s: int = 3600
    interval_s: float = 60.0
    sender: str = "Pictor <notifications@pictor.localhost>"
    # Users labelled with any of these get digests.
    classes: tuple[str, ...] = ("PASSIVE",)

    @classmethod
    def from_env(cls) -> DigestConfig:
        return cls(away_s=env_int("PICTOR_DIGEST_AWAY_S", cls.away_s),
                   interval_s=env_int("PICTOR_DIGEST_INTERVAL_MS", int(cls.interval_s * 1000)) / 1000,
                   sender=env_str("PICTOR_DIGEST_FROM", cls.sender),
                   classes=parse_classes(env_str("PICTOR_DIGEST_CLASSES", ",".join(cls.classes))))


def parse_classes(raw: str) -> tuple[str, ...]:
    """"PASSIVE,INACTIVE" -> ("PASSIVE", "INACTIVE"); an unknown or missing class stops the worker."""
    given = tuple(c.strip().upper() for c in raw.split(",") if c.strip())
    unknown = [c for c in given if c not in CLASSES]
    if unknown or not given:
        raise SystemExit(f"PICTOR_DIGEST_CLASSES must name some of {', '.join(CLASSES)}, got {raw!r}")
    return given


def line(group: Group, names: dict[int, str]) -> str:
    """"ada and 12 others liked your post"."""
    who = [names.get(a, "someone") for a in group.actor_ids[:1]] or ["someone"]
    others = group.actor_count - 1
    if others > 0:
        who.append(f"{others} other{'s' if others > 1 else ''}")
    return f"{' and '.join(who)} {PHRASES.get(group.type, 'did something')}"


def compose(username: str, unread: int, groups: list[Group], names: dict[int, str]) -> tuple[str, str]:
    """(subject, body) of a user's digest."""
    subject = f"You have {unread} unread notification{'s' if unread != 1 else ''} on Pictor"
    lines = [f"Hi {username},", "", "While you were away:", ""]
    lines += [f"- {line(g, names)}" for g in groups[:SHOWN]]
    if unread > SHOWN:
        lines.append(f"- and {unread - SHOWN} more")
    return subject, "\n".join(lines) + "\n"


class Mailer(Protocol):
    async def send(self, to: str, subject: str, body: str) -> None: ...


class SmtpMailer:
    def __init__(self, url: str, sender: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "smtp" or not parts.hostname:
            raise SystemExit(f"PICTOR_SMTP_URL must be smtp://[user:password@]host:port, got {url!r}")
        self.host, self.port = parts.hostname, parts.port or 25
        self.login = (unquote(parts.username), unquote(parts.password or "")) if parts.username else None
        self.sender = sender

    def _send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=10) as smtp:
            if self.login:
                smtp.starttls()
                smtp.login(*self.login)
            smtp.send_message(message)

    async def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, to, subject
        message.set_content(body)
        await asyncio.to_thread(self._send, message)


class LogMailer:
    """No SMTP configured: the digest goes to the log."""

    async def send(self, to: str, subject: str, body: str) -> None:
        log.info("digest for %s (no PICTOR_SMTP_URL): %s\n%s", to, subject, body)


class DigestStore(Protocol):
    async def record_presence(self, user_id: int, stream_open: bool, seen_at: datetime, at: datetime) -> None: ...
    async def record_classes(self, user_id: int, classes: list[str], at: datetime) -> None: ...
    # Claim up to `limit` users of the shard due a digest; (user_id, the claim it replaced).
    async def claim_digests(self, shard: int, away_s: int, period_s: int, classes: list[str],
                            limit: int) -> list[tuple[int, datetime | None]]: ...
    async def release_digest(self, user_id: int, previous: datetime | None) -> None: ...
    async def groups(self, user_id: int, limit: int, after: tuple[str, str] | None, types: list[str]
                     ) -> list[Group]: ...
    async def unread_count(self, user_id: int) -> int: ...


class Directory(Protocol):
    async def summaries(self, user_ids: list[int]) -> dict: ...
    async def emails(self, user_ids: list[int]) -> dict[int, str]: ...


@dataclass
class Digests:
    store: DigestStore
    people: Directory
    mailer: Mailer
    config: DigestConfig
    logical_shards: int

    async def handle(self, event: Event) -> None:
        """presence.changed: ONLINE or IDLE means a stream is open, OFFLINE that none is;
        user.classified: the user's labels."""
        if event.envelope is None:
            return
        at = datetime.fromtimestamp(event.occurred_at, UTC) if event.occurred_at else datetime.now(UTC)
        if event.type == "presence.changed":
            change = event.envelope.presence_changed
            seen = change.last_active_at.ToDatetime(tzinfo=UTC) if change.HasField("last_active_at") else at
            await self.store.record_presence(change.user_id, change.state in ("ONLINE", "IDLE"), seen, at)
        elif event.type == "user.classified":
            labels = event.envelope.user_classified
            await self.store.record_classes(labels.user_id, list(labels.classes), at)

    async def round(self) -> int:
        """Send the digests due now; how many were sent."""
        sent = 0
        for shard in range(self.logical_shards):
            claimed = await self.store.claim_digests(shard, self.config.away_s, PERIOD_S,
                                                     list(self.config.classes), BATCH)
            if not claimed:
                continue
            emails = await self.people.emails([user_id for user_id, _ in claimed])
            for user_id, previous in claimed:
                try:
                    if await self.send(user_id, emails.get(user_id, "")):
                        sent += 1
                except Exception:
                    log.exception("digest for user %d failed; giving the claim back", user_id)
                    await self.store.release_digest(user_id, previous)
        return sent

    async def send(self, user_id: int, email: str) -> bool:
        if not email:
            return False
        groups = [g for g in await self.store.groups(user_id, SHOWN * 4, None, []) if g.unread]
        unread = await self.store.unread_count(user_id)
        people = await self.people.summaries([user_id, *(a for g in groups for a in g.actor_ids)])
        names = {user: summary.username for user, summary in people.items()}
        subject, body = compose(names.get(user_id, "there"), unread, groups, names)
        await self.mailer.send(email, subject, body)
        log.info("digest sent to user %d (%d unread)", user_id, unread)
        return True

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.round()
            await wait_for_stop(stop, self.config.interval_s)


async def work(resources: Resources, stop: asyncio.Event) -> None:
    config = DigestConfig.from_env()
    smtp_url = env_str("PICTOR_SMTP_URL", "")
    mailer: Mailer = SmtpMailer(smtp_url, config.sender) if smtp_url else LogMailer()
    digests = Digests(PostgresNotificationStore(await resources.database(max_size=4)),
                      People(AccountsClient(resources.channels())), mailer, config,
                      resources.settings.logical_shards)
    consumer = Consumer(resources.redis(), GROUP, TOPICS, digests.handle, claim_idle_ms=events_claim_idle_ms())
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(consumer.run(stop))
        tasks.create_task(digests.run(stop))


def main() -> None:
    run_worker("digest", work)


if __name__ == "__main__":
    main()
