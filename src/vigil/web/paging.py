"""The query parameters of every list route (`core.pagination`): a bounded page size and an opaque cursor."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=200)]
