"""CSV export cells that a spreadsheet would run as formulas are neutralised."""

from __future__ import annotations

import pytest

from vigil.core.csv_safety import neutralise_cell, neutralise_row


@pytest.mark.parametrize("cell", ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\t=x", "\r=x", "=cmd|' /C calc'!A0"])
def test_formula_cells_become_text(cell: str) -> None:
    assert neutralise_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["plain", "", "a=b", 12, -3.5, None, True])
def test_other_cells_pass_unchanged(cell: object) -> None:
    assert neutralise_cell(cell) == cell


def test_rows_and_headers() -> None:
    assert neutralise_row({"=evil": "@x", "ok": -1}) == {"'=evil": "'@x", "ok": -1}
