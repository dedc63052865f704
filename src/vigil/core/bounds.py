"""The largest integers the API takes, so that no number a client sends overflows a 64-bit column (SQLite raises
OverflowError past 2**63 - 1) or a library's index arithmetic (polars' slice): a request past them is a 422.

Versions are counters that never come near 2**31; row positions are bounded by the JSON-safe integers, far above
any dataset a quota allows."""

from __future__ import annotations

MAX_VERSION = 2**31 - 1
MAX_ROW = 2**53 - 1
MAX_DURATION_S = 10 * 366 * 24 * 3600
