"""CSV export safety: a cell a spreadsheet would run as a formula is written as text instead (CWE-1236)."""

from __future__ import annotations

from typing import Any

# `=`, `+`, `-`, `@` start formulas; tab and carriage return hide them from a quick look (OWASP's list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: Any) -> Any:
    """A string that would start a formula gets a leading apostrophe; numbers and everything else pass unchanged.

    >>> neutralise_cell("=HYPERLINK(\\"http://evil\\")")
    '\\'=HYPERLINK("http://evil")'
    >>> neutralise_cell("-12"), neutralise_cell(-12), neutralise_cell("plain")
    ("'-12", -12, 'plain')
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def neutralise_row(row: dict[str, Any]) -> dict[str, Any]:
    """Every cell of a row to be written as CSV, and its column names too (headers are cells as well)."""
    return {str(neutralise_cell(str(key))): neutralise_cell(value) for key, value in row.items()}
