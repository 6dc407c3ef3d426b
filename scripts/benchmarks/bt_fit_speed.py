"""Benchmark: speed of our Bradley–Terry fit against choix, on the same data in one run.

Cases (issue 5, benchmark 1): N = 1,000 essays / 10,000 comparisons and
N = 10,000 / 100,000. True scores ~ N(0, 1), uniformly random pairs, outcomes drawn
from the BT model. Timed:

- ``ours``: ``scoring.fit_bradley_terry`` (MAP, prior N(0, prior_sd²)) *including*
  standard errors (exact up to 2,000 items, local approximation above).
- ``choix.opt_pairwise``: the same MAP problem (``alpha = 1 / (2 prior_sd²)``,
  Newton-CG, dense Hessian). Its estimates should equal ours (max |Δ| ≲ 1e-4).
- ``choix.ilsr_pairwise``: iterative Luce spectral ranking. With ``alpha=0`` it is
  maximum likelihood, which does not exist when some essay won (or lost) all its
  comparisons, as always happens at these sizes; ILSR then fails. So it runs with its
  own regulariser (``--ilsr-alpha``, initial Markov-chain rates), which is *not* a
  Gaussian prior: its max |Δ| against our MAP fit measures a different estimator
  (large for the extreme essays), the Spearman ρ shows the ordering agrees.

Differences are the max absolute difference of centred estimates (logits).
choix on the 10k case takes one to several minutes and ~3 GB of memory (dense N×N
matrices); ``--skip-slow-choix`` skips choix there, and with it the reference run of
our fit with exact dense standard errors (which shows the error of the approximate
SEs used above 2,000 items).

Run: ``.venv/bin/python -m scripts.benchmarks.bt_fit_speed [--skip-slow-choix]``
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.special import expit
from scipy.stats import spearmanr

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from services.cj_assessment_service.cj_core_logic.scoring import (  # noqa: E402
    DEFAULT_PRIOR_SD,
    choix_alpha_for_prior,
    fit_bradley_terry,
)

CASES = ((1_000, 10_000), (10_000, 100_000))
# Above this many items choix is "slow" (dense N×N work in pure Python loops).
SLOW_CHOIX_ITEMS = 5_000
NEAR_ML_PRIOR_SD = 1_000.0


def simulate(n_items: int, n_comparisons: int, rng: np.random.Generator):
    truth = rng.normal(0.0, 1.0, n_items)
    a = rng.integers(0, n_items, n_comparisons)
    b = (a + rng.integers(1, n_items, n_comparisons)) % n_items  # never a == b
    a_won = rng.random(n_comparisons) < expit(truth[a] - truth[b])
    return truth, np.where(a_won, a, b), np.where(a_won, b, a)


def timed(function: Callable[[], np.ndarray]) -> tuple[float, np.ndarray | None, str]:
    start = time.perf_counter()
    try:
        result = function()
    except Exception as error:  # a benchmark reports a failing baseline, it does not stop
        return time.perf_counter() - start, None, f"failed: {type(error).__name__}: {error}"
    return time.perf_counter() - start, result, ""


def centred(values: np.ndarray) -> np.ndarray:
    return values - values.mean()


def max_abs_difference(a: np.ndarray | None, b: np.ndarray | None) -> str:
    if a is None or b is None or not np.all(np.isfinite(a)):
        return "-"
    return f"{np.max(np.abs(centred(a) - centred(b))):.2e}"


def run_case(n_items: int, n_comparisons: int, args: argparse.Namespace) -> None:
    import choix  # test dependency; imported here so --help works without it

    rng = np.random.default_rng(args.seed)
    truth, winners, losers = simulate(n_items, n_comparisons, rng)
    pairs = list(zip(winners.tolist(), losers.tolist()))
    directed = coo_matrix((np.ones(winners.size), (losers, winners)), shape=(n_items, n_items))
    n_strong, _ = connected_components(directed, directed=True, connection="strong")
    ml_exists = n_strong == 1

    # Warm-up outside the timing (first-call imports and allocations).
    fit_bradley_terry(n_items, winners, losers, prior_sd=args.prior_sd)
    runs = []
    for _ in range(args.repeats):
        seconds, fit, _ = timed(lambda: fit_bradley_terry(n_items, winners, losers, prior_sd=args.prior_sd))
        runs.append((seconds, fit))
    our_seconds, ours = min(runs, key=lambda run: run[0])
    near_ml = fit_bradley_terry(
        n_items, winners, losers, prior_sd=NEAR_ML_PRIOR_SD, compute_standard_errors=False
    ).scores

    rows = [("ours (MAP + standard errors)", our_seconds, "0", "1.000", f"SE: {ours.se_method}, "
             f"{ours.iterations} Newton steps")]
    slow = n_items > SLOW_CHOIX_ITEMS
    if slow and args.skip_slow_choix:
        rows.append(("choix.opt_pairwise", None, "-", "-", "skipped (--skip-slow-choix)"))
        rows.append(("choix.ilsr_pairwise", None, "-", "-", "skipped (--skip-slow-choix)"))
    else:
        alpha = choix_alpha_for_prior(args.prior_sd)
        # choix's default tol (1e-5, relative) stops early enough to leave ~3e-4 logits
        # on the 10k case; a tighter one makes the comparison about definitions, not
        # about when each optimiser stopped.
        seconds, estimate, note = timed(
            lambda: choix.opt_pairwise(n_items, pairs, alpha=alpha, tol=args.choix_tol)
        )
        rows.append((
            f"choix.opt_pairwise (alpha={alpha:g})", seconds,
            max_abs_difference(estimate, ours.scores), _spearman(estimate, ours.scores),
            note or "same MAP problem as ours",
        ))
        ilsr_alpha = args.ilsr_alpha if not ml_exists else 0.0
        seconds, estimate, note = timed(lambda: choix.ilsr_pairwise(n_items, pairs, alpha=ilsr_alpha))
        if ml_exists:
            difference, explanation = max_abs_difference(estimate, near_ml), "ML; Δ vs ours at prior_sd=1000"
        else:
            difference = max_abs_difference(estimate, ours.scores)
            explanation = "ML does not exist; LSR-regularised, a different estimator"
        rows.append((
            f"choix.ilsr_pairwise (alpha={ilsr_alpha:g})", seconds, difference,
            _spearman(estimate, ours.scores), note or explanation,
        ))

    if ours.se_method != "exact" and not (slow and args.skip_slow_choix):
        # Reference: exact standard errors from the dense inverse (slow, ~N^3), to show
        # what the local approximation costs in accuracy.
        seconds, exact, note = timed(lambda: fit_bradley_terry(
            n_items, winners, losers, prior_sd=args.prior_sd, dense_se_limit=n_items
        ).standard_errors)
        if exact is not None:
            relative = ours.standard_errors / exact - 1
            note = (f"SE of ours vs exact: max rel. diff {np.max(np.abs(relative)):.2%}, "
                    f"mean {np.mean(relative):+.2%}")
        rows.append(("ours, exact dense SEs (reference)", seconds, "-", "-", note))

    print(f"\nN = {n_items:,} essays, {n_comparisons:,} comparisons "
          f"(prior_sd = {args.prior_sd:g}; ML exists: {'yes' if ml_exists else 'no'}; "
          f"Spearman ours vs truth {spearmanr(ours.scores, truth).statistic:.3f})")
    print(f"  {'method':<36} {'seconds':>9} {'max|Δ|':>9} {'ρ vs ours':>9}  note")
    for name, seconds, difference, rho, note in rows:
        shown = f"{seconds:9.3f}" if seconds is not None else f"{'-':>9}"
        print(f"  {name:<36} {shown} {difference:>9} {rho:>9}  {note}")


def _spearman(estimate: np.ndarray | None, reference: np.ndarray) -> str:
    if estimate is None or not np.all(np.isfinite(estimate)):
        return "-"
    return f"{spearmanr(estimate, reference).statistic:.3f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.benchmarks.bt_fit_speed",
        description=(
            "Time our Bradley-Terry fit (including standard errors) against choix.opt_pairwise "
            "and choix.ilsr_pairwise on N=1,000/10,000 and N=10,000/100,000 simulated "
            "comparisons, and show how far the estimates differ. Target: the 10k case in <= 1 s."
        ),
    )
    parser.add_argument("--skip-slow-choix", action="store_true",
                        help=f"do not run choix (nor our exact-SE reference) on cases with more than "
                             f"{SLOW_CHOIX_ITEMS:,} items: they need minutes and several GB there")
    parser.add_argument("--prior-sd", type=float, default=DEFAULT_PRIOR_SD,
                        help="SD of the Gaussian prior on scores, logits (default: %(default)s)")
    parser.add_argument("--choix-tol", type=float, default=1e-8,
                        help="tol passed to choix.opt_pairwise (choix's default is 1e-5; "
                             "default here: %(default)s)")
    parser.add_argument("--ilsr-alpha", type=float, default=0.01,
                        help="choix.ilsr_pairwise regularisation when ML does not exist "
                             "(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=2024, help="random seed (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="time our fit this many times and report the fastest (default: %(default)s)")
    parser.add_argument("--small-only", action="store_true", help="run only the N=1,000 case")
    args = parser.parse_args(argv)
    for n_items, n_comparisons in CASES[:1] if args.small_only else CASES:
        run_case(n_items, n_comparisons, args)


if __name__ == "__main__":
    main()
