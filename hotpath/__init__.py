"""Compiled kernels for Pictor's hot paths.

Each kernel K has three modules:

- ``hotpath/_K.pyx``: the Cython implementation, built by ``setup.py build_ext --inplace``;
- ``hotpath/_K_py.py``: the pure-Python reference with the same interface;
- ``hotpath/K.py``: the selector that services import. It loads the compiled module and
  exposes ``IMPLEMENTATION = "c"``; with ``PICTOR_PURE_PYTHON=1`` it loads the reference
  and exposes ``IMPLEMENTATION = "py"``.

The kernels are ``ids`` (sharded 64-bit post ids), ``merge`` (feed merge-ranking) and
``counters`` (like/comment counter aggregation). ``python -m hotpath.bench`` compares the
two implementations of each.
"""
