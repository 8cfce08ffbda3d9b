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


def test_the_pattern_catches_the_read_the_graph_used_to_make():
    assert USERS_TABLE.search('"SELECT id, is_private FROM {schema}.users WHERE id = ANY(%s)"')
    assert not USERS_TABLE.search('"SELECT user_id, is_private FROM {schema}.members"  # the users it knows')


@pytest.mark.parametrize("path", sorted(GRAPH.rglob("*.py")), ids=lambda p: p.name)
def test_graph_code_names_no_users_table(path):
    found = [f"{path.name}:{n}: {line.strip()}" for n, line in enumerate(path.read_text().splitlines(), 1)
             if USERS_TABLE.search(line)]
    assert found == []
