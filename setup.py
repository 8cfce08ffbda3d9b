"""Builds the Cython kernels in hotpath/: ``python setup.py build_ext --inplace``.

Only the extensions are declared here; the project's metadata is in pyproject.toml.
The compiler directives live at the top of each .pyx file.
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

KERNELS = ("ids", "merge", "counters")

# NOTE: -ffp-contract=off keeps the compiler from fusing a*b+c into one FMA instruction,
# so the ranking scores come out bit-identical to the pure-Python reference's.
COMPILE_ARGS = ["-O3", "-ffp-contract=off"]

extensions = [
    Extension(
        f"hotpath._{kernel}",
        [f"hotpath/_{kernel}.pyx"],
        extra_compile_args=COMPILE_ARGS,
        libraries=["m"],
    )
    for kernel in KERNELS
]

# NOTE: naming the package turns off setuptools' automatic discovery, which refuses a
# flat layout with several top-level packages (hotpath, services, protos, ...).
setup(packages=["hotpath"], ext_modules=cythonize(extensions))
