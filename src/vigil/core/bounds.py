"""Bounds of the integers a client names: a model or report version, a row offset. Nothing past them can exist, and
refusing them where they are parsed (a 422 that names the field) keeps them away from SQLite's 64-bit integers and
polars' slices, which overflowed into 500s (found by the contract fuzzing's checks)."""

from __future__ import annotations

# A PostgreSQL `integer`: the widest version column either database holds.
MAX_VERSION = 2**31 - 1
# Rows of one dataset are far fewer; past this an offset is only an attempt to overflow a slice.
MAX_OFFSET = 2**31 - 1
