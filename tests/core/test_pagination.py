"""Cursor pagination: opaque cursors, stable order, nothing lost or repeated while items are added."""

from __future__ import annotations

import pytest

from vigil.core.errors import InvalidInput
from vigil.core.ids import new_id
from vigil.core.pagination import decode_cursor, encode_cursor, page_of


def test_cursor_round_trip() -> None:
    assert decode_cursor(encode_cursor("ds_01abc")) == "ds_01abc"
    assert decode_cursor(None) is None


@pytest.mark.parametrize("bad", ["%%%", "bm90IGpzb24", encode_cursor("x" * 100), "eyJpZCI6IDF9"])
def test_foreign_cursors_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        decode_cursor(bad)


def test_page_of_uses_the_extra_row_only_as_a_signal() -> None:
    items, cursor = page_of(["c", "b", "a"], limit=2, id_of=str)
    assert items == ["c", "b"]
    assert decode_cursor(cursor) == "b"
    assert page_of(["a"], limit=2, id_of=str) == (["a"], None)


def test_ids_made_later_sort_later() -> None:
    ids = [new_id("ds") for _ in range(2000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
