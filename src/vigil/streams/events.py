"""A batch of events checked before anything of it is used: every event has every feature of the stream as a
finite number and nothing else, and seqs increase — else one problem naming each bad event's seq and field."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from vigil.core.errors import InvalidInput
from vigil.streams.schemas import Event


@dataclass(frozen=True)
class CheckedEvent:
    seq: int
    values: dict[str, float]  # every feature, as float, in the stream's feature order


def check_events(events: Sequence[Event], features: Sequence[str]) -> list[CheckedEvent]:
    """Every event has every feature as a finite number and nothing else, and seqs increase: else a problem naming
    each bad event's seq and field, and nothing of the batch is used."""
    names = list(features)
    expected = frozenset(names)
    checked: list[CheckedEvent] = []
    previous = -1
    for event in events:
        given = event["values"]
        seq = event["seq"]
        if seq > previous and given.keys() == expected:
            values = {name: given[name] for name in names}
            # The common case, quickly: all floats (or ints, not bools) and a finite sum means every value is finite.
            try:
                if all(type(v) is float or type(v) is int for v in values.values()) and math.isfinite(
                    sum(values.values())
                ):
                    checked.append(CheckedEvent(seq=seq, values={k: float(v) for k, v in values.items()}))
                    previous = seq
                    continue
            except OverflowError:  # an integer too large for a float
                pass
        return _explain_refusal(events, names)
    return checked


def _explain_refusal(events: Sequence[Event], features: list[str]) -> NoReturn:
    errors: list[dict[str, Any]] = []
    names = set(features)
    previous: int | None = None
    for index, event in enumerate(events):
        seq, given = event["seq"], event["values"]
        where = ["body", "events", index]
        if previous is not None and seq <= previous:
            errors.append(_error([*where, "seq"], seq, "seq", "seqs must increase within a batch", "seq_order"))
        previous = seq
        for name in features:
            value = given.get(name)
            if name not in given:
                errors.append(_error([*where, "values", name], seq, name, "missing feature", "missing"))
            elif isinstance(value, bool) or not isinstance(value, int | float):
                errors.append(_error([*where, "values", name], seq, name, "not a number", "float_type"))
            elif not _is_finite(value):
                errors.append(_error([*where, "values", name], seq, name, "not a finite number", "finite_number"))
        errors.extend(
            _error([*where, "values", str(extra)], seq, str(extra), "not a feature of this stream", "extra")
            for extra in given
            if extra not in names
        )
        if len(errors) >= 50:
            break
    first = errors[0]
    raise InvalidInput(
        f"Event seq {first['seq']}: {first['field']!r} {first['msg']}"
        + (f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else "")
        + "; nothing of this batch was learnt.",
        errors=errors,
    )


def _is_finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _error(loc: list[Any], seq: int, field: str, msg: str, kind: str) -> dict[str, Any]:
    return {"loc": [str(p) for p in loc], "seq": seq, "field": field, "msg": msg, "type": kind}
