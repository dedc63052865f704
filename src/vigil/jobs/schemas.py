"""Job response models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    status: JobStatus
    progress: float = Field(description="0–100, as the job's handler last reported it.")
    stage: str | None = Field(
        default=None, description='What the job is doing ("loading data", "fitting", "scoring"), when it says.'
    )
    subject_id: str | None
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @computed_field(  # type: ignore[prop-decorator]
        description="Seconds until a running job should finish, extrapolated from its progress so far; null when "
        "that cannot be estimated yet (not running, or under 1% done)."
    )
    @property
    def eta_s(self) -> float | None:
        if self.status != "running" or self.started_at is None or not 1.0 <= self.progress < 100.0:
            return None
        elapsed = max(0.0, (datetime.now(UTC) - self.started_at).total_seconds())
        return round(elapsed * (100.0 - self.progress) / self.progress, 1)
