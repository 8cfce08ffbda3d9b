# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled implementation of ``hotpath.ids`` (see that module for the layout and API).

The generator's rules live in ``try_issue``, a nogil step function over a plain C struct:
given one clock reading it issues an id or says why it cannot yet. The drivers around it
only read the clock (C's CLOCK_REALTIME, or an injected Python callable) and sleep.
"""

from cpython cimport array
from cpython.pythread cimport (
    NOWAIT_LOCK,
    WAIT_LOCK,
    PyThread_acquire_lock,
    PyThread_allocate_lock,
    PyThread_free_lock,
    PyThread_release_lock,
    PyThread_type_lock,
)
from libc.stdint cimport int64_t
from posix.time cimport CLOCK_REALTIME, clock_gettime, nanosleep, timespec

import array
import operator

from hotpath import _ids_common
from hotpath._ids_common import (
    ClockMovedBackwardsError,
    DecodedId,
    checked_generator_args,
    low_bits_layout,
    timestamp_out_of_range,
)

# The layout, read once from the shared Python constants (one source of truth).
cdef int64_t EPOCH_MS = _ids_common.EPOCH_MS
cdef int64_t SEQUENCE_BITS = _ids_common.SEQUENCE_BITS
cdef int64_t TIMESTAMP_SHIFT = _ids_common.TIMESTAMP_SHIFT
cdef int64_t MAX_SHARD = _ids_common.MAX_SHARD
cdef int64_t MAX_SEQUENCE = _ids_common.MAX_SEQUENCE
cdef int64_t MAX_TIMESTAMP_OFFSET_MS = _ids_common.MAX_TIMESTAMP_OFFSET_MS

cdef array.array ID_ARRAY_TEMPLATE = array.array("q")


cdef enum Step:
    ISSUED
    RETRY  # read the clock again, after sleeping state.sleep_ms when that is > 0
    CLOCK_BEHIND  # the clock stays behind for longer than the generator may wait
    OUT_OF_RANGE  # the clock reads a time the layout cannot represent


cdef struct IdState:
    int64_t shard_field
    int64_t max_counter  # the counter's largest value within one millisecond
    int64_t counter_shift  # where the counter sits in the 10 low bits (above the worker)
    int64_t worker_field
    int64_t max_wait_ms
    int64_t last_ms
    int64_t sequence
    int64_t waited_ms  # slept so far for the id being issued
    int64_t sleep_ms  # set by RETRY
    int64_t behind_ms  # set by CLOCK_BEHIND


cdef inline int64_t realtime_ms() noexcept nogil:
    cdef timespec now
    clock_gettime(CLOCK_REALTIME, &now)
    return <int64_t>now.tv_sec * 1000 + now.tv_nsec // 1000000


cdef inline void sleep_ms(int64_t ms) noexcept nogil:
    cdef timespec duration
    duration.tv_sec = ms // 1000
    duration.tv_nsec = (ms % 1000) * 1000000
    nanosleep(&duration, NULL)


cdef inline Step try_issue(IdState* state, int64_t now, int64_t* issued) noexcept nogil:
    cdef int64_t behind, sequence
    state.sleep_ms = 0
    # NOTE: the range check comes first so that the subtractions below cannot overflow.
    if now < EPOCH_MS or now - EPOCH_MS > MAX_TIMESTAMP_OFFSET_MS:
        state.waited_ms = 0
        return OUT_OF_RANGE
    behind = state.last_ms - now
    if behind > 0:
        if state.waited_ms + behind > state.max_wait_ms:
            state.behind_ms = behind
            state.waited_ms = 0
            return CLOCK_BEHIND
        state.sleep_ms = behind
        state.waited_ms += behind
        return RETRY
    if behind == 0:
        if state.sequence == state.max_counter:
            return RETRY  # spin until the next millisecond
        sequence = state.sequence + 1
    else:
        sequence = 0
    state.last_ms = now
    state.sequence = sequence
    state.waited_ms = 0
    issued[0] = (((now - EPOCH_MS) << TIMESTAMP_SHIFT) | state.shard_field
                 | (sequence << state.counter_shift) | state.worker_field)
    return ISSUED


cdef inline Step issue_realtime(IdState* state, int64_t* issued) noexcept nogil:
    cdef Step step
    while True:
        step = try_issue(state, realtime_ms(), issued)
        if step != RETRY:
            return step
        if state.sleep_ms > 0:
            sleep_ms(state.sleep_ms)


cdef class IdGenerator:
    """Issues strictly increasing ids for one shard; safe to share between threads."""

    cdef readonly int shard
    cdef readonly object worker
    cdef object _clock
    cdef IdState _state
    cdef PyThread_type_lock _lock

    def __cinit__(
        self,
        shard,
        clock=None,
        max_backwards_wait_ms=_ids_common.DEFAULT_MAX_BACKWARDS_WAIT_MS,
        worker=None,
    ):
        shard, max_backwards_wait_ms = checked_generator_args(shard, max_backwards_wait_ms)
        max_counter, counter_shift, worker_field = low_bits_layout(worker)
        self.shard = shard
        self.worker = worker
        self._state.max_counter = max_counter
        self._state.counter_shift = counter_shift
        self._state.worker_field = worker_field
        self._clock = clock
        self._state.shard_field = <int64_t>shard << SEQUENCE_BITS
        self._state.max_wait_ms = max_backwards_wait_ms
        self._state.last_ms = 0
        self._state.sequence = 0
        self._state.waited_ms = 0
        self._lock = PyThread_allocate_lock()
        if self._lock == NULL:
            raise MemoryError()

    def __dealloc__(self):
        if self._lock != NULL:
            PyThread_free_lock(self._lock)

    @property
    def max_backwards_wait_ms(self):
        return self._state.max_wait_ms

    def next_id(self):
        cdef int64_t issued
        self._acquire()
        try:
            issued = self._issue()
        finally:
            PyThread_release_lock(self._lock)
        return issued

    def next_ids(self, n):
        """``n`` consecutive ids as ``array('q')``, issued under one lock acquisition."""
        cdef Py_ssize_t count = operator.index(n)
        cdef Py_ssize_t i = 0
        cdef Step step = ISSUED
        if count < 0:
            raise ValueError("n must be >= 0")
        cdef array.array ids = array.clone(ID_ARRAY_TEMPLATE, count, False)
        cdef int64_t* out = <int64_t*>ids.data.as_longlongs
        self._acquire()
        try:
            if self._clock is not None:
                for i in range(count):
                    out[i] = self._issue()
            else:
                with nogil:
                    while i < count:
                        step = issue_realtime(&self._state, &out[i])
                        if step != ISSUED:
                            break
                        i += 1
                if step != ISSUED:
                    raise self._error_for(step, realtime_ms())
        finally:
            PyThread_release_lock(self._lock)
        return ids

    cdef int _acquire(self) except -1:
        # NOTE: block only without the GIL: the holder may need the GIL (to call an
        # injected clock) before it can release the lock.
        if not PyThread_acquire_lock(self._lock, NOWAIT_LOCK):
            with nogil:
                PyThread_acquire_lock(self._lock, WAIT_LOCK)
        return 0

    cdef int64_t _issue(self) except -1:
        """Issue one id; the caller holds the lock."""
        cdef int64_t issued = 0
        cdef int64_t now
        cdef Step step
        if self._clock is None:
            now = realtime_ms()
            step = try_issue(&self._state, now, &issued)
            if step == RETRY:
                # Wait for the next millisecond (or out a backwards clock) without the GIL.
                with nogil:
                    if self._state.sleep_ms > 0:
                        sleep_ms(self._state.sleep_ms)
                    step = issue_realtime(&self._state, &issued)
                    now = realtime_ms()
        else:
            while True:
                now = self._clock()
                step = try_issue(&self._state, now, &issued)
                if step != RETRY:
                    break
                if self._state.sleep_ms > 0:
                    with nogil:
                        sleep_ms(self._state.sleep_ms)
        if step != ISSUED:
            raise self._error_for(step, now)
        return issued

    cdef object _error_for(self, Step step, int64_t now):
        if step == CLOCK_BEHIND:
            return ClockMovedBackwardsError(self._state.behind_ms, self._state.max_wait_ms)
        return timestamp_out_of_range(now)


cdef inline int check_id(int64_t post_id) except -1:
    if post_id < 0:
        raise ValueError(f"ids are non-negative, got {post_id}")
    return 0


def decode(int64_t post_id):
    check_id(post_id)
    return DecodedId(
        (post_id >> TIMESTAMP_SHIFT) + EPOCH_MS,
        (post_id >> SEQUENCE_BITS) & MAX_SHARD,
        post_id & MAX_SEQUENCE,
    )


def shard_of(int64_t post_id):
    check_id(post_id)
    return (post_id >> SEQUENCE_BITS) & MAX_SHARD


def min_id_for(int64_t timestamp_ms):
    if timestamp_ms < EPOCH_MS:
        return 0
    if timestamp_ms - EPOCH_MS > MAX_TIMESTAMP_OFFSET_MS:
        raise timestamp_out_of_range(timestamp_ms)
    return (timestamp_ms - EPOCH_MS) << TIMESTAMP_SHIFT
