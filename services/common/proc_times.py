"""A process's parent and CPU seconds, read from /proc/<pid>/stat (Linux): for the benches and
`python -m loadtest.cpu_share`, which measure what a call costs in CPU, not only in time."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcTimes:
    parent: int
    cpu_s: float  # user + system, every thread
    children_cpu_s: float  # of the children it has reaped


def proc_times(pid: int) -> ProcTimes | None:
    """None when there is no such process (it may have ended meanwhile)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()  # the name may hold spaces
    except OSError:
        return None
    return ProcTimes(parent=int(fields[1]), cpu_s=(int(fields[11]) + int(fields[12])) / TICKS,  # utime, stime
                     children_cpu_s=(int(fields[13]) + int(fields[14])) / TICKS)  # cutime, cstime
