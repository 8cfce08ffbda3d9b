"""In-memory stand-ins for engagement's storage and its neighbours in the mesh."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from services.engagement.service import Comment, Counts, Entry

_clock = itertools.count()


def _now() -> datetime:
    # Strictly increasing, so "newest first" is well defined.
    return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=next(_clock))


class FakeRepository:
    """Records the events the real one writes to the outbox in `events`."""

    def __init__(self, events: FakeEvents) -> None:
        self.events = events
        self.likes: dict[tuple[int, int], datetime] = {}
        self.saves: dict[tuple[int, int], datetime] = {}
        self.comment_rows: dict[int, Comment] = {}
        self.durable: dict[int, Counts] = {}
        self.state_reads = 0  # reads of a viewer's likes or saves

    async def like(self, post_id: int, user_id: int, author_id: int) -> bool:
        if (post_id, user_id) in self.likes:
            return False
        self.likes[(post_id, user_id)] = _now()
        self.events.write("like", post_id=post_id, user_id=user_id, author_id=author_id)
        return True

    async def unlike(self, post_id: int, user_id: int, author_id: int) -> bool:
        if self.likes.pop((post_id, user_id), None) is None:
            return False
        self.events.write("unlike", post_id=post_id, user_id=user_id, author_id=author_id)
        return True

    async def likers(self, post_id, limit, after):
        rows = sorted(((t, u) for (p, u), t in self.likes.items() if p == post_id), reverse=True)
        if after is not None:
            rows = [r for r in rows if r < after]
        return [Entry(u, t) for t, u in rows[:limit]]

    async def save(self, user_id: int, post_id: int) -> bool:
        if (user_id, post_id) in self.saves:
            return False
        self.saves[(user_id, post_id)] = _now()
        return True

    async def unsave(self, user_id: int, post_id: int) -> bool:
        return self.saves.pop((user_id, post_id), None) is not None

    async def saved(self, user_id, limit, after):
        rows = sorted(((t, p) for (u, p), t in self.saves.items() if u == user_id), reverse=True)
        if after is not None:
            rows = [r for r in rows if r < after]
        return [Entry(p, t) for t, p in rows[:limit]]

    async def saved_among(self, user_id, post_ids):
        self.state_reads += 1
        return {p for p in post_ids if (user_id, p) in self.saves}

    async def add_comment(self, comment: Comment, post_author_id: int) -> Comment | None:
        if comment.parent_id:
            parent = self.comment_rows.get(comment.parent_id)
            if parent is None:
                return None
            self.comment_rows[parent.id] = replace(parent, reply_count=parent.reply_count + 1)
        stored = replace(comment, created_at=_now())
        self.comment_rows[comment.id] = stored
        self.events.write("comment", post_id=comment.post_id, user_id=comment.author_id, author_id=post_author_id,
                          comment_id=comment.id, parent_comment_id=comment.parent_id, mentions=comment.mentions)
        return stored

    async def get_comment(self, comment_id):
        return self.comment_rows.get(comment_id)

    async def comments(self, post_id, newest_first, limit, after_id):
        rows = sorted((c for c in self.comment_rows.values() if c.post_id == post_id and not c.parent_id),
                      key=lambda c: c.id, reverse=newest_first)
        if after_id is not None:
            rows = [c for c in rows if (c.id < after_id if newest_first else c.id > after_id)]
        return rows[:limit]

    async def replies(self, parent_id, limit, after_id):
        rows = sorted((c for c in self.comment_rows.values() if c.parent_id == parent_id), key=lambda c: c.id)
        return [c for c in rows if c.id > (after_id or 0)][:limit]

    async def delete_comment(self, comment: Comment, deleted_by: int, post_author_id: int) -> int:
        if self.comment_rows.pop(comment.id, None) is None:
            return 0
        replies = [c.id for c in self.comment_rows.values() if c.parent_id == comment.id]
        for reply in replies:
            del self.comment_rows[reply]
        if comment.parent_id in self.comment_rows:
            parent = self.comment_rows[comment.parent_id]
            self.comment_rows[parent.id] = replace(parent, reply_count=parent.reply_count - 1)
        self.events.write("comment.deleted", post_id=comment.post_id, comment_id=comment.id, user_id=deleted_by,
                          author_id=post_author_id, removed=1 + len(replies))
        return 1 + len(replies)

    async def counts(self, post_ids, liked_by=0):
        self.state_reads += bool(liked_by)
        return ({p: self.durable.get(p, Counts()) for p in post_ids},
                {p for p in post_ids if (p, liked_by) in self.likes})


class FakeViewerStates:
    """services.engagement.viewer_state over a dict, with Redis's HSETNX / HSET / HDEL meanings."""

    def __init__(self) -> None:
        self.fields: dict[tuple[int, str, int], bool] = {}

    async def known(self, viewer_id, post_ids):
        found = [{p: self.fields[(viewer_id, kind, p)] for p in post_ids if (viewer_id, kind, p) in self.fields}
                 for kind in ("l", "s")]
        return found[0], found[1]

    async def fill(self, viewer_id, liked, saved):
        for kind, answers in (("l", liked), ("s", saved)):
            for post_id, yes in answers.items():
                self.fields.setdefault((viewer_id, kind, post_id), yes)

    async def forget(self, viewer_id, kind, post_id):
        self.fields.pop((viewer_id, kind, post_id), None)

    async def set(self, viewer_id, kind, post_id, yes):
        self.fields[(viewer_id, kind, post_id)] = yes


class FakeCounters:
    async def add(self, post_id: int, kind: str, delta: int) -> None:
        self.deltas.append((post_id, kind, delta))

    def __init__(self, repo: FakeRepository) -> None:
        self.repo = repo
        self.deltas: list[tuple[int, str, int]] = []

    async def current(self, post_ids, durable=None):
        durable = durable if durable is not None else self.repo.durable
        totals = {p: durable.get(p, Counts()) for p in post_ids}
        for post_id, kind, delta in self.deltas:
            if post_id in totals:
                totals[post_id] += Counts(delta, 0) if kind == "likes" else Counts(0, delta)
        return totals

    def total(self, post_id: int, kind: str) -> int:
        return sum(d for p, k, d in self.deltas if p == post_id and k == kind)


@dataclass
class FakePosts:
    """post_id -> author_id, and who may see what."""

    authors: dict[int, int] = field(default_factory=dict)
    hidden_from: dict[int, set[int]] = field(default_factory=dict)  # post -> viewers who may not see it
    calls: int = 0

    async def authors_visible_to(self, viewer_id, post_ids):
        self.calls += 1
        return {p: self.authors[p] for p in post_ids
                if p in self.authors and viewer_id not in self.hidden_from.get(p, set())}


@dataclass
class FakeGraph:
    blocks: set[frozenset[int]] = field(default_factory=set)

    async def blocked_either_way(self, viewer_id, user_ids):
        return {u for u in user_ids if frozenset((viewer_id, u)) in self.blocks}


@dataclass
class FakeEvents:
    """The outbox: what the repository wrote, as (topic, type, data)."""

    published: list[tuple[str, str, dict]] = field(default_factory=list)

    def write(self, type, **data):
        self.published.append(("engagement", type, data))
