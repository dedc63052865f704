"""Types the SDK's signatures share: responses are plain JSON objects, query parameters simple values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

JSON: TypeAlias = dict[str, Any]
Params: TypeAlias = Mapping[str, str | int | float | bool | None]
FINAL_JOB_STATES = frozenset({"succeeded", "failed", "cancelled"})
