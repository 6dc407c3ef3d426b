"""ENG5 NP batch runner: drive the CJ Assessment Service and the Content Service from a terminal.

Modes (--mode), each with an example (prefix: python3 run.py cli, or
python -m scripts.cj_experiments_runners.eng5_np.cli, or pdm run eng5):

  plan               Show what would be sent and check both services, the assignment and
                     its anchors' integrity; writes nothing.
                       --mode plan --assignment-id A1 --anchors scripts/cj_experiments_runners/eng5_np/data/eng5_np_anchor_essays.json
  dry-run            Like plan, and write the run artefact skeleton (assessment_run.json).
                       --mode dry-run --assignment-id A1 --output-dir runs/try
  create-assignment  Create or update an assignment (update-assignment is the same); with
                     --grades also a custom grade scale named by --grade-scale.
                       --mode create-assignment --assignment-id A1 --grade-scale eng5_np_legacy_9_step
                       --mode create-assignment --assignment-id A2 --grade-scale my_scale --grades 1,2,3,4,5
  register-anchors   Register anchor essays from a JSON/JSONL file or a folder of .txt/.docx
                     (grade from the file, a manifest, a 'Grade: X' first line or 'X__name.txt').
                     Idempotent: a second run changes nothing and says so. Creates the assignment
                     when missing (scale from --grade-scale or the anchors file).
                       --mode register-anchors --assignment-id A1 \\
                         --anchors scripts/cj_experiments_runners/eng5_np/data/eng5_np_anchor_essays.json
  list-anchors       List the assignment's registered anchors.
  verify-anchors     Check that every registered anchor's text still exists in the Content Service.
  prune-anchors      Remove anchor references whose content is gone (--report-only: just list them).
  execute            Upload the students, submit a batch, and with --await-completion show a
                     live progress bar, print the ranking and projected grades, and write
                     assessment_run.json, results.csv and report.html to --output-dir.
                       --mode execute --assignment-id A1 --batch-id test-1 --max-comparisons 200 \\
                         --await-completion --completion-timeout 300
  fetch-results      Fetch (optionally await) an existing batch's results and write the artefacts.
                       --mode fetch-results --batch-id test-1 --students scripts/cj_experiments_runners/eng5_np/data/eng5_np_students.jsonl
  cancel             Cancel a running batch.

Students (--students FILE|DIR; JSON, JSONL, .txt, .docx) default to the shipped ELLIPSE file
scripts/cj_experiments_runners/eng5_np/data/eng5_np_students.jsonl; a 'human_grade' (or an
ELLIPSE 'overall' on a 1.0-5.0 scale) is compared with the projected grade in the report.

Service URLs and tokens, first found wins: --cj-url/--content-url/--cj-token/--content-token;
the environment CJ_SERVICE_URL, CONTENT_SERVICE_URL, CJ_SERVICE_TOKEN, CONTENT_SERVICE_TOKEN;
the local dev stack's .devstack/state.json (python3 run.py dev start); http://127.0.0.1:9095
and http://127.0.0.1:8001 without a token.

Exit codes: 0 ok, 1 batch failed / check failed, 2 bad input, 3 service unavailable or token
refused, 4 unknown assignment / batch or missing anchors, 5 completion timeout, 6 refused (409).
This runner talks HTTP only; old Kafka flags are accepted and ignored with a warning.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import traceback
from datetime import datetime
from pathlib import Path
from typing import Any


from rich.console import Console

from scripts.cj_experiments_runners.eng5_np import __version__
from scripts.cj_experiments_runners.eng5_np.artefacts import (
    default_output_dir,
    now_iso,
    runner_info,
    write_skeleton,
)
from scripts.cj_experiments_runners.eng5_np.client import resolve_endpoints
from scripts.cj_experiments_runners.eng5_np.errors import (
    EXIT_FAILURE,
    InputError,
    NotFound,
    RunnerError,
)
from scripts.cj_experiments_runners.eng5_np.inputs import (
    EssaySet,
    check_grades,
    load_anchors,
    load_essays,
)
from scripts.cj_experiments_runners.eng5_np.results import pick
from scripts.cj_experiments_runners.eng5_np.runner import Runner, execute, finish

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_STUDENTS = DATA_DIR / "eng5_np_students.jsonl"
DEFAULT_ANCHORS = DATA_DIR / "eng5_np_anchor_essays.json"
MODES = ("plan", "dry-run", "create-assignment", "update-assignment", "register-anchors", "list-anchors",
         "verify-anchors", "prune-anchors", "execute", "fetch-results", "cancel")
KAFKA_FLAGS = ("--kafka-bootstrap", "--kafka-bootstrap-servers", "--kafka-topic", "--kafka-group-id")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eng5", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", required=True, choices=MODES, help="what to do (see above)")
    parser.add_argument("--assignment-id", help="the assignment (assessment context) id")
    parser.add_argument("--course-id", help="course id stored on the assignment and passed in batch metadata")
    parser.add_argument("--batch-id", help="client batch id (execute: default eng5-<timestamp>); resubmitting the "
                        "same id with the same essays is harmless")
    parser.add_argument("--anchors", help="anchor essays: JSON/JSONL file or folder of .txt/.docx")
    parser.add_argument("--students", help=f"student essays: JSON/JSONL file or folder (default: {DEFAULT_STUDENTS.name})")
    parser.add_argument("--max-students", type=int, help="use only the first N students (quick trials)")
    parser.add_argument("--max-comparisons", type=int, help="comparison budget of the batch (service default if unset)")
    parser.add_argument("--await-completion", action="store_true", help="wait for the batch, then report")
    parser.add_argument("--completion-timeout", type=float, default=600.0,
                        help="seconds to wait with --await-completion (default %(default)s)")
    parser.add_argument("--output-dir", "--output", dest="output_dir", help="artefact folder (default runs/<time>_<batch>)")
    group = parser.add_argument_group("assignment and grade scale")
    group.add_argument("--grade-scale", help="scale id: built-in (eng5_np_legacy_9_step, eng5_np_national_9_step, "
                       "swedish_8_anchor) or custom with --grades")
    group.add_argument("--grades", help="custom scale grades low→high, comma separated (e.g. 1.0,1.5,2.0)")
    group.add_argument("--below-lowest", help="custom scale: grade given below the lowest anchored grade")
    group.add_argument("--instructions", help="assessment instructions for the judge")
    group.add_argument("--student-prompt", help="the task the students answered")
    group.add_argument("--judge-rubric", help="rubric text for LLM judges")
    group.add_argument("--allow-no-anchors", action="store_true", help="execute without anchors (ranking only)")
    group.add_argument("--report-only", action="store_true", help="prune-anchors: list what would go, remove nothing")
    judge = parser.add_argument_group("judge (default: the service's configured judge)")
    judge.add_argument("--judge", "--llm-provider", dest="judge", choices=("heuristic", "simulated", "openai", "anthropic"),
                       help="judge kind for this batch")
    judge.add_argument("--judge-model", "--llm-model", dest="judge_model", help="model name for openai/anthropic")
    judge.add_argument(
        "--judge-base-url",
        help="OpenAI-compatible base URL (vLLM, Ollama, …); the service accepts it only when it is on its "
        "allow-list CJ_ASSESSMENT_SERVICE_JUDGE_BATCH_BASE_URLS",
    )
    judge.add_argument("--judge-settings", help="extra judge settings as a JSON object")
    conn = parser.add_argument_group("services")
    conn.add_argument("--cj-url", help="CJ Assessment Service base URL")
    conn.add_argument("--content-url", help="Content Service base URL")
    conn.add_argument("--cj-token", help="bearer token of the CJ Assessment Service")
    conn.add_argument("--content-token", help="bearer token of the Content Service")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar / progress lines")
    parser.add_argument("--verbose", "-v", action="store_true", help="more output, and tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"eng5_np runner {__version__}")
    for flag in KAFKA_FLAGS:
        parser.add_argument(flag, dest=f"legacy_{flag[2:].replace('-', '_')}", help=argparse.SUPPRESS)
    parser.add_argument("--use-kafka", "--kafka", dest="legacy_use_kafka", action="store_true", help=argparse.SUPPRESS)
    return parser


ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")  # the services' id rule


def _need(args: argparse.Namespace, *names: str) -> None:
    missing = [f"--{n.replace('_', '-')}" for n in names if not getattr(args, n)]
    if missing:
        raise InputError(f"--mode {args.mode} needs {' and '.join(missing)}")
    for name in ("assignment_id", "batch_id", "course_id"):
        value = getattr(args, name, None)
        if value and not ID_PATTERN.match(value):
            raise InputError(f"--{name.replace('_', '-')} {value!r} is not a valid id: use up to 128 letters, "
                             "digits and . _ : - (starting with a letter or digit)")


def judge_settings(args: argparse.Namespace) -> dict[str, Any] | None:
    judge: dict[str, Any] = {}
    if args.judge_settings:
        try:
            extra = json.loads(args.judge_settings)
        except json.JSONDecodeError as exc:
            raise InputError(f"--judge-settings is not valid JSON ({exc.msg})") from None
        if not isinstance(extra, dict):
            raise InputError("--judge-settings must be a JSON object")
        judge.update(extra)
    if args.judge:
        judge["kind"] = args.judge
    if args.judge_model:
        judge["model"] = args.judge_model
    if args.judge_base_url:
        judge["base_url"] = args.judge_base_url
    return judge or None


def load_students(args: argparse.Namespace) -> EssaySet:
    students = load_essays(args.students or DEFAULT_STUDENTS)
    if args.max_students is not None:
        if args.max_students < 1:
            raise InputError("--max-students must be at least 1")
        students.essays = students.essays[: args.max_students]
    return students


def output_dir(args: argparse.Namespace, batch_id: str | None) -> Path:
    return Path(args.output_dir) if args.output_dir else default_output_dir(batch_id)


# ------------------------------------------------------------------------------- modes


async def mode_plan(runner: Runner, args: argparse.Namespace, *, write: bool) -> int:
    """Check everything and show what an execute would send. Prints every check, then fails on the first bad one."""
    say = runner.say
    first_error: RunnerError | None = None
    plan: dict[str, Any] = {"created_at": now_iso(), "mode": args.mode, "runner": runner_info()}

    def check(ok: bool, text: str) -> None:
        say(("[green]✓[/green] " if ok else "[red]✗[/red] ") + text)

    say("[bold]Plan[/bold] (checks only, nothing is changed on the services" + (", artefact skeleton written" if write else "") + ")")
    for endpoint in (runner.content.endpoint, runner.cj.endpoint):
        say(f"  {endpoint.name}: {endpoint.url} (url from {endpoint.url_source}; "
            f"token {'from ' + endpoint.token_source if endpoint.token else 'none'})")
    try:
        plan["services"] = await runner.check_services()
        check(True, "both services are healthy")
    except RunnerError as exc:
        first_error = exc
        check(False, exc.message)

    anchors = students = None
    try:
        if args.anchors:
            anchors = load_anchors(args.anchors)
            grades = sorted({e.grade for e in anchors.essays})
            check(True, f"anchors file {args.anchors}: {len(anchors.essays)} anchors, grades {', '.join(grades)}")
            plan["anchors_file"] = {"source": anchors.source, "grade_scale": anchors.grade_scale,
                                    "anchors": [e.summary() for e in anchors.essays]}
        students = load_students(args)
        with_human = sum(1 for e in students.essays if e.human_grade or e.human_score is not None)
        check(True, f"students {students.source}: {len(students.essays)} essays ({with_human} with a human grade)")
        plan["students"] = {"source": students.source, "essays": [e.summary() for e in students.essays]}
    except RunnerError as exc:
        first_error = first_error or exc
        check(False, exc.message)

    if args.assignment_id and first_error is None:
        try:
            assignment = await runner.cj.assignment(args.assignment_id)
            if assignment is None:
                scale_id = args.grade_scale or (anchors.grade_scale if anchors else None)
                if anchors and scale_id:
                    say(f"  assignment {args.assignment_id}: does not exist yet; register-anchors would create it "
                        f"with scale {scale_id}")
                    scale = await runner.scale(scale_id)
                    check_grades(anchors, scale.scale_id, scale.grades)
                    check(True, f"every anchor grade is on {scale.describe()}")
                else:
                    raise NotFound(f"assignment {args.assignment_id} does not exist",
                                   hint="create it with --mode create-assignment or --mode register-anchors")
            else:
                scale = await runner.scale(runner.assignment_scale_id(assignment))
                check(True, f"assignment {args.assignment_id}: scale {scale.describe()}")
                plan["assignment"] = assignment
                if anchors:
                    check_grades(anchors, scale.scale_id, scale.grades)
                    check(True, "every anchor grade in the file is on the assignment's scale")
                registered = await runner.registered_anchors(args.assignment_id)
                checked, missing, _ = await runner.verify_anchors(args.assignment_id)
                plan["registered_anchors"] = registered
                check(bool(registered), f"{len(registered)} anchors registered")
                check(not missing, f"anchor integrity: {checked} checked, {len(missing)} with missing content"
                      + (" — run --mode prune-anchors, then register them again" if missing else ""))
                if not registered and not args.allow_no_anchors:
                    raise NotFound(f"assignment {args.assignment_id} has no anchors",
                                   hint="register some with --mode register-anchors --anchors FILE")
                if missing:
                    raise NotFound(f"{len(missing)} anchors of {args.assignment_id} point at missing content",
                                   hint="run --mode prune-anchors, then --mode register-anchors again")
        except RunnerError as exc:
            first_error = first_error or exc
            check(False, exc.message)
    elif not args.assignment_id:
        say("  (no --assignment-id: assignment and anchors not checked)")
    batch_id = args.batch_id or "<generated at execute>"
    judge = judge_settings(args)
    say(f"  batch {batch_id}: max comparisons {args.max_comparisons or 'service default'}, "
        f"judge {json.dumps(judge) if judge else 'service default'}")
    plan["inputs"] = {"assignment_id": args.assignment_id, "course_id": args.course_id, "batch_id": args.batch_id,
                      "max_comparisons": args.max_comparisons, "judge": judge}
    if write:
        path = write_skeleton(output_dir(args, args.batch_id), plan)
        say(f"artefact skeleton: {path}")
    if first_error is not None:
        raise first_error
    return 0


async def mode_create_assignment(runner: Runner, args: argparse.Namespace) -> int:
    _need(args, "assignment_id")
    grades = [g.strip() for g in args.grades.split(",") if g.strip()] if args.grades else None
    assignment, action = await runner.ensure_assignment(
        args.assignment_id, scale_id=args.grade_scale, instructions=args.instructions, course_id=args.course_id,
        student_prompt=args.student_prompt, judge_rubric=args.judge_rubric, grades=grades,
        below_lowest=args.below_lowest)
    scale = await runner.scale(runner.assignment_scale_id(assignment))
    runner.say(f"assignment {args.assignment_id}: {action if action != 'unchanged' else 'no change'} "
               f"(scale {scale.describe()})")
    return 0


async def mode_register_anchors(runner: Runner, args: argparse.Namespace) -> int:
    _need(args, "assignment_id", "anchors")
    anchors = load_anchors(args.anchors)
    await runner.check_services()
    assignment = await runner.cj.assignment(args.assignment_id)
    if assignment is None:
        scale_id = args.grade_scale or anchors.grade_scale
        if not scale_id:
            raise NotFound(f"assignment {args.assignment_id} does not exist",
                           hint="create it with --mode create-assignment, or pass --grade-scale to create it here")
        scale = await runner.scale(scale_id)
        check_grades(anchors, scale.scale_id, scale.grades)  # before creating anything
        assignment, _ = await runner.ensure_assignment(args.assignment_id, scale_id=scale_id,
                                                       instructions=args.instructions, course_id=args.course_id,
                                                       student_prompt=args.student_prompt,
                                                       judge_rubric=args.judge_rubric, only_if_missing=True)
        runner.say(f"assignment {args.assignment_id}: created with scale {scale.describe()}")
    scale = await runner.scale(runner.assignment_scale_id(assignment))
    if anchors.grade_scale and anchors.grade_scale != scale.scale_id:
        runner.say(f"[yellow]note: the anchors file says {anchors.grade_scale}, the assignment uses "
                   f"{scale.scale_id}[/yellow]")
    counts = await runner.register_anchors(args.assignment_id, anchors, scale)
    total = len(await runner.registered_anchors(args.assignment_id))
    if counts.get("created", 0) == 0 and counts.get("updated", 0) == 0:
        runner.say(f"no change: all {len(anchors.essays)} anchors were already registered "
                   f"({total} anchors on assignment {args.assignment_id})")
    else:
        summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
        runner.say(f"registered {len(anchors.essays)} anchors on assignment {args.assignment_id}: {summary} "
                   f"({total} anchors in total)")
    return 0


async def mode_list_anchors(runner: Runner, args: argparse.Namespace) -> int:
    _need(args, "assignment_id")
    anchors = await runner.registered_anchors(args.assignment_id)
    if not anchors:
        raise NotFound(f"assignment {args.assignment_id} has no anchors",
                       hint="register some with --mode register-anchors --anchors FILE")
    for a in anchors:
        runner.say(f"  {pick(a, 'anchor_label', 'label', default='?'):>14}  {pick(a, 'grade', default='?'):>6}  "
                   f"{pick(a, 'anchor_id', 'id', default='')}  storage {pick(a, 'storage_id', 'text_storage_id', default='?')}")
    runner.say(f"{len(anchors)} anchors on assignment {args.assignment_id}")
    return 0


async def mode_verify(runner: Runner, args: argparse.Namespace) -> int:
    _need(args, "assignment_id")
    await runner.check_services()
    checked, missing, _ = await runner.verify_anchors(args.assignment_id)
    if not missing:
        runner.say(f"all {checked} anchors of {args.assignment_id} have their content")
        return 0
    for m in missing:
        runner.say(f"  missing content: anchor {pick(m, 'anchor_label', 'label', 'anchor_id', default=m)} "
                   f"(storage {pick(m, 'storage_id', 'text_storage_id', default='?')})")
    raise NotFound(f"{len(missing)} of {checked} anchors of {args.assignment_id} point at missing content",
                   hint="run --mode prune-anchors, then --mode register-anchors again")


async def mode_prune(runner: Runner, args: argparse.Namespace) -> int:
    _need(args, "assignment_id")
    await runner.check_services()
    reply = await runner.cj.prune_anchors(args.assignment_id, dry_run=args.report_only)
    if args.report_only:
        removed = pick(reply, "would_delete", "missing", default=[])
    else:
        removed = pick(reply, "deleted", "summary.deleted", "pruned", "removed", default=[])
    count = len(removed) if isinstance(removed, list) else int(removed or 0)
    verb = "would remove" if args.report_only else "removed"
    runner.say(f"{verb} {count} anchor reference(s) with missing content from {args.assignment_id}"
               + ("" if count or args.report_only else " (nothing to prune)"))
    if args.verbose:
        runner.say(json.dumps(reply, indent=2))
    return 0


async def mode_execute(runner: Runner, args: argparse.Namespace) -> int:
    _need(args, "assignment_id")
    students = load_students(args)
    batch_id = args.batch_id or f"eng5-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    if args.anchors:  # convenience: register (idempotently) before running
        await mode_register_anchors(runner, args)
    metadata = {"runner": "eng5_np", "runner_version": __version__, "students_source": students.source}
    if args.course_id:
        metadata["course_id"] = args.course_id
    outcome = await execute(
        runner, assignment_id=args.assignment_id, batch_id=batch_id, students=students,
        max_comparisons=args.max_comparisons, judge=judge_settings(args), metadata=metadata,
        output_dir=output_dir(args, batch_id), await_completion=args.await_completion,
        completion_timeout=args.completion_timeout, allow_no_anchors=args.allow_no_anchors,
        inputs_extra={"course_id": args.course_id})
    if outcome.elapsed_s:
        runner.say(f"done in {outcome.elapsed_s:.0f}s")
    return 0


async def mode_fetch(runner: Runner, args: argparse.Namespace) -> int:
    _need(args, "batch_id")
    students = load_students(args) if args.students else None
    status = await runner.cj.batch(args.batch_id)
    state = str(pick(status, "status", default="unknown"))
    if state not in ("completed", "failed", "cancelled"):
        if not args.await_completion:
            done = pick(status, "progress.comparisons_done", default="?")
            raise NotFound(f"batch {args.batch_id} is {state} ({done} comparisons so far); no results yet",
                           hint="add --await-completion to wait for it")
        status = await runner.await_batch(args.batch_id, args.completion_timeout)
    run = {"created_at": now_iso(), "mode": "fetch-results", "runner": runner_info(),
           "services": await runner.service_versions(),
           "inputs": {"assignment_id": pick(status, "assignment_id"),
                      "students_source": students.source if students else None,
                      "students": [e.summary() for e in students.essays] if students else None},
           "batch": {"status": status}}
    await finish(runner, run, args.batch_id, status, students, output_dir(args, args.batch_id))
    return 0


async def mode_cancel(runner: Runner, args: argparse.Namespace) -> int:
    _need(args, "batch_id")
    reply = await runner.cj.cancel(args.batch_id)
    runner.say(f"batch {args.batch_id}: {pick(reply, 'status', default='cancel requested')}")
    return 0


async def dispatch(args: argparse.Namespace, console: Console) -> int:
    cj, content = resolve_endpoints(args.cj_url, args.content_url, args.cj_token, args.content_token)
    async with Runner(cj, content, console=console, verbose=args.verbose, progress=not args.no_progress) as runner:
        mode = args.mode
        if mode in ("plan", "dry-run"):
            return await mode_plan(runner, args, write=mode == "dry-run")
        handlers = {
            "create-assignment": mode_create_assignment, "update-assignment": mode_create_assignment,
            "register-anchors": mode_register_anchors, "list-anchors": mode_list_anchors,
            "verify-anchors": mode_verify, "prune-anchors": mode_prune, "execute": mode_execute,
            "fetch-results": mode_fetch, "cancel": mode_cancel,
        }
        return await handlers[mode](runner, args)


def configure_logging(verbose: bool) -> None:
    try:
        from huleedu_service_libs.logging_setup import configure_logging as setup

        setup("eng5_np_runner", log_format="console", level="DEBUG" if verbose else "ERROR")
    except Exception:  # logging is a nicety here
        pass


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Piped or captured output is not cut at 80 columns.
    console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 140)
    errors = Console(stderr=True, highlight=False)
    configure_logging(args.verbose)
    legacy = [f"--{k[len('legacy_'):].replace('_', '-')}" for k, v in vars(args).items()
              if k.startswith("legacy_") and v]
    if legacy:
        errors.print(f"warning: {', '.join(legacy)} ignored — this runner talks HTTP to the CJ Assessment and "
                     "Content Services; Kafka is not used", markup=False)
    try:
        return asyncio.run(dispatch(args, console))
    except RunnerError as exc:
        if args.verbose:
            traceback.print_exc()
        errors.print(exc.line(), markup=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        errors.print("interrupted (a submitted batch keeps running on the service)", markup=False)
        return 130
    except Exception as exc:  # the last resort: one line, details with --verbose
        if args.verbose:
            traceback.print_exc()
        errors.print(f"error: unexpected {type(exc).__name__}: {exc} — rerun with --verbose for details",
                     markup=False, soft_wrap=True)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
