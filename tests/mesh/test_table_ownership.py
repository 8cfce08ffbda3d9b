"""One owner per table: the graph's code names no table of accounts'.

Accounts owns `users`; the graph keeps its own `members` (who exists, who is
private), told by accounts through SetAccountPrivacy. A query on `users` coming
back into services/graph would be a read (or write) of another service's rows.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

GRAPH = Path(__file__).resolve().parents[2] / "services" / "graph"
# `users` as a table: schema-qualified ({schema}.users, {_s(id)}.users, shard_0003.users) or after a
# keyword that takes one.
USERS_TABLE = re.compile(r"\.users\b|\b(?:FROM|JOIN|UPDATE|INTO|TABLE)\s+users\b", re.IGNORECASE)
USERS_READ = re.compile(r"\b(?:FROM|JOIN)\s+(?:\S*\.)?users\b", re.IGNORECASE)


def test_the_patterns_catch_the_read_the_graph_used_to_make():
    old_read = '"SELECT id, is_private FROM {schema}.users WHERE id = ANY(%s)"'
    assert USERS_TABLE.search(old_read) and USERS_READ.search(old_read)
    assert not USERS_TABLE.search('"SELECT user_id, is_private FROM {schema}.members"  # the users it knows')


def mentions(path: Path, pattern: re.Pattern[str]) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if pattern.search(line)]


@pytest.mark.parametrize("path", sorted(GRAPH.rglob("*.py")), ids=lambda p: p.name)
def test_graph_code_reads_no_users_table(path):
    assert mentions(path, USERS_READ) == []


@pytest.mark.parametrize("path", sorted(GRAPH.rglob("*.py")), ids=lambda p: p.name)
def test_graph_code_names_no_users_table(path):
    assert mentions(path, USERS_TABLE) == []
