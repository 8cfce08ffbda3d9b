from __future__ import annotations

from services.common.text import hashtags, mentions


def test_hashtags_are_lower_cased_deduplicated_in_order():
    assert hashtags("Sunset #Beach #beach and #café_2 #") == ["beach", "café_2"]


def test_hashtag_inside_a_word_or_doubled_is_not_a_tag():
    assert hashtags("C#minor ##double") == []


def test_mentions_skip_emails_and_trailing_dots():
    assert mentions("thanks @Ada. and @bob_1, mail me@example.com") == ["ada", "bob_1"]


def test_at_most_thirty_tags():
    assert len(hashtags(" ".join(f"#t{i}" for i in range(40)))) == 30
