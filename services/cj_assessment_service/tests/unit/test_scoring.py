"""Bradley–Terry scoring kernels: oracle (choix), closed forms, edge cases, recovery."""

from __future__ import annotations

import json
import math

import choix
import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import expit
from scipy.stats import spearmanr

from services.cj_assessment_service.cj_core_logic.scoring import (
    DEFAULT_PRIOR_SD,
    choix_alpha_for_prior,
    check_comparison_graph,
    fit_bradley_terry,
    fit_statistics,
    position_bias,
    scale_separation_reliability,
    score_comparisons,
    split_half_reliability,
)


def simulate(true_scores: np.ndarray, rounds: int, rng: np.random.Generator):
    """Random pairing, every item once per round; BT outcomes from ``true_scores``.

    Returns winners, losers and first_won (the item listed first in the pair won)."""
    n = true_scores.size
    firsts, seconds = [], []
    for _ in range(rounds):
        order = rng.permutation(n)
        firsts.append(order[0 : n - 1 : 2])
        seconds.append(order[1:n:2])
    first, second = np.concatenate(firsts), np.concatenate(seconds)
    first_won = rng.random(first.size) < expit(true_scores[first] - true_scores[second])
    winners = np.where(first_won, first, second)
    losers = np.where(first_won, second, first)
    return winners, losers, first_won


def assert_json_safe(value) -> None:
    """Only plain JSON types, every float finite."""
    if isinstance(value, dict):
        assert all(isinstance(k, str) for k in value)
        for v in value.values():
            assert_json_safe(v)
    elif isinstance(value, list):
        for v in value:
            assert_json_safe(v)
    elif isinstance(value, float):
        assert type(value) is float and math.isfinite(value)
    else:
        assert value is None or type(value) in (str, int, bool), type(value)


# ------------------------------------------------------------------ oracle


@pytest.mark.parametrize("prior_sd", [0.7, DEFAULT_PRIOR_SD, 5.0])
def test_matches_choix_map_estimate_under_the_same_prior(prior_sd: float) -> None:
    rng = np.random.default_rng(7)
    truth = rng.normal(0, 1.5, 40)
    winners, losers, _ = simulate(truth, 8, rng)
    ours = fit_bradley_terry(40, winners, losers, prior_sd=prior_sd)
    oracle = choix.opt_pairwise(
        40, list(zip(winners.tolist(), losers.tolist())), alpha=choix_alpha_for_prior(prior_sd), tol=1e-10
    )
    assert ours.converged
    assert abs(ours.scores.mean()) < 1e-12
    assert np.max(np.abs(ours.scores - (oracle - oracle.mean()))) < 1e-4


def test_choix_alpha_is_half_the_prior_precision() -> None:
    # choix penalises alpha * sum(theta²) (no 1/2), so alpha = 1/sd² would be a
    # prior twice as strong: its estimates must NOT match ours.
    rng = np.random.default_rng(3)
    winners, losers, _ = simulate(rng.normal(0, 1.5, 20), 6, rng)
    ours = fit_bradley_terry(20, winners, losers, prior_sd=1.0)
    wrong = choix.opt_pairwise(20, list(zip(winners.tolist(), losers.tolist())), alpha=1.0, tol=1e-10)
    assert np.max(np.abs(ours.scores - (wrong - wrong.mean()))) > 1e-2


# ------------------------------------------------------------- closed forms


def test_two_items_with_equal_wins_sit_at_the_prior_mean_with_closed_form_se() -> None:
    k, sd = 3, 1.5
    fit = fit_bradley_terry(2, [0] * k + [1] * k, [1] * k + [0] * k, prior_sd=sd)
    np.testing.assert_allclose(fit.scores, [0.0, 0.0], atol=1e-12)
    # H = [[c+q, -q], [-q, c+q]], c = 1/sd², q = 2k * p(1-p) with p = 1/2.
    c, q = 1 / sd**2, 2 * k * 0.25
    expected_se = math.sqrt((c + q) / (c * (c + 2 * q)))
    np.testing.assert_allclose(fit.standard_errors, [expected_se] * 2, rtol=1e-10)


def test_two_items_with_unequal_wins_reach_the_known_map() -> None:
    a, b, sd = 5, 2, 2.0  # item 0 beat item 1 five times and lost twice
    # Centred optimum is theta = (d/2, -d/2); stationarity in theta_0:
    # d / (2 sd²) = a - (a + b) * sigmoid(d).
    d = brentq(lambda x: x / (2 * sd**2) - a + (a + b) * expit(x), -20, 20, xtol=1e-14)
    fit = fit_bradley_terry(2, [0] * a + [1] * b, [1] * a + [0] * b, prior_sd=sd)
    np.testing.assert_allclose(fit.scores, [d / 2, -d / 2], atol=1e-9)
    posterior_mode = -(-a * np.logaddexp(0, -d) - b * np.logaddexp(0, d) - (d / 2) ** 2 / sd**2)
    assert fit.log_posterior == pytest.approx(-posterior_mode, abs=1e-9)


def test_local_standard_error_approximation_is_close_to_the_exact_one() -> None:
    rng = np.random.default_rng(11)
    truth = rng.normal(0, 1.5, 300)
    winners, losers, _ = simulate(truth, 10, rng)
    exact = fit_bradley_terry(300, winners, losers)
    approximate = fit_bradley_terry(300, winners, losers, dense_se_limit=0)
    assert exact.se_method == "exact" and approximate.se_method == "local_approximation"
    np.testing.assert_allclose(approximate.scores, exact.scores, atol=1e-8)
    relative = approximate.standard_errors / exact.standard_errors - 1
    assert np.max(np.abs(relative)) < 0.03


# --------------------------------------------------------------- edge cases


def test_undefeated_essay_gets_a_finite_top_score_and_is_flagged() -> None:
    rng = np.random.default_rng(5)
    winners, losers, _ = simulate(rng.normal(0, 1, 10), 6, rng)
    # Essay 10 beats everyone once; nobody beats it.
    winners = np.concatenate([winners, np.full(10, 10)])
    losers = np.concatenate([losers, np.arange(10)])
    result = score_comparisons(11, winners, losers)
    score = result.fit.scores[10]
    assert math.isfinite(score) and score == result.fit.scores.max() and score < 10
    assert math.isfinite(result.fit.standard_errors[10])
    assert result.graph.undefeated.tolist() == [10]
    assert any("won every comparison" in w and "10" in w for w in result.warnings)
    assert_json_safe(result.to_dict())


def test_two_groups_never_compared_with_each_other_are_reported_as_two_components() -> None:
    rng = np.random.default_rng(8)
    w1, l1, _ = simulate(rng.normal(0, 1, 6), 5, rng)
    w2, l2, _ = simulate(rng.normal(0, 1, 6), 5, rng)
    winners, losers = np.concatenate([w1, w2 + 6]), np.concatenate([l1, l2 + 6])
    result = score_comparisons(12, winners, losers)
    assert result.graph.n_components == 2 and not result.graph.is_connected
    assert set(result.graph.component_labels[:6].tolist()) != set(result.graph.component_labels[6:].tolist())
    assert np.all(np.isfinite(result.fit.scores)) and np.all(np.isfinite(result.fit.standard_errors))
    assert any("2 disconnected components" in w and "not comparable" in w for w in result.warnings)
    assert_json_safe(result.to_dict())


def test_never_compared_essay_keeps_the_prior_and_is_flagged() -> None:
    rng = np.random.default_rng(9)
    winners, losers, _ = simulate(rng.normal(0, 1, 8), 6, rng)
    labels = [f"essay-{i}" for i in range(9)]
    result = score_comparisons(9, winners, losers, item_labels=labels, prior_sd=1.7)
    assert result.fit.scores[8] == pytest.approx(0.0, abs=1e-9)
    assert result.fit.standard_errors[8] == pytest.approx(1.7, rel=1e-9)
    assert result.graph.never_compared.tolist() == [8]
    assert result.graph.n_components == 1  # an unused essay is not a second component
    assert any("never compared" in w and "essay-8" in w for w in result.warnings)
    item = result.to_dict()["items"][8]
    assert item["never_compared"] and item["infit"] is None and item["comparisons"] == 0


def test_balanced_cycle_gives_equal_scores_and_no_reliability() -> None:
    k = 4  # A>B, B>C, C>A, k times each
    winners = [0] * k + [1] * k + [2] * k
    losers = [1] * k + [2] * k + [0] * k
    result = score_comparisons(3, winners, losers, min_comparisons=2)
    np.testing.assert_allclose(result.fit.scores, 0.0, atol=1e-12)
    assert result.scale_separation_reliability == 0.0
    assert any("low reliability" in w for w in result.warnings)


def test_all_outcomes_from_one_position_are_flagged() -> None:
    rng = np.random.default_rng(4)
    winners, losers, _ = simulate(rng.normal(0, 1, 20), 5, rng)
    # The judge always picked the essay shown first, so "first" is each winner.
    result = score_comparisons(20, winners, losers, first_won=np.ones(winners.size, dtype=bool))
    bias = result.position
    assert bias is not None and bias.flagged and bias.one_position_only
    assert bias.first_position_win_rate == 1.0 and bias.p_value < 1e-6
    assert any("one position" in w for w in result.warnings)
    assert_json_safe(result.to_dict())


def test_position_bias_exact_binomial_p_value() -> None:
    bias = position_bias([True] * 10)
    assert bias.p_value == pytest.approx(2 / 2**10)
    balanced = position_bias([True, False] * 50)
    assert balanced.p_value == pytest.approx(1.0) and not balanced.flagged
    empty = position_bias([])
    assert empty.n == 0 and not empty.flagged and empty.first_position_win_rate == 0.5


def test_invalid_comparisons_are_rejected() -> None:
    with pytest.raises(ValueError, match="itself"):
        fit_bradley_terry(3, [0, 1], [0, 2])
    with pytest.raises(ValueError, match="0..2"):
        fit_bradley_terry(3, [0, 3], [1, 2])
    with pytest.raises(ValueError, match="differ"):
        check_comparison_graph(3, [0, 1], [2])


def test_degenerate_sizes_are_finite() -> None:
    empty = fit_bradley_terry(0, [], [])
    assert empty.scores.size == 0 and empty.converged
    lonely = score_comparisons(1, [], [])
    assert lonely.fit.standard_errors.tolist() == [DEFAULT_PRIOR_SD]
    assert any("no comparisons" in w for w in lonely.warnings)
    assert_json_safe(lonely.to_dict())
    json.dumps(lonely.to_dict(), allow_nan=False)


def test_weak_prior_with_a_chain_of_wins_stays_finite_and_ordered() -> None:
    # 0 > 1 > 2 > ... > 9 with no upsets: maximum likelihood diverges, MAP cannot.
    winners = np.arange(9)
    fit = fit_bradley_terry(10, winners, winners + 1, prior_sd=50.0)
    assert fit.converged and np.all(np.isfinite(fit.scores)) and np.all(np.isfinite(fit.standard_errors))
    assert np.all(np.diff(fit.scores) < 0)


# ------------------------------------------------------ recovery & reliability


def test_fitted_order_recovers_simulated_truth() -> None:
    rng = np.random.default_rng(21)
    truth = rng.normal(0, 1.5, 80)
    winners, losers, first_won = simulate(truth, 20, rng)
    result = score_comparisons(80, winners, losers, first_won=first_won)
    rho = spearmanr(truth, result.fit.scores).statistic
    ssr = result.scale_separation_reliability
    print(f"recovery: Spearman {rho:.3f}, SSR {ssr:.3f}, split-half {result.split_half_reliability:.3f}")
    assert rho > 0.85
    # Reliability is the share of true variance, so corr(fit, truth) ≈ sqrt(SSR).
    assert ssr > 0.75 and abs(rho - math.sqrt(ssr)) < 0.1
    assert result.split_half_reliability > 0.6
    # A fair judge: the first position wins about half the time (seeded; a 5 % test
    # would flag one fair run in twenty, so check the p-value is not extreme).
    assert result.position.p_value > 0.001
    # Coverage: true scores (centred) fall within 2 SE about 95 % of the time.
    centred_truth = truth - truth.mean()
    inside = np.abs(result.fit.scores - centred_truth) < 2 * result.fit.standard_errors
    assert inside.mean() > 0.85


def test_coin_flip_judge_does_not_look_reliable() -> None:
    rng = np.random.default_rng(13)
    winners, losers, _ = simulate(np.zeros(60), 15, rng)  # every outcome is a coin flip
    result = score_comparisons(60, winners, losers)
    print(f"coin-flip judge: SSR {result.scale_separation_reliability:.3f}, "
          f"split-half {result.split_half_reliability:.3f}")
    assert result.scale_separation_reliability < 0.3
    assert result.split_half_reliability < 0.3
    assert any("low reliability" in w for w in result.warnings)


def test_ssr_formula_and_clipping() -> None:
    scores = np.array([-1.0, 0.0, 1.0])  # sample variance 1
    assert scale_separation_reliability(scores, np.full(3, 0.5)) == pytest.approx(0.75)
    assert scale_separation_reliability(scores, np.full(3, 2.0)) == 0.0
    assert scale_separation_reliability(np.array([0.3]), np.array([0.1])) == 0.0


def test_split_half_is_high_for_a_consistent_judge_and_deterministic() -> None:
    rng = np.random.default_rng(17)
    winners, losers, _ = simulate(rng.normal(0, 2, 50), 16, rng)
    first = split_half_reliability(50, winners, losers, n_splits=5, seed=1)
    assert first > 0.8
    assert split_half_reliability(50, winners, losers, n_splits=5, seed=1) == first


def test_infit_flags_an_erratic_essay() -> None:
    rng = np.random.default_rng(23)
    n = 40
    truth = np.linspace(-3, 3, n)
    winners, losers, _ = simulate(truth, 12, rng)
    # Essay 20 (middling) beats the 8 strongest essays and loses to the 8 weakest,
    # twice each: the opposite of what its score predicts.
    strong, weak = np.arange(n - 8, n), np.arange(8)
    winners = np.concatenate([winners, np.full(16, 20), np.tile(weak, 2)])
    losers = np.concatenate([losers, np.tile(strong, 2), np.full(16, 20)])
    fit = fit_bradley_terry(n, winners, losers)
    stats = fit_statistics(n, winners, losers, fit.scores)
    assert stats.misfit[20] and stats.infit[20] > 1.3 and stats.outfit[20] > 1.3
    others = np.delete(stats.infit, 20)
    assert 0.6 < np.median(others) < 1.3
    assert stats.misfit.mean() < 0.2
