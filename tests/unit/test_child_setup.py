"""The launcher's children are set up after exec (no `preexec_fn` in a threaded launcher)."""

from __future__ import annotations

import os
import subprocess
import sys

from services.mesh.embedded import set_up_child

REPORT = (
    "import ctypes, os\n"
    "sig = ctypes.c_int()\n"
    "ctypes.CDLL(None).prctl(2, ctypes.byref(sig))\n"  # PR_GET_PDEATHSIG
    "print(os.getpgrp() == os.getpid(), sig.value)\n"
)


def test_a_child_leads_its_own_process_group_and_dies_with_its_launcher():
    out = subprocess.run(set_up_child([sys.executable, "-c", REPORT]), capture_output=True, text=True,
                         timeout=30, check=True).stdout.split()
    assert out == ["True", "9"]  # SIGKILL


def test_a_child_whose_launcher_is_already_gone_never_runs_its_command(tmp_path):
    argv = set_up_child(["touch", str(tmp_path / "ran")])
    argv[5] = str(os.getpid() + 1_000_000)  # the launcher pid it expects is not its parent
    assert subprocess.run(argv, check=False, timeout=30).returncode == 70
    assert not (tmp_path / "ran").exists()


def test_the_command_is_found_on_path_and_keeps_its_arguments():
    out = subprocess.run(set_up_child(["printf", "%s|", "a b", ""]), capture_output=True, text=True,
                         timeout=30, check=True).stdout
    assert out == "a b||"
