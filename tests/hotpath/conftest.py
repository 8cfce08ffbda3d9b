"""Both implementations of every kernel: a test that takes ``ids_impl`` (``merge_impl``,
``counters_impl``) runs once with the reference (id ``py``) and once with the compiled
module (id ``c``); ``ids_pair`` (...) gives ``(reference, compiled)`` to compare them.

With PICTOR_PURE_PYTHON=1 and no extensions built, the compiled cases are skipped;
otherwise a missing extension is an error, never a silent skip.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from hotpath._select import pure_python_forced

IMPLEMENTATIONS = ("py", "c")


def load_implementation(kernel: str, implementation: str) -> ModuleType:
    if implementation == "py":
        return importlib.import_module(f"hotpath._{kernel}_py")
    try:
        return importlib.import_module(f"hotpath._{kernel}")
    except ImportError:
        if pure_python_forced():
            pytest.skip("the compiled kernels are not built (PICTOR_PURE_PYTHON=1)")
        raise


def _each_implementation(kernel: str):
    @pytest.fixture(name=f"{kernel}_impl", scope="session", params=IMPLEMENTATIONS)
    def implementation(request: pytest.FixtureRequest) -> ModuleType:
        return load_implementation(kernel, request.param)

    return implementation


def _both_implementations(kernel: str):
    @pytest.fixture(name=f"{kernel}_pair", scope="session")
    def pair() -> tuple[ModuleType, ModuleType]:
        return load_implementation(kernel, "py"), load_implementation(kernel, "c")

    return pair


ids_impl = _each_implementation("ids")
merge_impl = _each_implementation("merge")
counters_impl = _each_implementation("counters")
ids_pair = _both_implementations("ids")
merge_pair = _both_implementations("merge")
counters_pair = _both_implementations("counters")
