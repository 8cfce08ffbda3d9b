"""services.search.service.check_query: what a search or autocomplete query may be."""

from __future__ import annotations

import pytest

from services.common.errors import InvalidArgument
from services.search.service import check_query


def test_a_query_is_trimmed():
    assert check_query("  zoë ") == "zoë"


@pytest.mark.parametrize("q", ["", "   ", ",\x00\U000220ac\xfda", "a" * 1000])
def test_an_empty_too_long_or_nul_query_is_invalid_naming_q(q):
    # The NUL: the fuzzer's autocomplete query, which PostgreSQL's text cannot hold (it was a 500).
    with pytest.raises(InvalidArgument) as error:
        check_query(q)
    assert error.value.field == "q"
