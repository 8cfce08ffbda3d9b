"""The fault suite's code, exercised on a short run: one service and Redis killed under load."""

from __future__ import annotations

import pytest

from tests import faults

pytestmark = pytest.mark.e2e


def test_a_short_fault_run_loses_no_acknowledged_write_and_answers_no_5xx_but_503(tmp_path):
    lines: list[str] = []
    results = faults.run(["posts", "redis"], before_s=1.5, after_s=1.5, threads=2, rate=4,
                         data_dir=tmp_path / "faults", report=lines.append)
    assert [r.target for r in results] == ["posts", "redis", faults.WHOLE_RUN]
    for result in results:
        assert sum(result.acknowledged.values()) > 0, result.line()
        assert not result.failed, "\n".join(lines)
