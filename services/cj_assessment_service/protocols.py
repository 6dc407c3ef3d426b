"""Interfaces of the CJ Assessment Service (typing.Protocol), and the records they exchange."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from services.cj_assessment_service.cj_core_logic.grade_scales import GradeScale

WriteStatus = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class StoredGradeScale:
    """A custom scale as stored in ``grade_scales``."""

    scale: GradeScale
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AssignmentDraft:
    """What a client sends to create or replace an assignment."""

    assignment_id: str
    grade_scale: str
    instructions: str
    student_prompt: str | None = None
    judge_rubric: str | None = None
    course_id: str | None = None


@dataclass(frozen=True)
class Assignment:
    assignment_id: str
    grade_scale: str
    instructions: str
    student_prompt: str | None
    judge_rubric: str | None
    course_id: str | None
    anchor_count: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AnchorReference:
    anchor_id: int
    assignment_id: str
    anchor_label: str
    grade: str
    grade_scale: str
    storage_id: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AnchorUpsert:
    anchor: AnchorReference
    status: WriteStatus


class ContentClientProtocol(Protocol):
    """The Content Service, seen from here. Failures raise typed errors (502/503/504/413)."""

    async def store_text(self, text: str, *, metadata: dict[str, Any] | None = None) -> str:
        """Store UTF-8 text; return its storage id (identical text gives the same id)."""
        ...

    async def fetch_text(self, storage_id: str) -> str | None:
        """The text, or None when the Content Service does not have it."""
        ...

    async def exists(self, storage_id: str) -> bool: ...

    async def ping(self) -> None:
        """Raise unless the Content Service answers its health check."""
        ...


class GradeScaleRepositoryProtocol(Protocol):
    """Custom grade scales (the built-ins live in code)."""

    async def get(self, scale_id: str) -> StoredGradeScale | None: ...

    async def list(self) -> list[StoredGradeScale]: ...

    async def save(self, scale: GradeScale) -> tuple[StoredGradeScale, WriteStatus]:
        """Create or replace; raise ConflictError if a grade that anchors carry would disappear."""
        ...


class AssignmentRepositoryProtocol(Protocol):
    async def get(self, assignment_id: str) -> Assignment | None: ...

    async def list(self, *, course_id: str | None = None) -> list[Assignment]: ...

    async def save(self, draft: AssignmentDraft) -> tuple[Assignment, WriteStatus]:
        """Create or replace; raise ConflictError when the grade scale of an assignment with anchors changes."""
        ...


class AnchorRepositoryProtocol(Protocol):
    async def upsert(
        self, *, assignment_id: str, anchor_label: str, grade: str, grade_scale: str, storage_id: str
    ) -> AnchorUpsert:
        """One atomic upsert on (assignment_id, anchor_label, grade_scale).

        Raises NotFoundError if the assignment vanished and ConflictError if its grade
        scale (or the scale's grades) changed since the caller validated the grade.
        """
        ...

    async def list_for_assignment(self, assignment_id: str) -> list[AnchorReference]: ...

    async def get(self, anchor_id: int) -> AnchorReference | None: ...

    async def delete(self, anchor_id: int) -> AnchorReference | None: ...

    async def delete_unchanged(self, anchors: list[AnchorReference]) -> list[AnchorReference]:
        """Delete these anchors unless they were re-registered meanwhile (storage id changed)."""
        ...

    async def ping(self) -> None:
        """Raise if the database cannot be reached."""
        ...
