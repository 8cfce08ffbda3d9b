"""The selectors load the compiled kernels, and only PICTOR_PURE_PYTHON=1 changes that."""

from __future__ import annotations

import importlib
import importlib.machinery
import json
import sys

import pytest

from hotpath import _select
from hotpath._select import PURE_PYTHON_ENV, pure_python_forced

KERNELS = ("ids", "merge", "counters")

compiled_expected = pytest.mark.skipif(
    pure_python_forced(), reason=f"{PURE_PYTHON_ENV}=1 selects the references"
)
reference_expected = pytest.mark.skipif(
    not pure_python_forced(), reason=f"only with {PURE_PYTHON_ENV}=1"
)


@compiled_expected
@pytest.mark.parametrize("kernel", KERNELS)
def test_selector_exposes_the_compiled_kernel(kernel: str) -> None:
    assert importlib.import_module(f"hotpath.{kernel}").IMPLEMENTATION == "c"


@compiled_expected
@pytest.mark.parametrize("kernel", KERNELS)
def test_selected_compiled_kernel_is_an_extension_module(kernel: str) -> None:
    selected = importlib.import_module(f"hotpath.{kernel}")._implementation_module
    assert selected.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


@reference_expected
@pytest.mark.parametrize("kernel", KERNELS)
def test_switch_makes_the_selector_expose_the_reference(kernel: str) -> None:
    assert importlib.import_module(f"hotpath.{kernel}").IMPLEMENTATION == "py"


@pytest.mark.parametrize("kernel", KERNELS)
def test_switch_set_to_1_loads_the_reference(kernel: str) -> None:
    module, implementation = _select.load(kernel, {PURE_PYTHON_ENV: "1"})
    assert (module.__name__, implementation) == (f"hotpath._{kernel}_py", "py")


@pytest.mark.parametrize("value", ["", "0"])
def test_switch_unset_or_0_loads_the_compiled_kernel(value: str) -> None:
    try:
        module, implementation = _select.load("ids", {PURE_PYTHON_ENV: value})
    except ImportError:
        if pure_python_forced():
            pytest.skip("the compiled kernels are not built (PICTOR_PURE_PYTHON=1)")
        raise
    assert (module.__name__, implementation) == ("hotpath._ids", "c")


def test_missing_extension_raises_instead_of_falling_back(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import fail as an unbuilt extension would.
    monkeypatch.setitem(sys.modules, "hotpath._ids", None)
    with pytest.raises(ImportError, match="build_ext"):
        _select.load("ids", {})


def test_bench_line_is_json_with_the_agreed_fields(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        from hotpath import bench  # it imports both implementations
    except ImportError:
        if pure_python_forced():
            pytest.skip("the compiled kernels are not built (PICTOR_PURE_PYTHON=1)")
        raise
    bench.emit("kernel.op", "call", compiled_s=1e-6, reference_s=3e-5)
    line = json.loads(capsys.readouterr().out)
    assert (line["op"], line["compiled_per_s"], line["reference_per_s"], line["ratio"]) == (
        "kernel.op",
        1_000_000,
        33_333,
        30.0,
    )
