"""Cursor pagination: `limit` (bounded), an opaque `cursor`, and `{items, next_cursor}` in a stable order.

Lists are ordered by id, newest first. Ids only grow, so keyset pagination on the id neither loses nor repeats
an item that existed when paging began, however many are added meanwhile.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel

from vigil.core.errors import InvalidInput

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int
    after_id: str | None


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"id": last_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
        last_id = value["id"]
        if not isinstance(last_id, str) or len(last_id) > 64:
            raise ValueError(last_id)
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            "The cursor is not one this API issued.",
            errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor"}],
        ) from exc
    return last_id


def page_of(rows: Sequence[T], *, limit: int, id_of: Callable[[T], str]) -> tuple[list[T], str | None]:
    """Repositories fetch `limit + 1` rows; the extra one only says whether there is a next page."""
    items = list(rows[:limit])
    next_cursor = encode_cursor(id_of(items[-1])) if len(rows) > limit and items else None
    return items, next_cursor
