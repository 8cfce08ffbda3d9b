"""Search's pure logic: folding, typo keys, places, ranking, and the offline evaluation's verdict."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from services.search.evaluate import evaluate
from services.search.model import co_engagement
from services.search.service import Candidate, Viewer, explore_rank, fold, place_id, rank_users, typo_keys

NOW = datetime(2026, 12, 3, tzinfo=UTC)


def test_fold_takes_accents_and_case_away():
    assert fold("Zoë ÅSTRÖM Straße") == "zoe astrom strasse"


def test_a_swapped_letter_shares_a_typo_key_with_the_right_word():
    assert set(typo_keys("jhon")) & set(typo_keys("john"))


def test_words_of_other_letters_share_no_typo_key():
    assert not set(typo_keys("jhon")) & set(typo_keys("mary"))


def test_one_place_is_one_name_within_about_a_hundred_metres():
    assert place_id("Café de Flore", 48.8541, 2.3331) == place_id("cafe  de flore", 48.8543, 2.3333)
    assert place_id("Café de Flore", 48.8541, 2.3331) != place_id("Café de Flore", 48.86, 2.3331)


def test_followed_accounts_rank_above_a_slightly_better_match_and_blocked_ones_go():
    viewer = Viewer(1, following={3}, muted=set(), blocked={4})
    ranked = rank_users([Candidate("user", 2, "a", "", 0, 3.0), Candidate("user", 3, "b", "", 0, 2.5),
                         Candidate("user", 4, "c", "", 0, 9.0)], viewer)
    assert [c.id for c in ranked] == [3, 2]


def test_explore_ranks_co_engaged_posts_first_and_caps_each_author():
    docs = {p: (100 + p % 2, 1, NOW, False) for p in range(10, 20)}
    neighbors = [(1, 15, 0.9), (1, 17, 0.5)]
    ranked = explore_rank([1], neighbors, {p: 1.0 for p in docs}, docs, set(), set(), NOW)
    assert ranked[:2] == [15, 17]
    assert len(ranked) == 6  # two authors, three posts each


def test_co_engagement_pairs_posts_liked_by_the_same_people():
    at = NOW
    rows = co_engagement([(1, 10, at), (1, 11, at), (2, 10, at), (2, 11, at), (3, 12, at)])
    assert {(a, b) for a, b, _ in rows} == {(10, 11), (11, 10)}


def test_the_ranker_beats_popularity_on_likes_with_tastes():
    rng = random.Random(3)
    groups, users, posts = 10, 400, 600
    docs = {p: (1000 + p, 0, NOW - timedelta(days=rng.random() * 20), False) for p in range(posts)}
    likes = []
    for p in range(posts):
        for _ in range(rng.randint(2, 12)):
            user = (p % groups) + groups * rng.randrange(users // groups) if rng.random() < 0.7 else rng.randrange(users)
            likes.append((user, p, NOW - timedelta(hours=rng.random() * 400)))
    report = evaluate(list({(u, p): (u, p, t) for u, p, t in likes}.values()), docs, users=300)
    assert report["ranker_beats_baseline"], report
