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


_NUMBERS = frozenset((float, int))  # not bool: type(True) is bool


def check_events(events: Sequence[Event], features: Sequence[str]) -> list[CheckedEvent]:
    """Every event has every feature as a finite number and nothing else, and seqs increase: else a problem naming
    each bad event's seq and field, and nothing of the batch is used."""
    names = list(features)
    width = len(names)
    checked: list[CheckedEvent] = []
    previous = -1
    for event in events:
        given = event["values"]
        seq = event["seq"]
        if seq <= previous or len(given) != width:
            return _explain_refusal(events, names)
        try:
            row = [given[name] for name in names]  # as many as the features, all of them: nothing else
        except KeyError:
            return _explain_refusal(events, names)
        kinds = set(map(type, row))
        if not kinds <= _NUMBERS or not _all_finite(row):
            return _explain_refusal(events, names)
        if int in kinds:
            row = [float(v) for v in row]
        checked.append(CheckedEvent(seq=seq, values=dict(zip(names, row, strict=True))))
        previous = seq
    return checked


def _all_finite(row: list[Any]) -> bool:
    # The common case in one step: a finite sum means every value is finite. A sum past the largest float, or an
    # integer too large for one, is looked at value by value.
    try:
        if math.isfinite(sum(row)):
            return True
    except OverflowError:
        pass
    return all(_is_finite(v) for v in row)


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
