"""The one rule for names people give things (tenants, users' API keys, datasets, detectors, streams): printable.

A name is shown back in lists, logs, HTML reports and terminals. Control characters (NUL, which PostgreSQL refuses
and SQLite keeps; ESC, which drives a terminal; CR/LF, which forge log lines), the C1 controls, the line and paragraph
separators and the bidirectional overrides (which make a name read differently from what it is) have no place in
one. The rule is a pattern, so the OpenAPI document says it too.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints

from vigil.core.errors import InvalidInput

# Refused: C0 controls and DEL, C1 controls, LINE/PARAGRAPH SEPARATOR, bidi embeddings/overrides and isolates.
_REFUSED = "\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069"
PRINTABLE_PATTERN = f"^[^{_REFUSED}]*$"
_REFUSED_CHARACTER = re.compile(f"[{_REFUSED}]")
NAME_MAX_LENGTH = 200

Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX_LENGTH, pattern=PRINTABLE_PATTERN),
]
"""A name field of a request body: stripped, 1..200 characters, printable."""


def is_printable(value: str) -> bool:
    return _REFUSED_CHARACTER.search(value) is None


def check_printable(value: str) -> str:
    """For pydantic's `AfterValidator` on fields that are not names but must be printable (an email)."""
    if not is_printable(value):
        raise ValueError("must not contain control characters")
    return value


def printable_name(value: str, *, loc: list[str]) -> str:
    """A name that arrives outside a body model (a query parameter, a form field), checked by the same rule."""
    stripped = value.strip()
    if not stripped or len(stripped) > NAME_MAX_LENGTH or not is_printable(stripped):
        raise InvalidInput(
            f"A name is 1..{NAME_MAX_LENGTH} printable characters (no control characters).",
            errors=[{"loc": loc, "msg": "not a printable name", "type": "string_pattern_mismatch"}],
        )
    return stripped


def printable_part(value: str) -> str:
    """What is left of a name derived from something else (an uploaded file's name) once refused characters go."""
    return _REFUSED_CHARACTER.sub("", value).strip()[:NAME_MAX_LENGTH]
