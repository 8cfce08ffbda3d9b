"""The fault suite's code, exercised on a short run (CI): a worker and the gateway killed under load.

Those two because no acknowledged write and no event depends on them: the
figures must be zero on every run. Killing a service or a store can lose an
event published after its commit until the transactional outbox lands (see
docs/RELIABILITY.md), which the full `make faults` shows.
"""

from __future__ import annotations

import pytest

from tests import faults

pytestmark = pytest.mark.e2e


def test_a_short_fault_run_loses_no_acknowledged_write_and_answers_no_5xx_but_503(tmp_path):
    lines: list[str] = []
    results = faults.run(["fanout-1", "envoy"], before_s=1.5, after_s=1.5, threads=2, rate=4,
                         data_dir=tmp_path / "faults", report=lines.append)
    assert [r.target for r in results] == ["fanout-1", "envoy", faults.WHOLE_RUN]
    for result in results:
        assert sum(result.acknowledged.values()) > 0, result.line()
        assert not result.failed, "\n".join(lines)
    assert results[1].tally.refused > 0, "the gateway was down for a while"
