"""Pair selection: the rules of issue 4 §5 as properties, checked over whole simulated batches."""

from __future__ import annotations

import time
from itertools import combinations

import numpy as np
import pytest

from services.cj_assessment_service.cj_core_logic.pairing import adaptivity_from_reliability, select_pairs


def unordered(pair: tuple[int, int]) -> tuple[int, int]:
    return (min(pair), max(pair))


def run_rounds(
    n_items: int,
    rounds: int,
    pairs_per_round: int,
    *,
    min_comparisons: int,
    seed: int = 0,
    scores: np.ndarray | None = None,
    standard_errors: np.ndarray | None = None,
) -> list[list[tuple[int, int]]]:
    """Selections of successive calls, each seeing the history of the previous ones."""
    history: list[tuple[int, int]] = []
    selections = []
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        chosen = select_pairs(
            n_items, history, scores, standard_errors,
            n_pairs=pairs_per_round, min_comparisons_per_item=min_comparisons, seed=rng,
        )
        selections.append(chosen)
        history.extend(chosen)
    return selections


# --------------------------------------------------------------------------- basics


@pytest.mark.parametrize("n_items", [0, 1])
def test_fewer_than_two_items_give_no_pairs(n_items: int) -> None:
    assert select_pairs(n_items, [], None, None, n_pairs=5, min_comparisons_per_item=3, seed=0) == []


def test_zero_budget_gives_no_pairs() -> None:
    assert select_pairs(10, [], None, None, n_pairs=0, min_comparisons_per_item=3, seed=0) == []


@pytest.mark.parametrize("n_items, n_pairs", [(2, 7), (3, 10), (7, 3), (10, 5), (10, 40), (101, 50)])
def test_budget_is_respected_and_no_item_meets_itself(n_items: int, n_pairs: int) -> None:
    pairs = select_pairs(n_items, [], None, None, n_pairs=n_pairs, min_comparisons_per_item=2, seed=1)
    assert len(pairs) == n_pairs  # small sets may repeat pairs once every pair has been seen
    for first, second in pairs:
        assert first != second
        assert 0 <= first < n_items and 0 <= second < n_items


def test_deterministic_under_a_seed() -> None:
    rng = np.random.default_rng(9)
    scores, errors = rng.normal(0, 1.5, 40), np.full(40, 0.4)
    history = [(k, (k + 1) % 40) for k in range(40)]
    kwargs = dict(n_pairs=20, min_comparisons_per_item=2)
    first = select_pairs(40, history, scores, errors, seed=123, **kwargs)
    assert select_pairs(40, history, scores, errors, seed=123, **kwargs) == first
    assert select_pairs(40, history, scores, errors, seed=np.random.default_rng(123), **kwargs) == first
    assert select_pairs(40, history, scores, errors, seed=124, **kwargs) != first


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="outside"):
        select_pairs(3, [(0, 3)], None, None, n_pairs=1, min_comparisons_per_item=1, seed=0)
    with pytest.raises(ValueError, match="itself"):
        select_pairs(3, [(1, 1)], None, None, n_pairs=1, min_comparisons_per_item=1, seed=0)
    with pytest.raises(ValueError, match="shape"):
        select_pairs(3, [], np.zeros(2), None, n_pairs=1, min_comparisons_per_item=1, seed=0)
    with pytest.raises(ValueError, match="finite"):
        select_pairs(3, [], np.array([0.0, np.nan, 1.0]), None, n_pairs=1, min_comparisons_per_item=1, seed=0)


# --------------------------------------------------------------------------- coverage


@pytest.mark.parametrize("pairs_per_round", [1, 3, 10, 25])
def test_no_item_gets_extra_comparisons_while_another_lacks_its_minimum(pairs_per_round: int) -> None:
    n_items, minimum = 21, 4  # odd, so someone must sometimes wait or double up
    counts = np.zeros(n_items, dtype=int)
    for chosen in run_rounds(n_items, 60 // pairs_per_round + 8, pairs_per_round, min_comparisons=minimum):
        for first, second in chosen:
            if (counts < minimum).any():
                # Every pair must serve an item that is still below the minimum.
                assert counts[first] < minimum or counts[second] < minimum
            counts[first] += 1
            counts[second] += 1
    assert counts.min() >= minimum


def test_one_round_of_the_right_size_brings_everyone_to_the_minimum() -> None:
    pairs = select_pairs(30, [], None, None, n_pairs=45, min_comparisons_per_item=3, seed=4)
    counts = np.bincount(np.array(pairs).ravel(), minlength=30)
    assert counts.tolist() == [3] * 30


def test_first_round_is_a_random_matching() -> None:
    pairs = select_pairs(50, [], None, None, n_pairs=25, min_comparisons_per_item=2, seed=2)
    assert sorted(np.array(pairs).ravel().tolist()) == list(range(50))
    other = select_pairs(50, [], None, None, n_pairs=25, min_comparisons_per_item=2, seed=3)
    assert {unordered(p) for p in pairs} != {unordered(p) for p in other}


def test_appearances_stay_spread_after_coverage() -> None:
    n_items = 40
    scores = np.linspace(-3, 3, n_items)  # strongly informative scores tempt a selector to hog the middle
    errors = np.full(n_items, 0.3)
    counts = np.zeros(n_items, dtype=int)
    for chosen in run_rounds(n_items, 40, 4, min_comparisons=2, scores=scores, standard_errors=errors):
        for pair in chosen:
            counts[list(pair)] += 1
    assert counts.sum() == 320
    assert counts.max() - counts.min() <= 2


# --------------------------------------------------------------------------- repeats


@pytest.mark.parametrize("pairs_per_round", [1, 2, 4])
def test_no_pair_repeats_while_unseen_pairs_remain(pairs_per_round: int) -> None:
    n_items = 9
    all_pairs = n_items * (n_items - 1) // 2
    seen: list[tuple[int, int]] = []
    for chosen in run_rounds(n_items, all_pairs // pairs_per_round + 6, pairs_per_round, min_comparisons=1):
        seen.extend(unordered(p) for p in chosen)
    assert len(set(seen[:all_pairs])) == all_pairs  # every pair once before any pair twice
    assert len(seen) > all_pairs


def test_repeats_do_not_happen_with_informative_scores_either() -> None:
    n_items = 8
    scores = np.linspace(-1, 1, n_items)  # every pair still uncertain
    seen: list[tuple[int, int]] = []
    for chosen in run_rounds(n_items, 7, 4, min_comparisons=1, scores=scores, standard_errors=np.full(n_items, 0.8)):
        seen.extend(unordered(p) for p in chosen)
    assert len(seen) == 28 and len(set(seen)) == 28


def test_a_close_pair_may_repeat_once_only_foregone_conclusions_are_unseen() -> None:
    # Two clusters far apart: across-cluster outcomes are certain; within-cluster pairs are all seen.
    scores = np.array([0.0, 0.1, 12.0, 12.1])
    errors = np.full(4, 0.2)
    history = [(0, 1), (2, 3)]
    pairs = select_pairs(4, history, scores, errors, n_pairs=2, min_comparisons_per_item=1, seed=0)
    assert {unordered(p) for p in pairs} == {(0, 1), (2, 3)}


# --------------------------------------------------------------------------- position balance


def test_each_item_is_shown_first_about_as_often_as_second() -> None:
    n_items = 30
    first = np.zeros(n_items, dtype=int)
    second = np.zeros(n_items, dtype=int)
    rng = np.random.default_rng(0)
    scores = rng.normal(0, 1.5, n_items)
    for chosen in run_rounds(n_items, 30, 7, min_comparisons=3, scores=scores, standard_errors=np.full(n_items, 0.5)):
        for a, b in chosen:
            first[a] += 1
            second[b] += 1
    assert np.abs(first - second).max() <= 2
    assert np.mean(np.abs(first - second)) < 1.0


def test_first_counts_override_orients_pairs() -> None:
    # Item 0 has been shown first 5 times elsewhere: it must now be shown second.
    first_counts = np.array([5, 0])
    history = [(0, 1)] * 5
    pairs = select_pairs(2, history, None, None, n_pairs=1, min_comparisons_per_item=1, seed=0,
                         first_counts=first_counts)
    assert pairs == [(1, 0)]


# --------------------------------------------------------------------------- information


def test_later_rounds_favour_pairs_close_in_score() -> None:
    n_items = 60
    rng = np.random.default_rng(5)
    scores = np.sort(rng.normal(0, 2.0, n_items))
    errors = np.full(n_items, 0.35)  # a well-separated scale: reliability about 0.97
    history = [p for p in select_pairs(n_items, [], None, None, n_pairs=60, min_comparisons_per_item=2, seed=1)]
    pairs = select_pairs(n_items, history, scores, errors, n_pairs=30, min_comparisons_per_item=2, seed=2)
    selected_gap = np.mean([abs(scores[a] - scores[b]) for a, b in pairs])
    random_gap = np.mean([abs(scores[a] - scores[b]) for a, b in combinations(range(n_items), 2)])
    assert selected_gap < 0.35 * random_gap


def test_scores_that_are_mostly_noise_do_not_steer_pairing() -> None:
    # A spread no larger than its own standard errors: reliability 0, adaptivity 0.
    rng = np.random.default_rng(8)
    scores = rng.normal(0, 0.5, 60)
    errors = np.full(60, 0.7)
    assert adaptivity_from_reliability(scores, errors**2) == 0.0
    gaps = []
    for seed in range(20):
        pairs = select_pairs(60, [], scores, errors, n_pairs=30, min_comparisons_per_item=0, seed=seed)
        gaps.extend(abs(scores[a] - scores[b]) for a, b in pairs)
    random_gap = np.mean([abs(scores[a] - scores[b]) for a, b in combinations(range(60), 2)])
    assert np.mean(gaps) == pytest.approx(random_gap, rel=0.15)


def test_adaptivity_ramps_with_reliability() -> None:
    spread = np.linspace(-2, 2, 50)
    assert adaptivity_from_reliability(spread, np.full(50, 0.01)) == 1.0
    assert adaptivity_from_reliability(spread, np.full(50, 10.0)) == 0.0
    assert 0.0 < adaptivity_from_reliability(spread, np.full(50, 1.0)) < 1.0


# --------------------------------------------------------------------------- scale


def test_ten_thousand_items_are_fast_and_respect_the_rules() -> None:
    n_items = 10_000
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    first_round = select_pairs(n_items, [], None, None, n_pairs=5_000, min_comparisons_per_item=2, seed=1)
    scores = rng.normal(0, 1.5, n_items)
    errors = np.full(n_items, 0.4)
    second_round = select_pairs(n_items, first_round, scores, errors, n_pairs=5_000, min_comparisons_per_item=2, seed=2)
    elapsed = time.perf_counter() - started
    assert elapsed < 5.0
    both = first_round + second_round
    assert len(both) == 10_000
    assert np.bincount(np.array(both).ravel(), minlength=n_items).tolist() == [2] * n_items
    assert len({unordered(p) for p in both}) == 10_000
