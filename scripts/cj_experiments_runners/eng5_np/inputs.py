"""Load anchor and student essays from a JSON / JSONL file or a folder of .txt / .docx files.

File formats
------------
* JSON: a list of essay objects, or an object with an ``anchors`` / ``essays`` /
  ``students`` list (and optionally ``grade_scale``).
* JSONL: one essay object per line.
* A folder: every ``*.txt`` / ``*.docx`` file is one essay (file stem = essay id /
  anchor label). The grade comes, in this order, from a manifest in the folder
  (``manifest.json`` {"file.txt": "B"} or {"file.txt": {"grade": "B", ...}},
  ``manifest.jsonl``, or ``manifest.csv`` with columns ``file,grade[,label]``),
  a first line ``Grade: B`` in the essay, or a file name ``B__anything.txt``.

Essay object fields: ``text`` (required), ``essay_id`` / ``id``, ``grade`` (anchors),
``anchor_label`` / ``label``, ``human_grade`` / ``overall`` (human scores of students).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.cj_experiments_runners.eng5_np.errors import InputError

ESSAY_SUFFIXES = (".txt", ".docx")
MANIFEST_NAMES = ("manifest.json", "manifest.jsonl", "manifest.csv")
_GRADE_LINE = re.compile(r"^\s*grade\s*[:=]\s*(\S+)\s*$", re.IGNORECASE)


@dataclass
class Essay:
    essay_id: str
    text: str
    source: str
    grade: str | None = None  # anchors: the known grade
    label: str | None = None  # anchors: the anchor label
    human_grade: str | None = None  # students: a human grade on the assignment's scale, if known
    human_score: float | None = None  # students: a human numeric score (ELLIPSE overall), if known
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def summary(self) -> dict[str, Any]:
        """Everything about the input except its text (for artefacts)."""
        out: dict[str, Any] = {"essay_id": self.essay_id, "sha256": self.sha256, "chars": len(self.text),
                               "source": self.source}
        for key in ("grade", "label", "human_grade", "human_score"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


@dataclass
class EssaySet:
    essays: list[Essay]
    source: str
    grade_scale: str | None = None  # when the file names the scale its grades are on


def _grade_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value).strip()


def _from_object(obj: Any, where: str, index: int) -> Essay:
    if not isinstance(obj, dict):
        raise InputError(f"{where}: essay #{index + 1} is not a JSON object")
    text = obj.get("text", obj.get("essay_text", obj.get("content")))
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{where}: essay #{index + 1} has no 'text'")
    essay_id = obj.get("essay_id", obj.get("id", obj.get("anchor_label", obj.get("label"))))
    essay_id = str(essay_id) if essay_id not in (None, "") else f"essay-{index + 1:04d}"
    human_score = obj.get("overall", obj.get("human_score", obj.get("human_overall")))
    return Essay(
        essay_id=essay_id,
        text=text,
        source=f"{where}#{index + 1}",
        grade=_grade_str(obj.get("grade")),
        label=_grade_str(obj.get("anchor_label", obj.get("label"))),
        human_grade=_grade_str(obj.get("human_grade")),
        human_score=float(human_score) if isinstance(human_score, int | float) else None,
        extra={k: v for k, v in obj.items() if k in ("prompt",)},
    )


def _load_json(path: Path) -> EssaySet:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    scale = None
    if isinstance(data, dict):
        scale = data.get("grade_scale")
        for key in ("anchors", "essays", "students"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
        else:
            raise InputError(f"{path}: expected a list of essays or an object with an 'anchors'/'essays' list")
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a list of essays")
    return EssaySet([_from_object(o, path.name, i) for i, o in enumerate(data)], str(path), scale)


def _load_jsonl(path: Path) -> EssaySet:
    essays = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            essays.append(_from_object(obj, path.name, len(essays)))
    return EssaySet(essays, str(path))


def read_docx(path: Path) -> str:
    try:
        import docx  # python-docx
    except ImportError:  # pragma: no cover - installed with the project
        raise InputError(f"{path}: reading .docx needs the python-docx package") from None
    try:
        document = docx.Document(str(path))
    except Exception as exc:  # python-docx raises several kinds for broken files
        raise InputError(f"{path}: cannot read this .docx ({type(exc).__name__})") from None
    return "\n".join(p.text for p in document.paragraphs).strip()


def _load_manifest(folder: Path) -> dict[str, dict[str, Any]]:
    for name in MANIFEST_NAMES:
        path = folder / name
        if not path.exists():
            continue
        rows: dict[str, dict[str, Any]] = {}
        if name.endswith(".csv"):
            with path.open(encoding="utf-8", newline="") as handle:
                for row in csv.DictReader(handle):
                    key = (row.get("file") or row.get("filename") or "").strip()
                    if key:
                        rows[key] = {k: v for k, v in row.items() if v not in (None, "")}
            return rows
        try:
            if name.endswith(".jsonl"):
                items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
                data: Any = {str(i.get("file")): i for i in items if isinstance(i, dict)}
            else:
                data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON ({exc.msg})") from None
        if isinstance(data, list):
            data = {str(i.get("file")): i for i in data if isinstance(i, dict)}
        if not isinstance(data, dict):
            raise InputError(f"{path}: expected an object mapping file names to grades")
        return {k: (v if isinstance(v, dict) else {"grade": v}) for k, v in data.items()}
    return {}


def _load_folder(folder: Path) -> EssaySet:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in ESSAY_SUFFIXES)
    if not files:
        raise InputError(f"{folder}: no essays found (expected .txt or .docx files)")
    manifest = _load_manifest(folder)
    essays = []
    for path in files:
        text = read_docx(path) if path.suffix.lower() == ".docx" else path.read_text(encoding="utf-8", errors="strict")
        entry = manifest.get(path.name) or manifest.get(path.stem) or {}
        grade = _grade_str(entry.get("grade"))
        lines = text.splitlines()
        if lines and (match := _GRADE_LINE.match(lines[0])):
            grade = grade or match.group(1)
            text = "\n".join(lines[1:]).strip()
        stem = path.stem
        if "__" in stem:
            prefix, _, rest = stem.partition("__")
            grade = grade or prefix
            stem = rest or stem
        if not text.strip():
            raise InputError(f"{path}: the essay is empty")
        human = entry.get("overall", entry.get("human_score"))
        essays.append(
            Essay(
                essay_id=str(entry.get("essay_id") or stem),
                text=text,
                source=str(path),
                grade=grade,
                label=_grade_str(entry.get("label") or entry.get("anchor_label")) or stem,
                human_grade=_grade_str(entry.get("human_grade")),
                human_score=float(human) if human not in (None, "") else None,
            )
        )
    return EssaySet(essays, str(folder))


def load_essays(path: str | Path) -> EssaySet:
    """Essays from a JSON / JSONL file or a folder; ``InputError`` with one clear line otherwise."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        result = _load_folder(path)
    elif path.suffix.lower() == ".jsonl":
        result = _load_jsonl(path)
    elif path.suffix.lower() == ".json":
        result = _load_json(path)
    elif path.suffix.lower() in ESSAY_SUFFIXES:
        result = _load_folder_single(path)
    else:
        raise InputError(f"{path}: unsupported file type (use .json, .jsonl, .txt, .docx or a folder)")
    if not result.essays:
        raise InputError(f"{path}: no essays found")
    ids = [e.essay_id for e in result.essays]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InputError(f"{path}: essay ids must be unique; repeated: {', '.join(duplicates[:5])}")
    return result


def _load_folder_single(path: Path) -> EssaySet:
    text = read_docx(path) if path.suffix.lower() == ".docx" else path.read_text(encoding="utf-8")
    if not text.strip():
        raise InputError(f"{path}: the essay is empty")
    return EssaySet([Essay(essay_id=path.stem, text=text, source=str(path), label=path.stem)], str(path))


def load_anchors(path: str | Path) -> EssaySet:
    """Anchors: like essays, but each needs a grade (label defaults to the essay id / file stem)."""
    result = load_essays(path)
    for essay in result.essays:
        if not essay.grade:
            raise InputError(
                f"{essay.source}: anchor {essay.essay_id!r} has no grade "
                "(give 'grade' in the file, a manifest, a 'Grade: X' first line or a 'X__name.txt' file name)"
            )
        essay.label = essay.label or essay.essay_id
    labels = [e.label for e in result.essays]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise InputError(f"{path}: anchor labels must be unique; repeated: {', '.join(map(str, duplicates[:5]))}")
    return result


def check_grades(anchors: EssaySet, scale_id: str, grades: list[str]) -> None:
    """Every anchor grade must be one of the scale's (anchored) grades."""
    for essay in anchors.essays:
        if essay.grade not in grades:
            raise InputError(
                f"{essay.source}: anchor {essay.label!r} has grade {essay.grade!r}, which is not on scale "
                f"{scale_id} ({', '.join(grades)})"
            )


def human_grade_for(essay: Essay, scale_grades: list[str]) -> str | None:
    """A student's human grade on the scale: ``human_grade``, or the ELLIPSE score when the scale is 1.0…5.0."""
    if essay.human_grade and essay.human_grade in scale_grades:
        return essay.human_grade
    if essay.human_score is not None and f"{essay.human_score:.1f}" in scale_grades:
        return f"{essay.human_score:.1f}"
    return None
