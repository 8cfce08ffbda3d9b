"""The progress line of long commands (services.common.progress)."""

from __future__ import annotations

import io

from services.common.progress import Progress


def test_the_line_gives_the_time_left_once_something_is_done():
    out = io.StringIO()
    progress = Progress("copying tables", 4, out=out)
    progress.advance(0, 0, force=True)
    progress.advance(0, 2, force=True)
    first, second = out.getvalue().splitlines()
    assert first == "copying tables: 0.0/4 (0%), time left not known yet"
    assert second.startswith("copying tables: 2.0/4 (50%), ~") and second.endswith(" s left")


def test_rows_are_counted_only_when_there_are_some():
    out = io.StringIO()
    progress = Progress("rebuild", 10, out=out)
    progress.advance(500, 5, force=True)
    assert "500 rows" in out.getvalue()
    assert progress.done()["rows"] == 500
