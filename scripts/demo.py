"""The main job, in one command: ``python3 run.py demo``.

Starts the local dev stack (PostgreSQL + Content Service + CJ Assessment Service),
creates an assignment for one ELLIPSE prompt on a custom 9-step scale "1.0" … "5.0"
(the human ``overall`` score), registers anchors chosen from each score level,
runs a comparative-judgement batch over a sample of the remaining essays, and prints
the ranking, the projected grades and their agreement with the human scores, and
the path of the HTML report.

The judge is the service's configured default: the offline heuristic baseline unless
you configured an LLM for the service (e.g. CJ_ASSESSMENT_SERVICE_JUDGE_KIND=openai and
an API key, see .env.example), or pass --judge. Running it again reuses what exists:
the assignment and anchors are unchanged, and a new batch is run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import datetime
from pathlib import Path


from rich.console import Console

from scripts import devstack
from scripts.cj_experiments_runners.eng5_np import __version__
from scripts.cj_experiments_runners.eng5_np.artefacts import default_output_dir
from scripts.cj_experiments_runners.eng5_np.client import Endpoint
from scripts.cj_experiments_runners.eng5_np.data.build_data_files import (
    ELLIPSE_DIR,
    anchor_records,
    load_prompt,
    overall_grade,
    split_anchors,
)
from scripts.cj_experiments_runners.eng5_np.errors import RunnerError
from scripts.cj_experiments_runners.eng5_np.inputs import Essay, EssaySet
from scripts.cj_experiments_runners.eng5_np.runner import Runner, execute

SCALE_ID = "ellipse_overall_9_step"
SCALE_GRADES = [f"{x / 2:.1f}" for x in range(2, 11)]  # "1.0" … "5.0"
DEFAULT_ESSAYS = 60
INSTRUCTIONS = (
    "Two essays written by English language learners (grades 8-12) answer the same prompt. "
    "Decide which one shows the higher overall English writing proficiency: cohesion, syntax, "
    "vocabulary, phraseology, grammar and conventions."
)


def stratified_sample(essays: list[dict], n: int) -> list[dict]:
    """n essays spread evenly over the score-sorted list (same distribution, deterministic)."""
    ordered = sorted(essays, key=lambda e: (float(e["overall"]), e["essay_id"]))
    if n >= len(ordered):
        return ordered
    if n == 1:
        return [ordered[len(ordered) // 2]]
    return [ordered[round(i * (len(ordered) - 1) / (n - 1))] for i in range(n)]


def build_inputs(prompt: str, n_students: int) -> tuple[EssaySet, EssaySet, str]:
    essays = load_prompt(prompt)
    anchors_raw, students_raw = split_anchors(essays)
    anchors = EssaySet(
        [
            Essay(essay_id=a["essay_id"], text=a["text"], source=f"ellipse/{prompt}.jsonl", grade=a["grade"],
                  label=a["anchor_label"], human_score=a["human_overall"])
            for a in anchor_records(anchors_raw, overall_grade)
        ],
        f"ellipse/{prompt}.jsonl (anchors)",
        SCALE_ID,
    )
    students = EssaySet(
        [
            Essay(essay_id=e["essay_id"], text=e["text"], source=f"ellipse/{prompt}.jsonl",
                  human_grade=overall_grade(e["overall"]), human_score=float(e["overall"]))
            for e in stratified_sample(students_raw, n_students)
        ],
        f"ellipse/{prompt}.jsonl (students)",
    )
    return anchors, students, essays[0]["prompt"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    prompts = sorted(p.stem for p in ELLIPSE_DIR.glob("*.jsonl"))
    parser = argparse.ArgumentParser(prog="python3 run.py demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--essays", type=int, default=DEFAULT_ESSAYS,
                        help="number of student essays (default %(default)s; anchors come on top)")
    parser.add_argument("--max-comparisons", type=int,
                        help="comparison budget (default: the service's, about 10 comparisons per essay)")
    parser.add_argument("--prompt", default="distance_learning", choices=prompts, help="ELLIPSE prompt")
    parser.add_argument("--judge", choices=("heuristic", "openai", "anthropic", "simulated"),
                        help="judge for this batch (default: the service's configured judge); simulated = "
                        "a noisy judge that knows the human scores, to see what CJ recovers")
    parser.add_argument("--judge-model", help="model for --judge openai/anthropic")
    parser.add_argument("--batch-id", help="batch id (default: a new one per run)")
    parser.add_argument("--output", help="artefact folder (default runs/<time>_<batch>)")
    parser.add_argument("--completion-timeout", type=float, default=1200, help="seconds (default %(default)s)")
    stop = parser.add_mutually_exclusive_group()
    stop.add_argument("--stop-after", action="store_true", help="stop the dev stack when done")
    stop.add_argument("--keep-running", action="store_true", help="leave the dev stack running (the default)")
    args = parser.parse_args(argv)
    if args.essays < 2:
        parser.error("--essays must be at least 2")
    return args


async def run_demo(args: argparse.Namespace, state: dict, console: Console) -> int:
    services, tokens = state.get("services", {}), state.get("tokens", {})
    cj = Endpoint("CJ Assessment Service", services["cj_assessment_service"]["url"],
                  tokens.get("cj_assessment_service"), "dev stack", "dev stack")
    content = Endpoint("Content Service", services["content_service"]["url"], tokens.get("content_service"),
                       "dev stack", "dev stack")
    anchors, students, prompt_name = build_inputs(args.prompt, args.essays)
    assignment_id = f"demo-ellipse-{args.prompt.replace('_', '-')}"
    max_comparisons = args.max_comparisons  # None: the service's default budget (about 10 per essay)
    batch_id = args.batch_id or f"demo-{args.prompt.replace('_', '-')}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    judge: dict | None = {"kind": args.judge} if args.judge else None
    if judge and args.judge_model:
        judge["model"] = args.judge_model
    if args.judge == "simulated":
        # A judge that knows the human scores (one score step = one logit) plus noise: what CJ
        # recovers from a judge that agrees with the human raters. Refs: "anchor:<label>", essay ids.
        judge["true_scores"] = {
            **{f"anchor:{a.label}": 2.0 * a.human_score for a in anchors.essays if a.human_score is not None},
            **{e.essay_id: 2.0 * e.human_score for e in students.essays if e.human_score is not None},
        }

    async with Runner(cj, content, console=console) as runner:
        _, action = await runner.ensure_assignment(
            assignment_id, scale_id=SCALE_ID, grades=SCALE_GRADES, instructions=INSTRUCTIONS,
            student_prompt=f"ELLIPSE prompt: {prompt_name}")
        console.print(f"assignment {assignment_id}: {action} (scale {SCALE_ID}: {', '.join(SCALE_GRADES)})")
        scale = await runner.scale(SCALE_ID)
        counts = await runner.register_anchors(assignment_id, anchors, scale)
        if not counts.get("created") and not counts.get("updated"):
            console.print(f"anchors: unchanged ({len(anchors.essays)} already registered)")
        else:
            console.print("anchors: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n)
                          + f" ({len(anchors.essays)} anchors over the levels "
                            f"{', '.join(sorted({a.grade for a in anchors.essays}))})")
        console.print(f"students: {len(students.essays)} essays from ELLIPSE '{prompt_name}' "
                      "(a sample spread over the score levels)")
        output_dir = Path(args.output) if args.output else None
        outcome = await execute(
            runner, assignment_id=assignment_id, batch_id=batch_id, students=students,
            max_comparisons=max_comparisons, judge=judge,
            metadata={"runner": "demo", "runner_version": __version__, "ellipse_prompt": args.prompt},
            output_dir=output_dir or default_output_dir(batch_id), await_completion=True,
            completion_timeout=args.completion_timeout,
            inputs_extra={"anchors_source": anchors.source, "anchors_file": [a.summary() for a in anchors.essays]},
        )
    results = outcome.results
    if results is not None:
        judge_kind = (results.judge or {}).get("name") or (results.judge or {}).get("kind")
        if judge_kind == "heuristic":
            console.print("[yellow]judge: the offline heuristic baseline (text features only, not an assessor); "
                          "configure an LLM judge for real assessments (see README)[/yellow]")
        elif judge_kind == "simulated":
            console.print("[yellow]judge: simulated from the human scores plus noise (not an assessment)[/yellow]")
        elif judge_kind:
            console.print(f"judge: {judge_kind} {results.judge.get('model') or ''}")
    console.print(f"[bold]done in {outcome.elapsed_s:.0f}s[/bold] — report: {outcome.paths.get('html')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Piped or captured output is not cut at 80 columns.
    console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 140)
    started = time.monotonic()
    console.print("[bold]== starting the dev stack[/bold]")
    state = devstack.start([])
    console.print("[bold]== assignment, anchors and a comparative-judgement batch[/bold]")
    try:
        code = asyncio.run(run_demo(args, state, console))
    except RunnerError as exc:
        Console(stderr=True).print(exc.line(), markup=False, soft_wrap=True)
        code = exc.exit_code
    console.print(f"total {time.monotonic() - started:.0f}s")
    if args.stop_after:
        devstack.stop([])
    else:
        console.print("the dev stack keeps running: stop it with `python3 run.py dev stop` "
                      "(status: `python3 run.py dev status`)")
    return code


if __name__ == "__main__":
    sys.exit(main())
