# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled implementation of ``hotpath.counters`` (see that module for the API).

``coalesce`` keeps an open-addressing hash table (linear probing, Fibonacci hashing, at
most half full, doubled as keys arrive) of ``{key, total}`` slots plus the slots in
first-seen order. Totals add with wrap-around; the rare overflow is counted in a carry
per slot (allocated on first use), so a total that leaves int64 and comes back is still
exact, like Python's ints in the reference.
"""

from cpython cimport array
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport calloc, free, malloc

from hotpath._shared cimport FIBONACCI_64, int64_data, int64_view

import array

cdef array.array INT64_ARRAY_TEMPLATE = array.array("q")

cdef extern from *:
    # GCC and Clang: the wrapped sum into *out, and whether it overflowed.
    bint add_overflows "__builtin_add_overflow"(int64_t a, int64_t b, int64_t* out) noexcept nogil
    void prefetch "__builtin_prefetch"(const void* address) noexcept nogil

# How many events ahead of the current one the loop prefetches slots.
cdef Py_ssize_t PREFETCH_DISTANCE = 16
# The table starts at a quarter of the events (many events per key is the point of
# coalescing), at most 2**22 slots (64 MiB); past that it grows as keys arrive.
cdef int MAX_INITIAL_BITS = 22


cdef struct Slot:
    int64_t key
    int64_t total  # wrapped to int64; the true total is total + carry * 2**64


cdef struct Table:
    Slot* slots
    uint64_t* used  # a bit per slot
    int64_t* carries  # NULL until a total first overflows
    Py_ssize_t* order  # slot indices in first-seen order
    Py_ssize_t count
    uint64_t mask
    int shift


cdef inline uint64_t home_slot(const Table* table, int64_t key) noexcept nogil:
    return (<uint64_t>key * FIBONACCI_64) >> table.shift


cdef inline bint is_used(const Table* table, uint64_t slot) noexcept nogil:
    return (table.used[slot >> 6] >> (slot & 63)) & 1


cdef int table_init(Table* table, int bits) noexcept nogil:
    cdef Py_ssize_t capacity = <Py_ssize_t>1 << bits
    table.mask = capacity - 1
    table.shift = 64 - bits
    table.count = 0
    table.carries = NULL
    table.slots = <Slot*>malloc(capacity * sizeof(Slot))
    table.used = <uint64_t*>calloc(capacity // 64 + 1, sizeof(uint64_t))
    # At most half full, so the order never outgrows half the capacity.
    table.order = <Py_ssize_t*>malloc((capacity // 2 + 1) * sizeof(Py_ssize_t))
    if table.slots == NULL or table.used == NULL or table.order == NULL:
        return -1
    return 0


cdef void table_free(Table* table) noexcept nogil:
    free(table.slots)
    free(table.used)
    free(table.carries)
    free(table.order)


cdef inline Py_ssize_t find_or_insert(Table* table, int64_t key) noexcept nogil:
    """The slot of ``key``, claimed (total 0) when new. The table must have room."""
    cdef uint64_t slot = home_slot(table, key)
    while is_used(table, slot):
        if table.slots[slot].key == key:
            return slot
        slot = (slot + 1) & table.mask
    table.used[slot >> 6] |= <uint64_t>1 << (slot & 63)
    table.slots[slot].key = key
    table.slots[slot].total = 0
    table.order[table.count] = slot
    table.count += 1
    return slot


cdef int table_grow(Table* table) noexcept nogil:
    """Double the capacity, keeping first-seen order and carries; -1 when out of memory."""
    cdef Table grown
    cdef Py_ssize_t i, old_slot, new_slot
    if table_init(&grown, 64 - table.shift + 1) < 0:
        table_free(&grown)
        return -1
    if table.carries != NULL:
        grown.carries = <int64_t*>calloc(grown.mask + 1, sizeof(int64_t))
        if grown.carries == NULL:
            table_free(&grown)
            return -1
    for i in range(table.count):
        old_slot = table.order[i]
        new_slot = find_or_insert(&grown, table.slots[old_slot].key)
        grown.slots[new_slot].total = table.slots[old_slot].total
        if table.carries != NULL:
            grown.carries[new_slot] = table.carries[old_slot]
    table_free(table)
    table[0] = grown
    return 0


cdef int record_overflow(Table* table, Py_ssize_t slot, int64_t delta) noexcept nogil:
    if table.carries == NULL:
        table.carries = <int64_t*>calloc(table.mask + 1, sizeof(int64_t))
        if table.carries == NULL:
            return -1
    table.carries[slot] += 1 if delta > 0 else -1
    return 0


cdef int coalesce_into(
    Table* table, const int64_t* keys, const int64_t* deltas, Py_ssize_t count
) noexcept nogil:
    cdef Py_ssize_t i, slot
    for i in range(count):
        if i + PREFETCH_DISTANCE < count:
            prefetch(&table.slots[home_slot(table, keys[i + PREFETCH_DISTANCE])])
        if 2 * (table.count + 1) > <Py_ssize_t>table.mask + 1:
            if table_grow(table) < 0:
                return -1
        slot = find_or_insert(table, keys[i])
        if add_overflows(table.slots[slot].total, deltas[i], &table.slots[slot].total):
            if record_overflow(table, slot, deltas[i]) < 0:
                return -1
    return 0


def coalesce(keys, deltas, *, bint drop_zero=False):
    cdef const int64_t[::1] key_view = int64_view(keys)
    cdef const int64_t[::1] delta_view = int64_view(deltas)
    cdef Py_ssize_t count = key_view.shape[0]
    cdef const int64_t* key_data = int64_data(key_view)
    cdef const int64_t* delta_data = int64_data(delta_view)
    cdef Table table
    cdef int status
    cdef Py_ssize_t i, slot, kept = 0
    cdef int bits = 4
    if delta_view.shape[0] != count:
        raise ValueError(f"{count} keys but {delta_view.shape[0]} deltas")
    while bits < MAX_INITIAL_BITS and (<Py_ssize_t>1 << bits) < count // 4:
        bits += 1
    with nogil:
        status = table_init(&table, bits)
        if status == 0:
            status = coalesce_into(&table, key_data, delta_data, count)
    try:
        if status < 0:
            raise MemoryError()
        if table.carries != NULL:
            for i in range(table.count):
                slot = table.order[i]
                if table.carries[slot] != 0:
                    raise OverflowError(
                        f"the total of key {table.slots[slot].key} does not fit in int64"
                    )
        result_keys = array.clone(INT64_ARRAY_TEMPLATE, table.count, False)
        result_totals = array.clone(INT64_ARRAY_TEMPLATE, table.count, False)
        kept = write_in_order(&table, drop_zero, result_keys, result_totals)
        array.resize(result_keys, kept)
        array.resize(result_totals, kept)
    finally:
        table_free(&table)
    return result_keys, result_totals


cdef Py_ssize_t write_in_order(
    const Table* table, bint drop_zero, array.array keys, array.array totals
) noexcept:
    """Keys and totals in first-seen order into the arrays; returns how many."""
    cdef int64_t* key_out = <int64_t*>keys.data.as_longlongs
    cdef int64_t* total_out = <int64_t*>totals.data.as_longlongs
    cdef Py_ssize_t i, slot
    cdef Py_ssize_t written = 0
    with nogil:
        for i in range(table.count):
            slot = table.order[i]
            if drop_zero and table.slots[slot].total == 0:
                continue
            key_out[written] = table.slots[slot].key
            total_out[written] = table.slots[slot].total
            written += 1
    return written


def sum_sharded(values, shards_per_key):
    cdef const int64_t[::1] value_view = int64_view(values)
    cdef const int64_t[::1] count_view
    cdef const int64_t* value_data = int64_data(value_view)
    cdef const int64_t* counts = NULL
    cdef Py_ssize_t key_count, per_key = 0, k, start, end, i
    cdef int64_t total, carry
    cdef Py_ssize_t overflowed = -1
    cdef Py_ssize_t value_count = value_view.shape[0]
    if isinstance(shards_per_key, int):
        if shards_per_key < 1:
            raise ValueError("shards_per_key must be >= 1")
        per_key = shards_per_key
        if value_count % per_key:
            raise ValueError("len(values) must be a multiple of shards_per_key")
        key_count = value_count // per_key
    else:
        count_view = int64_view(shards_per_key)
        counts = int64_data(count_view)
        key_count = count_view.shape[0]
        end = 0
        for k in range(key_count):
            if counts[k] < 0:
                raise ValueError("shard counts must be >= 0")
            if counts[k] > value_count - end:
                raise ValueError("the shard counts must add up to len(values)")
            end += counts[k]
        if end != value_count:
            raise ValueError("the shard counts must add up to len(values)")
    cdef array.array totals = array.clone(INT64_ARRAY_TEMPLATE, key_count, False)
    cdef int64_t* out = <int64_t*>totals.data.as_longlongs
    with nogil:
        end = 0
        for k in range(key_count):
            start = end
            end = start + (per_key if counts == NULL else counts[k])
            total = 0
            carry = 0
            for i in range(start, end):
                if add_overflows(total, value_data[i], &total):
                    carry += 1 if value_data[i] > 0 else -1
            if carry != 0:
                overflowed = k
                break
            out[k] = total
    if overflowed >= 0:
        raise OverflowError(f"the total of key #{overflowed} does not fit in int64")
    return totals
