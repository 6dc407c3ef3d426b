"""SQLAlchemy models of the Content Service. The schema itself is built by alembic."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CHAR, DateTime, Integer, LargeBinary, String, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class StoredContent(Base):
    __tablename__ = "stored_content"
    __table_args__ = (UniqueConstraint("sha256", "content_type", name="uq_stored_content_sha256_type"),)

    content_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    content_data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    content_size: Mapped[int] = mapped_column(Integer, nullable=False)
    content_type: Mapped[str] = mapped_column(String(255), nullable=False)
    sha256: Mapped[str] = mapped_column(CHAR(64), nullable=False)
    # "metadata" is reserved on declarative classes, hence the attribute name.
    content_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB, nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), index=True
    )
    correlation_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
