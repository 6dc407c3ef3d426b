"""A self-contained HTML report: summary, pictures (base64 PNG) and the ranking table."""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from typing import Any

from scripts.cj_experiments_runners.eng5_np.results import Results

Z95 = 1.96
GRADE_COLOURS = ["#d73027", "#f46d43", "#fdae61", "#fee08b", "#d9ef8b", "#a6d96a", "#66bd63", "#1a9850", "#006837",
                 "#00441b"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _colour(grade: str | None, grades: list[str]) -> str:
    if grade not in grades:
        return "#888888"
    index = grades.index(grade)
    span = max(len(grades) - 1, 1)
    return GRADE_COLOURS[round(index / span * (len(GRADE_COLOURS) - 1))]


def figure_scale(results: Results) -> str:
    """Each essay's score with its 95% interval, anchors marked, grade boundaries drawn."""
    plt = _pyplot()
    essays = sorted(results.essays, key=lambda e: e.score)
    n = len(essays)
    fig, ax = plt.subplots(figsize=(9, min(max(4.0, 0.14 * n + 1.5), 26)))
    ys = list(range(n))
    for y, essay in zip(ys, essays, strict=True):
        err = Z95 * essay.standard_error if essay.standard_error is not None else 0.0
        colour = _colour(essay.grade, results.grades)
        if essay.is_anchor:
            ax.errorbar(essay.score, y, xerr=err, fmt="D", color="black", markerfacecolor=colour,
                        markersize=6, elinewidth=1, capsize=2, zorder=3)
            ax.annotate(f"{essay.anchor_grade}", (essay.score, y), xytext=(6, -3), textcoords="offset points",
                        fontsize=7, fontweight="bold")
        else:
            ax.errorbar(essay.score, y, xerr=err, fmt="o", color=colour, markersize=3.5, elinewidth=0.8,
                        alpha=0.85, zorder=2)
    xmin, xmax = ax.get_xlim()
    for k, boundary in enumerate(results.boundaries):
        x = float(boundary["score"])
        if xmin - 5 <= x <= xmax + 5:
            ax.axvline(x, color="#555555", linestyle="--", linewidth=0.8, zorder=1)
            # Labels alternate sides of their line so that close boundaries stay readable.
            ax.text(x, n + 0.3, f"{boundary['lower_grade']}|{boundary['upper_grade']}", rotation=90,
                    fontsize=7, ha="right" if k % 2 == 0 else "left", va="bottom", color="#333333")
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(-1, n + max(2.5, n * 0.06))
    ax.set_yticks([])
    ax.set_ylabel(f"{n} essays, lowest score at the bottom")
    ax.set_xlabel("Bradley–Terry score (logits), bars = 95% interval")
    ax.set_title("The scale: students (dots) and anchors (diamonds, with their grades); dashed lines = grade "
                 "boundaries", fontsize=9)
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=_colour(g, results.grades), label=g)
               for g in results.grades]
    if handles:
        ax.legend(handles=handles, title="grade", fontsize=7, title_fontsize=7, loc="lower right", ncol=1)
    return _png(fig)


def figure_distribution(results: Results) -> str:
    plt = _pyplot()
    counts = Counter(e.projected_grade for e in results.students if e.projected_grade)
    grades = results.grades or sorted(counts)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    values = [counts.get(g, 0) for g in grades]
    ax.bar(grades, values, color=[_colour(g, grades) for g in grades], edgecolor="black", linewidth=0.5)
    human = Counter(e.human_grade for e in results.students if e.human_grade)
    if human:
        ax.plot(grades, [human.get(g, 0) for g in grades], "k_", markersize=22, markeredgewidth=2,
                label="human grades")
        ax.legend(fontsize=8)
    for x, v in enumerate(values):
        if v:
            ax.text(x, v, str(v), ha="center", va="bottom", fontsize=8)
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("projected grade")
    ax.set_ylabel("students")
    ax.set_title("Projected grade distribution", fontsize=10)
    return _png(fig)


def figure_vs_human(results: Results, agreement: dict[str, Any]) -> str:
    plt = _pyplot()
    import numpy as np

    grades = results.grades
    index = {g: i for i, g in enumerate(grades)}
    matrix = np.zeros((len(grades), len(grades)), dtype=int)
    for e in results.students:
        if e.human_grade in index and e.projected_grade in index:
            matrix[index[e.human_grade], index[e.projected_grade]] += 1
    fig, ax = plt.subplots(figsize=(5.8, 5))
    ax.imshow(matrix, cmap="Blues", origin="lower")
    for i in range(len(grades)):
        for j in range(len(grades)):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    ax.plot([-0.5, len(grades) - 0.5], [-0.5, len(grades) - 0.5], color="#aa3333", linewidth=0.8)
    ax.set_xticks(range(len(grades)), grades, fontsize=8)
    ax.set_yticks(range(len(grades)), grades, fontsize=8)
    ax.set_xlabel("projected grade")
    ax.set_ylabel("human grade")
    ax.set_title(
        f"Projected vs human (n={agreement['students']}): exact {agreement['exact']:.0%}, "
        f"±1 {agreement['within_one_step']:.0%}, QWK {agreement['quadratic_weighted_kappa']:.2f}",
        fontsize=9,
    )
    return _png(fig)


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _kv_table(rows: list[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v) if not isinstance(v, str) else html.escape(v)}"
                   f"</td></tr>" for k, v in rows if v not in (None, "", {}, []))
    return f"<table class='kv'>{body}</table>"


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222;
padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em}td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:left}
table.kv th{color:#555;font-weight:600}tr.anchor{background:#fff8e1}img{max-width:100%}
.warn{background:#fff3cd;border:1px solid #e0c36b;padding:.5em 1em}.note{color:#666;font-size:.85em}
"""


def render(run: dict[str, Any], results: Results, agreement: dict[str, Any] | None) -> str:
    """The whole report as one HTML string (no external files)."""
    batch = run.get("batch") or {}
    inputs = run.get("inputs") or {}
    reliability = results.reliability or {}
    rel_rows = [(f"reliability: {k.replace('_', ' ')}", v) for k, v in reliability.items() if isinstance(v, float)]
    summary = _kv_table([
        ("batch", results.batch_id),
        ("assignment", inputs.get("assignment_id")),
        ("grade scale", results.scale_id or (inputs.get("grade_scale") or {}).get("scale_id")),
        ("status", results.status or batch.get("status")),
        ("stop reason", results.stop_reason or batch.get("stop_reason")),
        ("students / anchors", f"{len(results.students)} / {len(results.anchors)}"),
        ("comparisons", _fmt(len(run.get("comparisons") or []) or None, 0)),
        ("judge", " ".join(str(v) for k, v in (results.judge or {}).items() if k in ("name", "kind", "model") and v)),
        *rel_rows,
        ("created", run.get("created_at")),
    ])
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>CJ batch {html.escape(results.batch_id)}</title><style>{CSS}</style></head><body>",
        f"<h1>Comparative judgement report — batch {html.escape(results.batch_id)}</h1>",
        summary,
    ]
    if not results.projection_available:
        parts.append(f"<p class='warn'>No grades projected: {html.escape(str(results.projection_reason))}</p>")
    for warning in results.warnings:
        parts.append(f"<p class='warn'>{html.escape(warning)}</p>")
    if agreement:
        parts.append("<h2>Agreement with the human grades</h2>")
        parts.append(_kv_table([
            ("students with a human grade", agreement["students"]),
            ("exact agreement", f"{agreement['exact']:.0%}"),
            ("within one step", f"{agreement['within_one_step']:.0%}"),
            ("quadratic weighted kappa", agreement["quadratic_weighted_kappa"]),
            ("mean step error (projected − human)", agreement["mean_step_error"]),
            ("Spearman, score vs human grade", agreement.get("spearman_score_vs_human")),
        ]))
    loo = results.anchor_check or {}
    if loo.get("evaluated"):
        def pct(value: Any) -> str:
            return f"{value:.0%}" if isinstance(value, int | float) else "–"

        parts.append(f"<p class='note'>Calibration self-check: leaving each anchor out of the boundaries, "
                     f"{pct(loo.get('exact_agreement'))} of {loo.get('evaluated')} anchors get their own grade back "
                     f"({pct(loo.get('within_one_step_agreement'))} within one step).</p>")
    parts.append("<h2>The scale</h2>")
    parts.append(f"<img alt='scores, intervals, anchors and grade boundaries' "
                 f"src='data:image/png;base64,{figure_scale(results)}'>")
    if any(e.projected_grade for e in results.students):
        parts.append("<h2>Projected grades</h2>")
        parts.append(f"<img alt='projected grade distribution' "
                     f"src='data:image/png;base64,{figure_distribution(results)}'>")
    if agreement:
        parts.append("<h2>Projected vs human grades</h2>")
        parts.append(f"<img alt='projected vs human grades' "
                     f"src='data:image/png;base64,{figure_vs_human(results, agreement)}'>")
    parts.append("<h2>Ranking</h2><table><tr><th>rank</th><th>essay</th><th>score</th><th>±95%</th>"
                 "<th>comparisons</th><th>wins</th><th>grade</th><th>p(grade)</th><th>confidence</th>"
                 "<th>human</th><th>flags</th></tr>")
    for e in results.essays:
        interval = Z95 * e.standard_error if e.standard_error is not None else None
        grade = f"{e.anchor_grade} (anchor)" if e.is_anchor else e.projected_grade
        parts.append(
            f"<tr class='{'anchor' if e.is_anchor else ''}'><td>{e.rank}</td><td>{html.escape(e.essay_id)}</td>"
            f"<td>{_fmt(e.score)}</td><td>{_fmt(interval)}</td><td>{_fmt(e.comparisons)}</td><td>{_fmt(e.wins)}</td>"
            f"<td>{_fmt(grade)}</td><td>{_fmt(e.grade_probability)}</td><td>{_fmt(e.confidence)}</td>"
            f"<td>{_fmt(e.human_grade)}</td><td>{html.escape(', '.join(e.flags))}</td></tr>"
        )
    parts.append("</table>")
    runner = run.get("runner") or {}
    parts.append(f"<p class='note'>Generated by {html.escape(str(runner.get('name', 'eng5_np runner')))} "
                 f"{html.escape(str(runner.get('version', '')))}; full data in assessment_run.json.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
