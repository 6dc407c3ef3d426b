"""Grade scales: the ordered grades (low → high) that anchors and projections use.

Grades are strings because real scales mix letters, signs and digits ("D+", "E-",
"5"). A scale may name a *below-lowest* grade: a grade that no anchor carries but
that a student clearly weaker than the lowest anchored grade receives (e.g. "F" on
the legacy ENG5 NP scale). Custom scales are built with :func:`make_grade_scale`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GradeScale:
    """An ordered grade scale; ``grades`` run from the lowest to the highest."""

    scale_id: str
    grades: tuple[str, ...]
    below_lowest: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not self.scale_id:
            raise ValueError("a grade scale needs a non-empty scale_id")
        if len(self.grades) < 2:
            raise ValueError(f"grade scale {self.scale_id!r} needs at least two grades")
        if any(not isinstance(g, str) or not g for g in self.grades):
            raise ValueError(f"grade scale {self.scale_id!r}: grades must be non-empty strings")
        if len(set(self.grades)) != len(self.grades):
            raise ValueError(f"grade scale {self.scale_id!r} repeats a grade")
        if self.below_lowest is not None and self.below_lowest in self.grades:
            raise ValueError(
                f"grade scale {self.scale_id!r}: below-lowest grade {self.below_lowest!r} "
                "must not also be one of the anchored grades"
            )

    def rank(self, grade: str) -> int:
        """Position of ``grade`` on the scale (0 = lowest); -1 for the below-lowest grade."""
        if self.below_lowest is not None and grade == self.below_lowest:
            return -1
        try:
            return self.grades.index(grade)
        except ValueError:
            raise ValueError(f"grade {grade!r} is not on scale {self.scale_id!r}") from None

    def all_grades(self) -> tuple[str, ...]:
        """Every grade a student can receive, lowest first (below-lowest included)."""
        if self.below_lowest is None:
            return self.grades
        return (self.below_lowest, *self.grades)

    def contains(self, grade: str) -> bool:
        return grade in self.grades or (self.below_lowest is not None and grade == self.below_lowest)


def make_grade_scale(
    scale_id: str,
    grades: list[str] | tuple[str, ...],
    *,
    below_lowest: str | None = None,
    description: str = "",
) -> GradeScale:
    """Build a custom scale (validated the same way as the built-ins)."""
    return GradeScale(scale_id, tuple(grades), below_lowest, description)


BUILTIN_SCALES: dict[str, GradeScale] = {
    scale.scale_id: scale
    for scale in (
        GradeScale(
            "swedish_8_anchor",
            ("F", "E", "D", "D+", "C", "C+", "B", "A"),
            None,
            "Swedish upper-secondary grades with half steps; one anchor per grade.",
        ),
        GradeScale(
            "eng5_np_legacy_9_step",
            ("F+", "E-", "E+", "D-", "D+", "C-", "C+", "B", "A"),
            "F",
            "Legacy nine-step ENG5 national-test scale; F is given below the lowest anchor grade.",
        ),
        GradeScale(
            "eng5_np_national_9_step",
            ("1", "2", "3", "4", "5", "6", "7", "8", "9"),
            "0",
            "National nine-step ENG5 scale 1-9; 0 is given below the lowest anchor grade.",
        ),
    )
}
