from __future__ import annotations

from dataclasses import dataclass

import pytest

from services.common.ids import IdAllocator
from services.engagement.service import EngagementService
from tests.unit.engagement.fakes import FakeCounters, FakeEvents, FakeGraph, FakePosts, FakeRepository, FakeViewerStates

ALICE, BOB, CAROL = 1 << 23 | 1, 2 << 23 | 2, 3 << 23 | 3
POST = 4 << 23 | (1 << 10)  # Alice's post, in shard 1
OTHER_POST = 5 << 23 | (1 << 10)  # Bob's post


@dataclass
class World:
    service: EngagementService
    repo: FakeRepository
    counters: FakeCounters
    posts: FakePosts
    graph: FakeGraph
    events: FakeEvents


@pytest.fixture
def world() -> World:
    events = FakeEvents()
    repo = FakeRepository(events)
    counters = FakeCounters(repo)
    posts = FakePosts(authors={POST: ALICE, OTHER_POST: BOB})
    graph = FakeGraph()
    service = EngagementService(repo, counters, posts, graph, IdAllocator(8), FakeViewerStates())
    return World(service, repo, counters, posts, graph, events)
