"""Which pairs to compare next. Pure and deterministic under a seed; no I/O.

Items are indexed ``0 .. n_items-1`` (students and anchors alike: anchors take part
like any other essay). ``history`` lists the comparisons already made (or queued) as
(shown-first, shown-second) index pairs; outcomes are not needed, the scores carry them.

The rules, in priority order:

1. **Budget**: never more than ``n_pairs`` pairs; never an item with itself.
2. **Coverage first**: while any item has fewer than ``min_comparisons_per_item``
   comparisons, every selected pair contains such an item, and the pairs that make up
   most of the missing comparisons come first, so no item gets extra comparisons while
   another still lacks its minimum.
3. **No repeats while unseen informative pairs remain**: a pair seen before is only
   chosen for items that have no unseen partner whose outcome is still in doubt
   (predicted P(win) within [5 %, 95 %]).
4. **Spread**: selection proceeds in passes in which each item appears at most once,
   and items whose count runs ahead of the least-compared item by more than one are
   held back, so a few items cannot hog the comparisons.
5. **Information**: among what rules 1–4 allow, pairs are ranked by expected
   information gain. With planning scores ``m`` and variances ``v`` (below) the score
   difference of (i, j) is taken as d ~ N(m_i - m_j, v_i + v_j); a comparison adds
   Fisher information E[p(1-p)] about d, and the Gaussian information gain is
   ``0.5 * log(1 + var(d) * E[p(1-p)])``: close pairs (p near 0.5) whose difference is
   still uncertain come first. E[p(1-p)] uses the probit approximation
   ``kappa * p'(kappa * mu)``, kappa = 1/sqrt(1 + pi var / 8). Without scores every
   pair is equally informative and the choice is a seeded random matching.
6. **Position balance**: each pair is oriented so that the item shown first more often
   so far is shown second, keeping each item's first/second counts within about one.

Honest adaptivity. Pairing on scores that are mostly noise makes winners meet winners,
spreads the scale and makes reliability look high even under a judge that is only
guessing. So the planning scores and variances are the fitted ones pulled towards their
means by the *adaptivity* (0..1), which follows the scale separation reliability of the
current fit (see ``adaptivity_from_reliability``): a coin-flip judge keeps the design
random, a judge that separates essays unlocks adaptive pairing within a few rounds.
The ranking is also perturbed by seeded Gumbel noise (``exploration``), so pairs are
drawn roughly in proportion to gain ** (1 / exploration) rather than by strict maximum:
strict maxima give chain-like designs that place essays well locally and badly
globally. ``scripts/benchmarks/pairing_efficiency.py`` measures both effects.

Scale: up to ``FULL_ENUMERATION_LIMIT`` items every pair is a candidate; beyond it each
item's candidates are its neighbours in score order plus a few random items, so the
cost is O(n · candidates) numpy work per pass rather than O(n²).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from services.cj_assessment_service.cj_core_logic.scoring import scale_separation_reliability

FULL_ENUMERATION_LIMIT = 160
# Large n: neighbours on each side in score order, and random partners, per item.
SCORE_NEIGHBOURS = 12
RANDOM_PARTNERS = 8
# Lagging items up to this many get all pairs among themselves as candidates.
SMALL_POOL = 64
# Pairs whose predicted outcome is this lopsided are "uninformative": repeating a close
# pair is then allowed instead (rule 3).
UNINFORMATIVE_P = 0.05
_UNINFORMATIVE_INFO = UNINFORMATIVE_P * (1 - UNINFORMATIVE_P)
# Each appearance above the least-compared item halves a pair's priority (rule 4).
_APPEARANCE_DECAY = 0.5
# Gumbel noise scale on log-priorities; pairs are drawn roughly ∝ gain ** (1 / 0.08).
DEFAULT_EXPLORATION = 0.08
# Reliability ramp over which pair selection goes from random to fully adaptive. Under a
# coin-flip judge with random pairs the reliability of N = 100 essays stays below ~0.2;
# under a judge that agrees 80 % with the truth it passes 0.4 after about 6 appearances.
ADAPTIVE_FROM_RELIABILITY = 0.2
FULLY_ADAPTIVE_AT_RELIABILITY = 0.5


def select_pairs(
    n_items: int,
    history: Sequence[tuple[int, int]],
    scores: np.ndarray | None,
    standard_errors: np.ndarray | None,
    *,
    n_pairs: int,
    min_comparisons_per_item: int,
    seed: int | np.random.Generator,
    first_counts: np.ndarray | None = None,
    exploration: float = DEFAULT_EXPLORATION,
) -> list[tuple[int, int]]:
    """Up to ``n_pairs`` ordered pairs (shown-first, shown-second) to compare next.

    ``scores``/``standard_errors`` are the current fit (None before any fit; a missing
    ``standard_errors`` counts as 0). ``first_counts`` overrides how often each item was
    shown first (otherwise counted from ``history``). Returns [] when n_items < 2.
    """
    if n_items < 2 or n_pairs <= 0:
        return []
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    state = _SelectionState.from_inputs(n_items, history, scores, standard_errors, first_counts)

    selected: list[tuple[int, int]] = []
    slack = 1
    # Every pass either selects something or widens the spread allowance, and after the
    # allowance covers every item a pass always selects something; the bound is a backstop.
    for _ in range(4 * n_pairs + n_items + 16):
        if len(selected) >= n_pairs:
            break
        chosen = _run_pass(state, rng, n_pairs - len(selected), min_comparisons_per_item, slack, exploration)
        if not chosen:
            if slack > int(state.counts.max() - state.counts.min()) + 1:
                break
            slack += 1
            continue
        slack = 1
        for low, high in chosen:
            selected.append(state.orient_and_record(low, high, rng))
        state.mark_seen(chosen)
    return selected


# --------------------------------------------------------------------------- internals


class _SelectionState:
    """Counts and seen pairs, updated as pairs are selected within one call."""

    def __init__(self, n: int, counts: np.ndarray, firsts: np.ndarray, seen_keys: np.ndarray,
                 seen_times: np.ndarray, means: np.ndarray, variances: np.ndarray, fitted: bool) -> None:
        self.n = n
        self.counts = counts
        self.firsts = firsts
        self.seen_keys = seen_keys  # sorted unique keys low * n + high
        self.seen_times = seen_times
        self.means = means
        self.variances = variances
        self.fitted = fitted
        self.adaptivity = adaptivity_from_reliability(means, variances) if fitted else 0.0
        # Scores and variances as the pair selection plans with them: pulled towards their
        # means by how little of the scores' spread is shown to be real (see
        # adaptivity_from_reliability). Both are pulled: differences in standard errors
        # come from the same untrusted fit (extreme records have larger errors), and
        # following them alone would pair the unbeaten with the winless.
        self.planning_means = means.mean() + self.adaptivity * (means - means.mean())
        self.planning_variances = variances.mean() + self.adaptivity * (variances - variances.mean())

    @classmethod
    def from_inputs(cls, n: int, history: Sequence[tuple[int, int]], scores: np.ndarray | None,
                    standard_errors: np.ndarray | None, first_counts: np.ndarray | None) -> _SelectionState:
        pairs = np.asarray(history, dtype=np.int64).reshape(-1, 2)
        if pairs.size and (pairs.min() < 0 or pairs.max() >= n):
            raise ValueError(f"history refers to items outside 0..{n - 1}")
        if np.any(pairs[:, 0] == pairs[:, 1]):
            raise ValueError("history contains an item compared with itself")
        counts = np.bincount(pairs.ravel(), minlength=n).astype(np.int64)
        if first_counts is not None:
            firsts = np.asarray(first_counts, dtype=np.int64).copy()
            if firsts.shape != (n,):
                raise ValueError(f"first_counts must have shape ({n},)")
        else:
            firsts = np.bincount(pairs[:, 0], minlength=n).astype(np.int64)
        low, high = np.minimum(pairs[:, 0], pairs[:, 1]), np.maximum(pairs[:, 0], pairs[:, 1])
        seen_keys, seen_times = np.unique(low * n + high, return_counts=True)

        fitted = scores is not None
        means = np.zeros(n) if scores is None else np.asarray(scores, dtype=float)
        ses = np.zeros(n) if standard_errors is None else np.asarray(standard_errors, dtype=float)
        if means.shape != (n,) or ses.shape != (n,):
            raise ValueError(f"scores and standard_errors must have shape ({n},)")
        if not (np.all(np.isfinite(means)) and np.all(np.isfinite(ses))):
            raise ValueError("scores and standard_errors must be finite")
        return cls(n, counts, firsts, seen_keys, seen_times.astype(np.int64), means, ses**2, fitted)

    def times_seen(self, keys: np.ndarray) -> np.ndarray:
        times = np.zeros(keys.size, dtype=np.int64)
        if self.seen_keys.size:
            position = np.clip(np.searchsorted(self.seen_keys, keys), 0, self.seen_keys.size - 1)
            hit = self.seen_keys[position] == keys
            times[hit] = self.seen_times[position[hit]]
        return times

    def orient_and_record(self, i: int, j: int, rng: np.random.Generator) -> tuple[int, int]:
        # Balance = times shown first minus times shown second; the more "first-heavy" item goes second.
        balance_i = 2 * self.firsts[i] - self.counts[i]
        balance_j = 2 * self.firsts[j] - self.counts[j]
        if balance_i > balance_j or (balance_i == balance_j and rng.random() < 0.5):
            i, j = j, i
        self.firsts[i] += 1
        self.counts[i] += 1
        self.counts[j] += 1
        return int(i), int(j)

    def mark_seen(self, pairs: list[tuple[int, int]]) -> None:
        """Add pairs selected in this call to the seen set (once per pass, vectorised)."""
        chosen = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        keys = np.minimum(chosen[:, 0], chosen[:, 1]) * self.n + np.maximum(chosen[:, 0], chosen[:, 1])
        all_keys = np.concatenate([np.repeat(self.seen_keys, self.seen_times), keys])
        self.seen_keys, times = np.unique(all_keys, return_counts=True)
        self.seen_times = times.astype(np.int64)


def adaptivity_from_reliability(means: np.ndarray, variances: np.ndarray) -> float:
    """How far to trust the current scores when choosing pairs: 0 (not at all) .. 1 (fully).

    Pairing on scores that are mostly noise does not just waste comparisons: winners keep
    meeting winners, the scale spreads, and reliability looks high under a judge that is
    only guessing. So the scores are trusted in proportion to the evidence that their
    spread is real — the scale separation reliability of the current fit — ramping from
    0 at ``ADAPTIVE_FROM_RELIABILITY`` to 1 at ``FULLY_ADAPTIVE_AT_RELIABILITY``. Under a
    coin-flip judge the reliability stays near 0, so does the adaptivity, and the design
    stays random; a judge that separates essays unlocks adaptive pairing within a few rounds.
    """
    reliability = scale_separation_reliability(means, np.sqrt(variances))
    ramp = (reliability - ADAPTIVE_FROM_RELIABILITY) / (FULLY_ADAPTIVE_AT_RELIABILITY - ADAPTIVE_FROM_RELIABILITY)
    return float(np.clip(ramp, 0.0, 1.0))


def _candidate_edges(
    state: _SelectionState, below_min: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Unique unordered candidate pairs (low, high)."""
    n = state.n
    if n <= FULL_ENUMERATION_LIMIT:
        low, high = np.triu_indices(n, k=1)
        return low.astype(np.int64), high.astype(np.int64)

    parts_low: list[np.ndarray] = []
    parts_high: list[np.ndarray] = []

    def add_score_neighbours(members: np.ndarray) -> None:
        # Random tie-break so that equal scores (e.g. before any fit) give random neighbours.
        order = members[np.lexsort((rng.random(members.size), state.means[members]))]
        for offset in range(1, min(SCORE_NEIGHBOURS, order.size - 1) + 1):
            parts_low.append(order[:-offset])
            parts_high.append(order[offset:])

    def add_random_partners(members: np.ndarray, pool: np.ndarray) -> None:
        for _ in range(RANDOM_PARTNERS):
            parts_low.append(members)
            parts_high.append(pool[rng.integers(0, pool.size, size=members.size)])

    everyone = np.arange(n, dtype=np.int64)
    add_score_neighbours(everyone)
    add_random_partners(everyone, everyone)
    # Items that lag behind (below the minimum, or at the lowest count, such as those left
    # unmatched by an earlier pass) need candidates among each other, wherever they sit in
    # score order; otherwise they could only be paired with items that are further ahead.
    lowest = np.flatnonzero(state.counts == state.counts.min())
    for laggards in (below_min, lowest):
        if laggards.size <= SMALL_POOL:
            # Few enough to give them every pair among themselves, so none is stranded.
            low_pool, high_pool = np.triu_indices(laggards.size, k=1)
            parts_low.append(laggards[low_pool])
            parts_high.append(laggards[high_pool])
        elif laggards.size < n:
            add_score_neighbours(laggards)
            add_random_partners(laggards, laggards)

    low_all = np.concatenate(parts_low)
    high_all = np.concatenate(parts_high)
    low, high = np.minimum(low_all, high_all), np.maximum(low_all, high_all)
    keys = np.unique((low * n + high)[low != high])
    return keys // n, keys % n


def _expected_information(state: _SelectionState, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(information gain used for ranking, E[p(1-p)] used to judge whether a pair is still informative)."""
    if not state.fitted:
        return np.ones(low.size), np.full(low.size, 0.25)
    mean_difference = state.planning_means[low] - state.planning_means[high]
    variance = state.planning_variances[low] + state.planning_variances[high]
    kappa = 1.0 / np.sqrt(1.0 + math.pi * variance / 8.0)
    p = 1.0 / (1.0 + np.exp(-kappa * mean_difference))
    fisher = kappa * p * (1.0 - p)
    # Without standard errors (a caller that has none) the gain degenerates to closeness.
    gain = np.where(variance > 0, 0.5 * np.log1p(variance * fisher), fisher)
    return gain, fisher


def _run_pass(state: _SelectionState, rng: np.random.Generator, budget: int, min_comparisons: int,
              slack: int, exploration: float) -> list[tuple[int, int]]:
    """One greedy matching: each item at most once, best-ranked allowed pairs first."""
    counts = state.counts
    below_min = np.flatnonzero(counts < min_comparisons)
    coverage = below_min.size > 0
    low, high = _candidate_edges(state, below_min, rng)
    if low.size == 0:
        return []
    keys = low * state.n + high
    times_seen = state.times_seen(keys)
    gain, fisher = _expected_information(state, low, high)

    if coverage:
        # Tier = comparisons still missing at both ends, so the items furthest from the
        # minimum are served first (and leftovers of an earlier pass before anyone else).
        tier = np.maximum(min_comparisons - counts[low], 0) + np.maximum(min_comparisons - counts[high], 0)
        allowed = tier >= 1
        floor = counts[below_min].min()
    else:
        tier = np.zeros(low.size, dtype=np.int64)
        floor = counts.min()
        allowed = (counts[low] <= floor + slack) & (counts[high] <= floor + slack)

    # Rule 3: an item may repeat a pair only when it has no unseen informative partner left.
    unseen_informative = (times_seen == 0) & (fisher >= _UNINFORMATIVE_INFO)
    has_unseen_informative = np.zeros(state.n, dtype=bool)
    has_unseen_informative[low[unseen_informative]] = True
    has_unseen_informative[high[unseen_informative]] = True
    repeat_allowed = ~(has_unseen_informative[low] | has_unseen_informative[high])
    allowed &= (times_seen == 0) | repeat_allowed
    if not allowed.any():
        return []
    if coverage:
        # One tier per pass: items left over by the top tier wait for the next pass (with
        # fresh candidates among themselves) instead of taking a partner that is further ahead.
        allowed &= tier == tier[allowed].max()

    # Rule 4 (soft part) and rule 5, with seeded exploration noise.
    excess = (counts[low] + counts[high] - 2 * floor).astype(float)
    log_priority = np.log(np.maximum(gain, 1e-300)) - np.log1p(times_seen) + excess * math.log(_APPEARANCE_DECAY)
    if exploration > 0:
        # Gumbel-max: the greedy matching then draws pairs roughly in proportion to
        # priority ** (1 / exploration) instead of always taking the maximum.
        log_priority = log_priority + exploration * rng.gumbel(size=low.size)

    index = np.flatnonzero(allowed)
    # Sort: coverage tier, then unseen-informative before the rest, then priority.
    order = index[np.lexsort((-log_priority[index], -unseen_informative[index].astype(np.int64), -tier[index]))]

    used = np.zeros(state.n, dtype=bool)
    chosen: list[tuple[int, int]] = []
    for edge in order:
        i, j = int(low[edge]), int(high[edge])
        if used[i] or used[j]:
            continue
        used[i] = used[j] = True
        chosen.append((i, j))
        if len(chosen) >= budget:
            break
    return chosen
