"""Request bodies of the CJ Assessment Service's HTTP API (pydantic; errors → 422 naming fields)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from huleedu_service_libs.errors import ValidationError

# Client-chosen ids (assignment, course, grade scale): UUIDs, slugs, "eng5-2024:A".
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")
ID_HINT = "letters, digits and . _ : - (starting with a letter or digit)"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

MAX_TEXT_CHARS = 200_000  # instructions, prompt, rubric


def _no_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL (the insert fails); newlines and tabs are fine.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters (\\u0000)")
    return value


def _valid_unicode(value: str) -> str:
    # JSON allows "\\ud800"; such text has no UTF-8 form and cannot be stored.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains an unpaired surrogate (not valid Unicode text)") from None
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Identifier = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128, pattern=ID_PATTERN)]
ScaleId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=ID_PATTERN)]
Grade = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32), AfterValidator(_no_control_characters)
]
Label = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128), AfterValidator(_no_control_characters)
]
Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT_CHARS),
    AfterValidator(_valid_unicode),
    AfterValidator(_no_nul),
]
# Essay text is stored exactly as sent (no stripping); it only has to contain something.
EssayText = Annotated[str, AfterValidator(_not_blank), AfterValidator(_valid_unicode)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class GradeScaleBody(_Body):
    grades: list[Grade] = Field(min_length=2, max_length=100, description="Grades from the lowest to the highest")
    below_lowest: Grade | None = None
    description: Annotated[
        str,
        StringConstraints(strip_whitespace=True, max_length=2000),
        AfterValidator(_valid_unicode),
        AfterValidator(_no_nul),
    ] = ""

    @field_validator("grades")
    @classmethod
    def _unique(cls, grades: list[str]) -> list[str]:
        repeated = sorted({grade for grade in grades if grades.count(grade) > 1})
        if repeated:
            raise ValueError(f"grades must be unique; repeated: {', '.join(repeated)}")
        return grades


class AssignmentBody(_Body):
    grade_scale: ScaleId
    instructions: Text
    student_prompt: Text | None = None
    judge_rubric: Text | None = None
    course_id: Identifier | None = None


class RegisterAnchorBody(_Body):
    assignment_id: Identifier
    grade: Grade
    essay_text: EssayText
    anchor_label: Label | None = None


class PruneBody(_Body):
    dry_run: bool = False


def check_identifier(value: str, field: str, *, max_length: int = 128) -> str:
    """Validate an id taken from the URL path (→ 422 naming it)."""
    # fullmatch: with match, "$" also matches before a trailing newline ("a%0A" got through).
    if not (1 <= len(value) <= max_length) or not ID_PATTERN.fullmatch(value):
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise ValidationError(
            f"Invalid {field}: use 1-{max_length} characters: {ID_HINT}.",
            details={"field": field, "value": shown},
        )
    return value


def parse_anchor_id(value: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 18 or int(value) < 1:
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise ValidationError(
            "Invalid anchor_id: anchor ids are positive integers.", details={"field": "anchor_id", "value": shown}
        )
    return int(value)


_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def parse_bool_query(value: str, field: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValidationError(
        f"Invalid {field}: use true or false.", details={"field": field, "value": value[:80]}
    )
