"""The largest integers the API takes, so that no number a client sends overflows a 64-bit column (SQLite raises
OverflowError past 2**63 - 1) or a library's index arithmetic (polars' slice): a request past them is a 422.

Versions are counters that never come near 2**31; row positions are bounded by the JSON-safe integers, far above
any dataset a quota allows."""

from __future__ import annotations

MAX_VERSION = 2**31 - 1
MAX_ROW = 2**53 - 1
MAX_DURATION_S = 10 * 366 * 24 * 3600


def json_cost(data: bytes) -> int:
    """An upper estimate of the memory `json.loads(data)` takes, from the text's punctuation alone: a dict per
    object, a slot and a value per member, a pointer per array item, and the text's own size for strings. Parsed
    JSON is some twenty-five times its text (10 MB of `{"a":0},` is ~290 MB), so this is checked before parsing.

    >>> json_cost(b'[{"a":0},{"a":1}]')
    629
    """
    return len(data) + 210 * data.count(b"{") + 64 * data.count(b":") + 8 * data.count(b",") + 56 * data.count(b"[")
