"""services.common.proc_times against this very process and a child of it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from services.common.proc_times import proc_times


def test_a_process_reads_its_parent_and_the_cpu_it_used():
    before, began = proc_times(os.getpid()), time.process_time()
    while time.process_time() - began < 0.3:
        pass
    after, ended = proc_times(os.getpid()), time.process_time()
    assert before is not None and after is not None and before.parent == os.getppid()
    assert after.cpu_s - before.cpu_s == pytest.approx(ended - began, abs=0.05)  # the kernel's count, every thread


def test_a_reaped_childs_cpu_counts_as_its_parents_childrens():
    before = proc_times(os.getpid())
    subprocess.run([sys.executable, "-c", "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"],
                   check=True)
    after = proc_times(os.getpid())
    assert before is not None and after is not None
    assert after.children_cpu_s - before.children_cpu_s >= 0.2


def test_no_such_process_is_none():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid names no process now
    assert proc_times(child.pid) is None
