# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled implementation of ``hotpath.merge`` (see that module for the API).

A binary heap holds the head of each candidate list; ``next_position`` pops the newest
head and skips repeats and excluded ids (a small open-addressing hash set). Ranking
scores a window into a binary heap of ``Ranked`` posts and pops the page off it (a page
needs the best few of a window, not the window sorted). ``newest_members`` parses post-list
members (bytes) straight into C structs, drops the excluded, sorts and cuts them: no Python
object per candidate. In the page kernels, everything between reading the arguments and
building the result runs without the GIL (``newest_members`` reads Python bytes as it goes).
"""

from cpython cimport array
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_Check, PyBytes_GET_SIZE
from libc.math cimport exp2, log1p
from libc.stdint cimport INT64_MAX, int64_t, uint8_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, qsort, realloc

from hotpath._shared cimport FIBONACCI_64, double_data, double_view, int64_data, int64_view

import array

from hotpath import _ids_common
from hotpath._merge_common import (
    DEFAULT_WEIGHTS,
    DEFAULT_WINDOW,
    SENTINEL_MEMBER,
    Page,
    RankedCursor,
    check_page_size,
    ranked_at_ms,
)

cdef int64_t EPOCH_MS = _ids_common.EPOCH_MS
cdef int64_t TIMESTAMP_SHIFT = _ids_common.TIMESTAMP_SHIFT

cdef array.array ID_ARRAY_TEMPLATE = array.array("q")

# --- the exclusion set -------------------------------------------------------------------

cdef struct IdSet:
    int64_t* keys
    uint8_t* used
    uint64_t mask
    int shift


cdef int id_set_init(IdSet* ids_set, const int64_t* values, Py_ssize_t count) noexcept nogil:
    """A set of ``values`` at most half full; -1 when out of memory."""
    cdef int bits = 3
    cdef Py_ssize_t i
    cdef uint64_t slot
    while (<Py_ssize_t>1 << bits) < 2 * count:
        bits += 1
    ids_set.mask = (<uint64_t>1 << bits) - 1
    ids_set.shift = 64 - bits
    ids_set.keys = <int64_t*>malloc((ids_set.mask + 1) * sizeof(int64_t))
    ids_set.used = <uint8_t*>calloc(ids_set.mask + 1, sizeof(uint8_t))
    if ids_set.keys == NULL or ids_set.used == NULL:
        return -1
    for i in range(count):
        slot = (<uint64_t>values[i] * FIBONACCI_64) >> ids_set.shift
        while ids_set.used[slot] and ids_set.keys[slot] != values[i]:
            slot = (slot + 1) & ids_set.mask
        ids_set.used[slot] = 1
        ids_set.keys[slot] = values[i]
    return 0


cdef inline bint id_set_contains(const IdSet* ids_set, int64_t value) noexcept nogil:
    cdef uint64_t slot = (<uint64_t>value * FIBONACCI_64) >> ids_set.shift
    while ids_set.used[slot]:
        if ids_set.keys[slot] == value:
            return True
        slot = (slot + 1) & ids_set.mask
    return False


cdef void id_set_free(IdSet* ids_set) noexcept nogil:
    free(ids_set.keys)
    free(ids_set.used)


# --- the k-way merge ---------------------------------------------------------------------

cdef struct HeapEntry:
    int64_t id
    Py_ssize_t list_index


cdef struct Merger:
    const int64_t* ids
    const int64_t* ends  # ends[k] is one past the last position of list k
    int64_t* positions  # positions[k] is the head of list k
    HeapEntry* heap
    Py_ssize_t size
    IdSet excluded
    int64_t previous
    bint has_previous


cdef inline bint comes_before(HeapEntry a, HeapEntry b) noexcept nogil:
    # Newest first; of equal ids the one from the first list, as heapq's tuples order them.
    return a.id > b.id or (a.id == b.id and a.list_index < b.list_index)


cdef inline void sift_down(HeapEntry* heap, Py_ssize_t size, Py_ssize_t i) noexcept nogil:
    cdef HeapEntry item = heap[i]
    cdef Py_ssize_t child
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and comes_before(heap[child + 1], heap[child]):
            child += 1
        if not comes_before(heap[child], item):
            break
        heap[i] = heap[child]
        i = child
    heap[i] = item


cdef inline Py_ssize_t first_below(
    const int64_t* ids, Py_ssize_t low, Py_ssize_t high, int64_t bound
) noexcept nogil:
    """The first position in the descending run ids[low:high] whose id is < bound."""
    cdef Py_ssize_t middle
    while low < high:
        middle = low + (high - low) // 2
        if ids[middle] < bound:
            high = middle
        else:
            low = middle + 1
    return low


cdef int merger_init(
    Merger* merger,
    const int64_t[::1] id_view,
    const int64_t[::1] offset_view,
    const int64_t[::1] excluded_view,
    bint bounded,
    int64_t before_id,
) noexcept nogil:
    """Heads of every list below ``before_id`` (when ``bounded``); -1 when out of memory.

    The offsets must have been checked (``check_offsets``)."""
    cdef const int64_t* ids = int64_data(id_view)
    cdef const int64_t* offsets = &offset_view[0]
    cdef Py_ssize_t list_count = offset_view.shape[0] - 1
    cdef Py_ssize_t k, start, i
    merger.ids = ids
    merger.ends = offsets + 1
    merger.size = 0
    merger.has_previous = False
    merger.previous = 0
    merger.positions = <int64_t*>malloc((list_count + 1) * sizeof(int64_t))
    merger.heap = <HeapEntry*>malloc((list_count + 1) * sizeof(HeapEntry))
    if id_set_init(&merger.excluded, int64_data(excluded_view), excluded_view.shape[0]) < 0:
        return -1
    if merger.positions == NULL or merger.heap == NULL:
        return -1
    for k in range(list_count):
        start = offsets[k]
        if bounded:
            start = first_below(ids, start, offsets[k + 1], before_id)
        merger.positions[k] = start
        if start < offsets[k + 1]:
            merger.heap[merger.size].id = ids[start]
            merger.heap[merger.size].list_index = k
            merger.size += 1
    i = merger.size // 2
    while i > 0:
        i -= 1
        sift_down(merger.heap, merger.size, i)
    return 0


cdef void merger_free(Merger* merger) noexcept nogil:
    free(merger.positions)
    free(merger.heap)
    id_set_free(&merger.excluded)


cdef Py_ssize_t next_position(Merger* merger) noexcept nogil:
    """The position of the next eligible candidate, newest first; -1 at the end."""
    cdef HeapEntry top
    cdef Py_ssize_t position
    while merger.size > 0:
        top = merger.heap[0]
        position = merger.positions[top.list_index]
        merger.positions[top.list_index] = position + 1
        if position + 1 < merger.ends[top.list_index]:
            merger.heap[0].id = merger.ids[position + 1]
        else:
            merger.size -= 1
            merger.heap[0] = merger.heap[merger.size]
        if merger.size > 0:
            sift_down(merger.heap, merger.size, 0)
        if merger.has_previous and top.id == merger.previous:
            continue
        merger.previous = top.id
        merger.has_previous = True
        if id_set_contains(&merger.excluded, top.id):
            continue
        return position
    return -1


# --- ranking -----------------------------------------------------------------------------

cdef struct Ranked:
    double score
    int64_t id


cdef struct Scoring:
    const double* affinity
    const int64_t* likes
    const int64_t* comments
    const double* interest
    double w_interest
    double w_recency
    double w_relationship
    double w_engagement
    double decay_scale  # -1 / half-life
    int64_t ranked_at_ms


cdef inline double score_of(
    const Scoring* scoring, const int64_t* ids, Py_ssize_t position
) noexcept nogil:
    # NOTE: the same operations in the same order as the reference, so that the two
    # agree to the last bit (setup.py also turns off fused multiply-add).
    cdef int64_t age_ms = scoring.ranked_at_ms - ((ids[position] >> TIMESTAMP_SHIFT) + EPOCH_MS)
    cdef int64_t likes = scoring.likes[position]
    cdef int64_t comments = scoring.comments[position]
    if age_ms < 0:
        age_ms = 0
    if likes < 0:
        likes = 0
    if comments < 0:
        comments = 0
    return (
        scoring.w_interest * scoring.interest[position]
        + scoring.w_recency * exp2(<double>age_ms * scoring.decay_scale)
        + scoring.w_relationship * scoring.affinity[position]
        + scoring.w_engagement * log1p(<double>likes + <double>comments)
    )


cdef inline bint ranks_before(const Ranked* a, const Ranked* b) noexcept nogil:
    """Best first: the higher score, then the higher id."""
    return a.score > b.score or (a.score == b.score and a.id > b.id)


cdef struct Window:
    Ranked* heap  # the window's unserved posts, best on top
    Py_ssize_t count
    Py_ssize_t capacity
    int64_t newest
    int64_t oldest


cdef int window_append(Window* window, double score, int64_t post_id) noexcept nogil:
    cdef Ranked* grown
    if window.count == window.capacity:
        window.capacity = 2 * window.capacity + 16
        grown = <Ranked*>realloc(window.heap, window.capacity * sizeof(Ranked))
        if grown == NULL:
            return -1
        window.heap = grown
    window.heap[window.count].score = score
    window.heap[window.count].id = post_id
    window.count += 1
    return 0


cdef void window_sift_down(Window* window, Py_ssize_t i) noexcept nogil:
    cdef Ranked item = window.heap[i]
    cdef Py_ssize_t child
    while True:
        child = 2 * i + 1
        if child >= window.count:
            break
        if child + 1 < window.count and ranks_before(&window.heap[child + 1], &window.heap[child]):
            child += 1
        if not ranks_before(&window.heap[child], &item):
            break
        window.heap[i] = window.heap[child]
        i = child
    window.heap[i] = item


cdef void window_heapify(Window* window) noexcept nogil:
    cdef Py_ssize_t i = window.count // 2
    while i > 0:
        i -= 1
        window_sift_down(window, i)


cdef Ranked window_pop(Window* window) noexcept nogil:
    cdef Ranked best = window.heap[0]
    window.count -= 1
    if window.count > 0:
        window.heap[0] = window.heap[window.count]
        window_sift_down(window, 0)
    return best


cdef struct RankedResult:
    Py_ssize_t count
    bint more
    Ranked last


cdef int fill_ranked_page(
    Merger* merger,
    const Scoring* scoring,
    const int64_t* ids,
    Window* window,
    const Ranked* resume_after,
    Py_ssize_t window_size,
    Py_ssize_t limit,
    int64_t* page,
    RankedResult* result,
) noexcept nogil:
    """The ranked page into ``page``; -1 when out of memory.

    With ``resume_after``, ``window`` holds the cursor's id range: its members as they are
    now, ranked as before, are served first, after the last served post.
    """
    cdef Py_ssize_t pending = next_position(merger)
    cdef Ranked member
    if resume_after != NULL:
        while pending >= 0 and ids[pending] >= window.oldest:
            member.score = score_of(scoring, ids, pending)
            member.id = ids[pending]
            if ranks_before(resume_after, &member):
                if window_append(window, member.score, member.id) < 0:
                    return -1
            pending = next_position(merger)
        window_heapify(window)
    while result.count < limit:
        if window.count == 0:
            if pending < 0:
                break
            window.newest = ids[pending]
            while pending >= 0 and window.count < window_size:
                window.oldest = ids[pending]
                if window_append(window, score_of(scoring, ids, pending), ids[pending]) < 0:
                    return -1
                pending = next_position(merger)
            window_heapify(window)
        result.last = window_pop(window)
        page[result.count] = result.last.id
        result.count += 1
    result.more = window.count > 0 or pending >= 0
    return 0


# --- post-list members ---------------------------------------------------------------------

cdef Py_ssize_t SENTINEL_SIZE = len(SENTINEL_MEMBER)
cdef char SENTINEL_BYTE = SENTINEL_MEMBER[0]

cdef struct Member:
    int64_t post_id
    int64_t author_id
    Py_ssize_t order  # where it came in the lists: the first of a post's members gives its author


cdef int newer_member(const void* a, const void* b) noexcept nogil:
    cdef const Member* x = <const Member*>a
    cdef const Member* y = <const Member*>b
    if x.post_id != y.post_id:
        return -1 if x.post_id > y.post_id else 1
    return -1 if x.order < y.order else (1 if x.order > y.order else 0)


cdef int parse_member(const char* text, Py_ssize_t size, Member* out) noexcept nogil:
    """0 when ``text`` is "<post>:<author>" in ASCII digits, each at most INT64_MAX; else -1."""
    cdef Py_ssize_t i = 0
    cdef Py_ssize_t start
    cdef uint64_t value
    cdef uint64_t digit
    cdef int64_t parts[2]
    cdef int part
    for part in range(2):
        start, value = i, 0
        while i < size and 48 <= text[i] <= 57:
            digit = text[i] - 48
            if value > (<uint64_t>INT64_MAX - digit) // 10:
                return -1
            value = value * 10 + digit
            i += 1
        if i == start:
            return -1
        parts[part] = <int64_t>value
        if part == 0:
            if i == size or text[i] != 58:  # ':'
                return -1
            i += 1
    if i != size:
        return -1
    out.post_id, out.author_id = parts[0], parts[1]
    return 0


# --- the Python-facing functions ---------------------------------------------------------

cdef int check_offsets(const int64_t[::1] ids, const int64_t[::1] offsets) except -1:
    cdef Py_ssize_t k
    if offsets.shape[0] < 1:
        raise ValueError("offsets needs at least one entry (K lists take K + 1)")
    if offsets[0] < 0 or offsets[offsets.shape[0] - 1] > ids.shape[0]:
        raise ValueError("offsets must lie within ids")
    for k in range(offsets.shape[0] - 1):
        if offsets[k] > offsets[k + 1]:
            raise ValueError("offsets must be non-decreasing")
    return 0


def chronological_page(ids, offsets, *, Py_ssize_t limit, before_id=None, excluded=()):
    cdef const int64_t[::1] id_view = int64_view(ids)
    cdef const int64_t[::1] offset_view = int64_view(offsets)
    cdef const int64_t[::1] excluded_view = int64_view(excluded)
    cdef bint bounded = before_id is not None
    cdef int64_t bound = before_id if bounded else 0
    cdef Merger merger
    cdef Py_ssize_t count = 0
    cdef Py_ssize_t position
    cdef bint more = False
    cdef int status
    check_page_size(limit)
    check_offsets(id_view, offset_view)
    cdef array.array page = array.clone(
        ID_ARRAY_TEMPLATE, min(limit, id_view.shape[0]), False
    )
    cdef int64_t* out = <int64_t*>page.data.as_longlongs
    cdef const int64_t* id_data = int64_data(id_view)
    with nogil:
        status = merger_init(&merger, id_view, offset_view, excluded_view, bounded, bound)
        if status == 0:
            while count < limit:
                position = next_position(&merger)
                if position < 0:
                    break
                out[count] = id_data[position]
                count += 1
            more = count == limit and next_position(&merger) >= 0
        merger_free(&merger)
    if status < 0:
        raise MemoryError()
    next_cursor = out[count - 1] if more else None
    array.resize(page, count)  # NOTE: may move the buffer; out is stale from here
    return Page(page, next_cursor)


def ranked_page(
    ids,
    offsets,
    affinity,
    likes,
    comments,
    interest,
    *,
    Py_ssize_t limit,
    cursor=None,
    excluded=(),
    now_ms=None,
    weights=DEFAULT_WEIGHTS,
    Py_ssize_t window=DEFAULT_WINDOW,
):
    cdef const int64_t[::1] id_view = int64_view(ids)
    cdef const int64_t[::1] offset_view = int64_view(offsets)
    cdef const int64_t[::1] excluded_view = int64_view(excluded)
    cdef const double[::1] affinity_view = double_view(affinity)
    cdef const int64_t[::1] likes_view = int64_view(likes)
    cdef const int64_t[::1] comments_view = int64_view(comments)
    cdef const double[::1] interest_view = double_view(interest)
    cdef Scoring scoring
    cdef Merger merger
    cdef Window current
    cdef RankedResult result
    cdef Ranked last_served
    cdef const Ranked* resume_after = NULL
    cdef int64_t bound = 0
    cdef bint bounded = False
    cdef int status
    check_page_size(limit, window)
    check_offsets(id_view, offset_view)
    for column_length in (
        affinity_view.shape[0],
        likes_view.shape[0],
        comments_view.shape[0],
        interest_view.shape[0],
    ):
        if column_length != id_view.shape[0]:
            raise ValueError("every feature column must be as long as ids")
    scoring.affinity = double_data(affinity_view)
    scoring.likes = int64_data(likes_view)
    scoring.comments = int64_data(comments_view)
    scoring.interest = double_data(interest_view)
    scoring.w_interest = weights.interest
    scoring.w_recency = weights.recency
    scoring.w_relationship = weights.relationship
    scoring.w_engagement = weights.engagement
    scoring.decay_scale = -1.0 / weights.half_life_ms
    scoring.ranked_at_ms = ranked_at_ms(cursor, now_ms)
    current.heap = NULL
    current.count = 0
    current.capacity = 0
    current.newest = 0
    current.oldest = 0
    result.count = 0
    result.more = False
    result.last.score = 0.0
    result.last.id = 0
    if cursor is not None:
        current.newest = cursor.window_newest
        current.oldest = cursor.window_oldest
        last_served.score = cursor.last_score
        last_served.id = cursor.last_id
        resume_after = &last_served
        # Members of the cursor's window are <= window_newest (no bound at int64's top).
        bounded = current.newest < 0x7FFFFFFFFFFFFFFF
        bound = current.newest + 1 if bounded else 0
    cdef array.array page = array.clone(
        ID_ARRAY_TEMPLATE, min(limit, id_view.shape[0]), False
    )
    cdef const int64_t* id_data = int64_data(id_view)
    with nogil:
        status = merger_init(&merger, id_view, offset_view, excluded_view, bounded, bound)
        if status == 0:
            status = fill_ranked_page(
                &merger,
                &scoring,
                id_data,
                &current,
                resume_after,
                window,
                limit,
                <int64_t*>page.data.as_longlongs,
                &result,
            )
        merger_free(&merger)
        free(current.heap)
    if status < 0:
        raise MemoryError()
    array.resize(page, result.count)
    if result.count == 0 or not result.more:
        return Page(page, None)
    return Page(
        page,
        RankedCursor(
            current.newest, current.oldest, scoring.ranked_at_ms, result.last.score, result.last.id
        ),
    )


def newest_members(lists, *, Py_ssize_t limit, before_id=None, excluded_authors=()):
    cdef const int64_t[::1] excluded_view = int64_view(excluded_authors)
    cdef bint bounded = before_id is not None
    cdef int64_t bound = before_id if bounded else 0
    cdef list all_lists = [given if type(given) is list else list(given) for given in lists]
    cdef Py_ssize_t total = 0
    cdef Py_ssize_t count = 0
    cdef Py_ssize_t served = 0
    cdef Py_ssize_t i
    cdef list members
    cdef object raw
    cdef const char* text
    cdef Py_ssize_t size
    cdef IdSet excluded_set
    cdef Member* found
    check_page_size(limit)
    for members in all_lists:
        total += len(members)
    found = <Member*>malloc((total if total > 0 else 1) * sizeof(Member))
    excluded_set.keys, excluded_set.used = NULL, NULL
    try:
        if found == NULL or id_set_init(&excluded_set, int64_data(excluded_view), excluded_view.shape[0]) < 0:
            raise MemoryError()
        for members in all_lists:
            for raw in members:
                if not PyBytes_Check(raw):
                    raise TypeError(f"a post-list member is bytes, got {type(raw).__name__}")
                text, size = PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw)
                if size == SENTINEL_SIZE and text[0] == SENTINEL_BYTE:
                    continue
                if parse_member(text, size, &found[count]) < 0:
                    raise ValueError(f"malformed post-list member {raw!r}")
                if (bounded and found[count].post_id >= bound) or id_set_contains(&excluded_set, found[count].author_id):
                    continue
                found[count].order = count
                count += 1
        qsort(found, count, sizeof(Member), newer_member)
        posts = array.clone(ID_ARRAY_TEMPLATE, min(limit, count), False)
        authors = array.clone(ID_ARRAY_TEMPLATE, min(limit, count), False)
        for i in range(count):
            if served == limit:
                break
            if i > 0 and found[i].post_id == found[i - 1].post_id:
                continue
            (<array.array>posts).data.as_longlongs[served] = found[i].post_id
            (<array.array>authors).data.as_longlongs[served] = found[i].author_id
            served += 1
        array.resize(posts, served)
        array.resize(authors, served)
        return posts, authors
    finally:
        free(found)
        id_set_free(&excluded_set)
