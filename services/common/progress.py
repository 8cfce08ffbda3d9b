"""Progress lines for the commands that run long: done, rate, and an estimate of what is left."""

from __future__ import annotations

import sys
import time


class Progress:
    """One phase's progress line: done, rate, and what is left by the share of work done."""

    def __init__(self, phase: str, total_units: int, out=sys.stderr) -> None:
        self.phase, self.total, self.out = phase, total_units, out
        self.started = time.monotonic()
        self.rows = 0
        self.units: float = 0
        self.partial = 0.0
        self.last = 0.0

    def advance(self, rows: int, units: float = 0, force: bool = False, partial: float = 0.0) -> None:
        """`units` finished; `partial`: how far into the next one (0..1), for the estimate."""
        self.rows += rows
        self.units += units
        self.partial = partial
        now = time.monotonic()
        if not force and now - self.last < 1.0:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-6)
        done = self.units + self.partial
        # Nothing done yet: no rate to tell what is left by.
        left = f"~{elapsed / done * (self.total - done):.0f} s left" if done else "time left not known yet"
        rows = f"{self.rows:,} rows, {self.rows / elapsed:,.0f}/s, " if self.rows else ""
        print(f"{self.phase}: {done:.1f}/{self.total} ({100 * done / max(self.total, 1):.0f}%), {rows}{left}",
              file=self.out, flush=True)

    def done(self) -> dict:
        self.advance(0, force=True)
        return {"rows": self.rows, "seconds": round(time.monotonic() - self.started, 1)}
