"""The run's artefacts: assessment_run.json, results.csv and report.html in one folder."""

from __future__ import annotations

import csv
import json
import math
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scripts.cj_experiments_runners.eng5_np import __version__
from scripts.cj_experiments_runners.eng5_np.report_html import render
from scripts.cj_experiments_runners.eng5_np.results import Results

REPO_ROOT = Path(__file__).resolve().parents[3]
RUN_FILE = "assessment_run.json"
CSV_FILE = "results.csv"
HTML_FILE = "report.html"
SCHEMA = "huleedu.eng5_np.assessment_run/1"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def default_output_dir(batch_id: str | None) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in (batch_id or "run"))
    return REPO_ROOT / "runs" / f"{stamp}_{safe}"


def runner_info() -> dict[str, Any]:
    commit = None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                                timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"name": "eng5_np batch runner", "version": __version__, "git_commit": commit,
            "python": platform.python_version()}


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | tuple):
        return list(value)
    return str(value)


def _clean(value: Any) -> Any:
    """Strict JSON: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(_clean(data), indent=2, ensure_ascii=False, default=_json_default, allow_nan=False) + "\n",
                    encoding="utf-8")


def write_skeleton(output_dir: Path, run: dict[str, Any]) -> Path:
    """The dry-run artefact: inputs and plan, no batch."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / RUN_FILE
    write_json(path, {"schema": SCHEMA, "batch": None, "comparisons": [], "results": None, **run})
    return path


def write_csv(path: Path, results: Results) -> None:
    grades = results.grades
    columns = ["rank", "essay_id", "is_anchor", "anchor_label", "anchor_grade", "score", "standard_error",
               "ci95_low", "ci95_high", "comparisons", "wins", "projected_grade", "grade_probability", "confidence",
               "human_grade", "flags", *[f"p_{g}" for g in grades]]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for e in results.essays:
            se = e.standard_error
            writer.writerow([
                e.rank, e.essay_id, int(e.is_anchor), e.anchor_label or "", e.anchor_grade or "",
                f"{e.score:.4f}", "" if se is None else f"{se:.4f}",
                "" if se is None else f"{e.score - 1.96 * se:.4f}", "" if se is None else f"{e.score + 1.96 * se:.4f}",
                "" if e.comparisons is None else e.comparisons, "" if e.wins is None else e.wins,
                e.projected_grade or "", "" if e.grade_probability is None else f"{e.grade_probability:.4f}",
                e.confidence or "", e.human_grade or "", ";".join(e.flags),
                *["" if g not in e.probabilities else f"{e.probabilities[g]:.4f}" for g in grades],
            ])


def write_all(output_dir: Path, run: dict[str, Any], results: Results, agreement: dict[str, Any] | None) -> dict[str, Path]:
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": output_dir / RUN_FILE, "csv": output_dir / CSV_FILE, "html": output_dir / HTML_FILE}
    write_json(paths["json"], {"schema": SCHEMA, **run, "summary": results.to_dict(), "agreement": agreement})
    write_csv(paths["csv"], results)
    paths["html"].write_text(render(run, results, agreement), encoding="utf-8")
    return paths
