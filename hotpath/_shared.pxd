# cython: language_level=3, boundscheck=False, wraparound=False
"""Inline helpers the compiled kernels share (cimported, so nothing is called through Python)."""

from cpython cimport array
from cpython.buffer cimport PyObject_CheckBuffer
from libc.stdint cimport int64_t, uint64_t

cdef extern from *:
    """
    /* 2**64 / golden ratio: Fibonacci hashing spreads ids over a power-of-two table. */
    #define PICTOR_FIBONACCI_64 0x9E3779B97F4A7C15ULL
    """
    const uint64_t FIBONACCI_64 "PICTOR_FIBONACCI_64"


cdef inline const int64_t[::1] int64_view(object values):
    """An int64 view of a buffer; other iterables are copied into an array('q') first."""
    if not PyObject_CheckBuffer(values):
        values = array.array("q", values)
    return values


cdef inline const double[::1] double_view(object values):
    """A float64 view of a buffer; other iterables are copied into an array('d') first."""
    if not PyObject_CheckBuffer(values):
        values = array.array("d", values)
    return values


cdef inline const int64_t* int64_data(const int64_t[::1] view) noexcept nogil:
    return &view[0] if view.shape[0] > 0 else NULL


cdef inline const double* double_data(const double[::1] view) noexcept nogil:
    return &view[0] if view.shape[0] > 0 else NULL
