"""Picks the compiled or the reference implementation of a kernel.

The compiled module is the default. ``PICTOR_PURE_PYTHON=1`` forces the pure-Python
reference (for machines without a C compiler, and for CI's second test run).

NOTE: there is no fallback. When the extension is not built, importing a selector raises
ImportError instead of quietly running the reference, which is 20x slower.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from types import ModuleType

PURE_PYTHON_ENV = "PICTOR_PURE_PYTHON"

COMPILED = "c"
REFERENCE = "py"


def pure_python_forced(environ: Mapping[str, str] = os.environ) -> bool:
    """True when the environment asks for the pure-Python references."""
    return environ.get(PURE_PYTHON_ENV, "") == "1"


def load(kernel: str, environ: Mapping[str, str] = os.environ) -> tuple[ModuleType, str]:
    """Return ``(module, implementation)`` for ``kernel`` ("ids", "merge", "counters")."""
    if pure_python_forced(environ):
        return importlib.import_module(f"hotpath._{kernel}_py"), REFERENCE
    try:
        return importlib.import_module(f"hotpath._{kernel}"), COMPILED
    except ImportError as error:
        raise ImportError(
            f"the compiled kernel hotpath._{kernel} is not built: run "
            f"`python setup.py build_ext --inplace`, or set {PURE_PYTHON_ENV}=1 "
            "to use the pure-Python reference"
        ) from error
