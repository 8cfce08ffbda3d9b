"""The digest's claim against the real PostgreSQL: it picks the users of a shard with unread
notifications who are labelled with one of the classes asked for, and the labels it keeps are the
newest the classifier gave, whatever order its events came in.

The stack's own digest worker claims PASSIVE users; these tests ask for INACTIVE ones, so it
never takes theirs first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.common.db import shard_schema
from services.notifications.repository import PostgresNotificationStore

SHARD = 3
DAY_S = 86_400


async def with_unread(db, user_id: int) -> None:
    """A LIKE line with one unread act, as the notifier leaves it."""
    now = datetime.now(UTC)
    async with db.for_shard(SHARD).connection() as conn:
        await conn.execute(
            f"INSERT INTO {shard_schema(SHARD)}.notification_groups (user_id, group_key, thread, type, opened_at, "
            "latest_at, notification_count, actor_count, unread_count) VALUES (%s, 'like:1', 'like:1', 'LIKE', "
            "%s, %s, 1, 1, 1)", (user_id, now, now))


async def claimed(store: PostgresNotificationStore, classes: list[str]) -> set[int]:
    return {user_id for user_id, _ in await store.claim_digests(SHARD, 0, DAY_S, classes, 1000)}


async def test_only_users_labelled_with_a_class_asked_for_are_claimed_and_only_once_a_day(db, ids):
    """A user never labelled is INACTIVE, as the classifier has it."""
    store = PostgresNotificationStore(db)
    inactive, popular, active, unlabelled = (ids.new_id(SHARD) for _ in range(4))
    now = datetime.now(UTC)
    for user_id in (inactive, popular, active, unlabelled):
        await with_unread(db, user_id)
    await store.record_classes(inactive, ["INACTIVE"], now)
    await store.record_classes(popular, ["INACTIVE", "POPULAR"], now)
    await store.record_classes(active, ["ACTIVE"], now)
    mine = {inactive, popular, active, unlabelled}
    assert await claimed(store, ["INACTIVE"]) & mine == {inactive, popular, unlabelled}
    assert await claimed(store, ["INACTIVE"]) & mine == set()


async def test_labels_given_earlier_do_not_override_newer_ones_that_came_first(db, ids):
    store = PostgresNotificationStore(db)
    user_id = ids.new_id(SHARD)
    await with_unread(db, user_id)
    now = datetime.now(UTC)
    await store.record_classes(user_id, ["ACTIVE"], now)
    await store.record_classes(user_id, ["INACTIVE"], now - timedelta(seconds=1))
    assert user_id not in await claimed(store, ["INACTIVE"])
    await store.record_classes(user_id, ["INACTIVE"], now + timedelta(seconds=1))
    assert user_id in await claimed(store, ["INACTIVE"])
