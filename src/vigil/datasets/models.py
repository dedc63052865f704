"""The dataset table: metadata of a tenant's tabular data; the rows live in the blob store as Parquet."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.database import Base, utcnow


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    n_rows: Mapped[int]
    n_columns: Mapped[int]
    columns_schema: Mapped[list[Any]]
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    source_format: Mapped[str] = mapped_column(String(16))
    origin: Mapped[dict[str, Any]] = mapped_column(default=dict)
    blob_key: Mapped[str] = mapped_column(String(300))
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
