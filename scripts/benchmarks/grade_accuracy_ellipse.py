"""Benchmark: projected grades against human scores on real essays (ELLIPSE).

Issue 5, benchmark 3. Each ELLIPSE prompt file holds learner essays with an averaged
human ``overall`` score, 1.0–5.0 in steps of 0.5 (a 9-step scale). For each file and
repetition:

1. **Anchors**: from every ``overall`` level present, ``--anchors-per-level`` essays
   at random (but never the last essay of a level that has two or more, so rare
   levels still have a student to grade); they carry their human score as grade. The
   remaining essays are the students.
2. **Simulated judge**: each essay gets a latent quality
   ``slope * (overall - mean overall) + Normal(0, judge_noise²)`` logits; outcomes are
   Bradley–Terry draws on that quality. ``slope`` (default 2 logits per point, i.e. 1
   logit per half-step) sets how sharply the judge separates human levels;
   ``judge_noise`` (default 0.5 logits, half a step) is the judge's per-essay
   disagreement with the averaged human score. The text is never read: this measures
   the scoring + projection pipeline on a real score distribution, not an LLM.
3. **Pairing**: random rounds in which every essay appears once (an odd one out sits
   out), ``--comparisons-per-essay`` rounds. (Our adaptive pair selection is not used
   here, on purpose: this isolates calibration.)
4. **Fit and project**: ``scoring.fit_bradley_terry`` with the default prior, then
   ``projection.project_grades`` on a custom 9-step scale "1.0" … "5.0".

Reported per file (mean ± SD over repetitions) and pooled over files: exact
agreement of projected grade with the human ``overall``, agreement within one step
(±0.5), quadratic weighted kappa, the mean probability given to the human grade,
Spearman ρ of fitted scores with the human scores, the anchors' leave-one-out
exact agreement, and an "ideal exact" reference: the exact agreement had the
boundaries been fitted on every essay's human score (what perfect calibration would
give with this judge and budget).

Data: ``--data`` (a folder of ``*.jsonl``); default is the project copy in
``scripts/cj_experiments_runners/eng5_np/data/ellipse/``, falling back to
``/work/shared/data/ellipse`` if that is missing. ELLIPSE corpus: Crossley et al.
(2023), CC BY-NC-SA 4.0.

Run: ``.venv/bin/python -m scripts.benchmarks.grade_accuracy_ellipse``
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import expit
from scipy.stats import spearmanr

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from services.cj_assessment_service.cj_core_logic.grade_scales import make_grade_scale  # noqa: E402
from services.cj_assessment_service.cj_core_logic.projection import (  # noqa: E402
    project_grades,
    quadratic_weighted_kappa,
)
from services.cj_assessment_service.cj_core_logic.scoring import (  # noqa: E402
    DEFAULT_PRIOR_SD,
    fit_bradley_terry,
)

PROJECT_DATA = _ROOT / "scripts" / "cj_experiments_runners" / "eng5_np" / "data" / "ellipse"
SHARED_DATA = Path("/work/shared/data/ellipse")
LEVELS = tuple(f"{1.0 + 0.5 * k:.1f}" for k in range(9))  # "1.0", "1.5", ..., "5.0"
SCALE = make_grade_scale("ellipse_overall_9_step", LEVELS, description="ELLIPSE overall score, 1.0-5.0")


@dataclass(frozen=True)
class Essay:
    essay_id: str
    level: int  # 0..8 for overall 1.0..5.0


def default_data_dir() -> Path:
    return PROJECT_DATA if PROJECT_DATA.is_dir() and any(PROJECT_DATA.glob("*.jsonl")) else SHARED_DATA


def load_essays(path: Path) -> list[Essay]:
    essays = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            record = json.loads(line)
            overall = float(record["overall"])
            level = round((overall - 1.0) * 2)
            if not (0 <= level < len(LEVELS)) or abs(1.0 + level / 2 - overall) > 1e-9:
                raise ValueError(f"{path}:{line_number}: overall {overall} is not on the 1.0-5.0 half-step scale")
            essays.append(Essay(str(record["essay_id"]), level))
    return essays


def choose_anchors(levels: np.ndarray, per_level: int, rng: np.random.Generator) -> np.ndarray:
    anchors = []
    for level in np.unique(levels):
        members = rng.permutation(np.flatnonzero(levels == level))
        # Leave at least one student at every level that has two or more essays.
        take = min(per_level, members.size - 1) if members.size > 1 else 1
        anchors.extend(members[:take].tolist())
    return np.array(sorted(anchors), dtype=np.int64)


def random_rounds(n_items: int, rounds: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    first, second = [], []
    for _ in range(rounds):
        order = rng.permutation(n_items)
        first.append(order[0 : n_items - 1 : 2])
        second.append(order[1:n_items:2])
    return np.concatenate(first), np.concatenate(second)


@dataclass(frozen=True)
class RunFigures:
    exact: float
    within_one: float
    kappa: float
    p_human_grade: float
    spearman: float
    anchor_loo_exact: float | None
    ideal_exact: float | None
    true_levels: np.ndarray
    projected_levels: np.ndarray


def run_once(essays: list[Essay], args: argparse.Namespace, rng: np.random.Generator) -> RunFigures:
    levels = np.array([e.level for e in essays])
    overall = 1.0 + levels / 2
    n = levels.size
    quality = args.judge_slope * (overall - overall.mean()) + rng.normal(0.0, args.judge_noise, n)
    first, second = random_rounds(n, args.comparisons_per_essay, rng)
    first_won = rng.random(first.size) < expit(quality[first] - quality[second])
    winners, losers = np.where(first_won, first, second), np.where(first_won, second, first)
    fit = fit_bradley_terry(n, winners, losers, prior_sd=args.prior_sd)

    anchors = choose_anchors(levels, args.anchors_per_level, rng)
    result = project_grades(
        fit.scores, fit.standard_errors, {int(i): LEVELS[levels[i]] for i in anchors}, SCALE
    )
    if not result.available:
        raise RuntimeError(f"projection unavailable: {result.reason}")
    student_idx = np.array([s.index for s in result.students])
    projected = np.array([SCALE.rank(s.grade) for s in result.students])
    truth = levels[student_idx]
    # Reference only the benchmark can compute: boundaries from a linear fit of the
    # fitted scores on the human levels of *all* essays, i.e. (near-)perfect
    # calibration. The gap to it is what the anchors cost; the rest is judge noise
    # and the standard errors of ~10 comparisons.
    slope, intercept = np.polyfit(levels, fit.scores, 1)
    ideal = np.clip(np.rint((fit.scores[student_idx] - intercept) / slope), 0, len(LEVELS) - 1)
    return RunFigures(
        exact=float(np.mean(projected == truth)),
        within_one=float(np.mean(np.abs(projected - truth) <= 1)),
        kappa=quadratic_weighted_kappa(truth, projected, len(LEVELS)),
        p_human_grade=float(np.mean([s.probabilities[LEVELS[t]] for s, t in zip(result.students, truth)])),
        spearman=float(spearmanr(fit.scores, overall).statistic),
        anchor_loo_exact=result.loo_exact_agreement,
        ideal_exact=float(np.mean(ideal == truth)),
        true_levels=truth,
        projected_levels=projected,
    )


def summarise(name: str, runs: list[RunFigures], n_essays: int | str, n_students: str) -> str:
    def cell(values: list[float]) -> str:
        return f"{np.mean(values):.3f} ± {np.std(values):.3f}"

    loo = [r.anchor_loo_exact for r in runs if r.anchor_loo_exact is not None]
    ideal = [r.ideal_exact for r in runs if r.ideal_exact is not None]
    return (
        f"  {name:<26} {n_essays!s:>6} {n_students:>8}  {cell([r.exact for r in runs]):>15}"
        f"  {cell([r.within_one for r in runs]):>15}  {cell([r.kappa for r in runs]):>15}"
        f"  {cell([r.p_human_grade for r in runs]):>15}  {cell([r.spearman for r in runs]):>15}"
        f"  {cell(loo) if loo else '-':>15}  {cell(ideal) if ideal else '-':>15}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.benchmarks.grade_accuracy_ellipse",
        description=(
            "Projected grades vs human ELLIPSE 'overall' scores with anchors from each score "
            "level and a simulated Bradley-Terry judge driven by the human scores. Prints exact "
            "and within-one-step agreement and quadratic weighted kappa per prompt file."
        ),
    )
    parser.add_argument("--data", type=Path, default=None,
                        help=f"folder of ELLIPSE *.jsonl files (default: {PROJECT_DATA.relative_to(_ROOT)}, "
                             f"else {SHARED_DATA})")
    parser.add_argument("--anchors-per-level", type=int, default=2,
                        help="anchors drawn from each overall level (default: %(default)s)")
    parser.add_argument("--comparisons-per-essay", type=int, default=10,
                        help="appearances per essay = random pairing rounds (default: %(default)s)")
    parser.add_argument("--judge-slope", type=float, default=2.0,
                        help="judge logits per human overall point (default: %(default)s)")
    parser.add_argument("--judge-noise", type=float, default=0.5,
                        help="SD (logits) of the judge's per-essay disagreement with humans (default: %(default)s)")
    parser.add_argument("--prior-sd", type=float, default=DEFAULT_PRIOR_SD,
                        help="BT prior SD in logits (default: %(default)s)")
    parser.add_argument("--repetitions", type=int, default=20,
                        help="independent anchor draws + judgement runs per file (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=5, help="random seed (default: %(default)s)")
    args = parser.parse_args(argv)

    data_dir = args.data or default_data_dir()
    files = sorted(data_dir.glob("*.jsonl"))
    if not files:
        parser.error(f"no *.jsonl files in {data_dir}")
    rng = np.random.default_rng(args.seed)
    print(f"data: {data_dir}")
    print(f"judge: quality = {args.judge_slope:g} * (overall - mean) + N(0, {args.judge_noise:g}²) logits; "
          f"{args.comparisons_per_essay} random-pairing comparisons per essay; "
          f"{args.anchors_per_level} anchors per level; prior_sd {args.prior_sd:g}; "
          f"{args.repetitions} repetitions (mean ± SD)")
    header = (f"  {'prompt file':<26} {'essays':>6} {'students':>8}  {'exact':>15}  {'within one':>15}"
              f"  {'QWK':>15}  {'P(human grade)':>15}  {'Spearman':>15}  {'anchor LOO':>15}"
              f"  {'ideal exact':>15}")
    print(header)
    pooled: list[list[RunFigures]] = [[] for _ in range(args.repetitions)]
    total_essays = 0
    for path in files:
        essays = load_essays(path)
        total_essays += len(essays)
        runs = [run_once(essays, args, rng) for _ in range(args.repetitions)]
        for rep, run in enumerate(runs):
            pooled[rep].append(run)
        students = {len(r.true_levels) for r in runs}
        print(summarise(path.stem, runs, len(essays), "/".join(str(s) for s in sorted(students))))

    pooled_runs = []
    for per_file in pooled:
        truth = np.concatenate([r.true_levels for r in per_file])
        projected = np.concatenate([r.projected_levels for r in per_file])
        pooled_runs.append(
            RunFigures(
                exact=float(np.mean(projected == truth)),
                within_one=float(np.mean(np.abs(projected - truth) <= 1)),
                kappa=quadratic_weighted_kappa(truth, projected, len(LEVELS)),
                p_human_grade=float(np.average(
                    [r.p_human_grade for r in per_file], weights=[len(r.true_levels) for r in per_file])),
                spearman=float(np.mean([r.spearman for r in per_file])),
                anchor_loo_exact=None,
                ideal_exact=float(np.average(
                    [r.ideal_exact for r in per_file], weights=[len(r.true_levels) for r in per_file])),
                true_levels=truth,
                projected_levels=projected,
            )
        )
    print(summarise("pooled (all files)", pooled_runs, total_essays, str(len(pooled_runs[0].true_levels))))
    print("  (pooled Spearman = mean of per-file values; students pooled for exact/within-one/QWK;")
    print("   'ideal exact' = exact agreement had the boundaries been fitted on every essay's human")
    print("   score, a ceiling for this judge and budget that no anchor choice can beat by much)")


if __name__ == "__main__":
    main()
