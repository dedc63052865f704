"""A batch of events checked before anything of it is used: every event has every feature of the stream as a
finite number and nothing else, and seqs increase — else one problem naming each bad event's seq and field.

Also the plain shape of a batch read straight from JSON (`plain_events`): the common, well-formed body is taken as
it is, without a validated object per event; anything else goes to the full parser, which names the problem.
"""

from __future__ import annotations

import math
import operator
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, NoReturn, cast

from vigil.core.errors import InvalidInput
from vigil.streams.schemas import Event

MAX_SEQ = 2**63 - 1
MAX_VALUES = 512  # the schema's bound on an event's values
_SEQ, _VALUES = operator.itemgetter("seq"), operator.itemgetter("values")
_DICT, _INT, _TWO = {dict}, {int}, {2}


@dataclass(frozen=True, slots=True)
class CheckedBatch:
    """A batch's events, checked: `rows` feed the model (every feature, as float, in the stream's feature order);
    `values` are the same numbers row after row (the log's layout)."""

    seqs: list[int]
    rows: list[dict[str, float]]
    values: list[float]
    width: int

    def __len__(self) -> int:
        return len(self.seqs)

    def split(self, last_seq: int | None) -> tuple[list[int], CheckedBatch]:
        """(seqs at or below `last_seq`, the batch of those above): seqs increase, so the old ones come first."""
        cut = 0 if last_seq is None else bisect_right(self.seqs, last_seq)
        if cut == 0:
            return [], self
        w = self.width
        return self.seqs[:cut], CheckedBatch(self.seqs[cut:], self.rows[cut:], self.values[cut * w :], w)


def check_events(events: Sequence[Event], features: Sequence[str]) -> CheckedBatch:
    """Every event has every feature as a finite number and nothing else, and seqs increase: else a problem naming
    each bad event's seq and field, and nothing of the batch is used.

    The whole batch is checked at once (its types as one set, its finiteness as one sum): a handful of C loops
    instead of a few Python steps per value. An event whose values come in the stream's order and as floats (what
    the SDK sends) is used as it is; any other is rebuilt in that order."""
    names = list(features)
    width = len(names)
    seqs = list(map(_SEQ, events))
    given = list(map(_VALUES, events))
    if not all(map(operator.lt, seqs, seqs[1:])):
        return _explain_refusal(events, names)
    # The common batch (every event's values in the stream's order: what the SDK sends) is recognised and
    # flattened by C loops over the whole batch, not a Python step per event: every event has `width` members,
    # and their names one after the other are the features `len(given)` times over (with equal lengths, each
    # event's names are then exactly the features, in order).
    ordered = set(map(len, given)) <= {width} and list(chain.from_iterable(given)) == names * len(given)
    if ordered:
        flat: list[Any] = list(chain.from_iterable(map(dict.values, given)))
    else:
        flat = []
        for values in given:
            if len(values) != width:
                return _explain_refusal(events, names)
            try:  # as many as the features, all of them: nothing else
                flat.extend([values[name] for name in names])
            except KeyError:
                return _explain_refusal(events, names)
    kinds = set(map(type, flat))
    if not kinds <= _NUMBERS or not _all_finite(flat):
        return _explain_refusal(events, names)
    if int in kinds:
        flat = [float(v) for v in flat]
        ordered = False
    rows = (
        cast(list[dict[str, float]], given)
        if ordered
        else [dict(zip(names, flat[i : i + width], strict=True)) for i in range(0, len(flat), width)]
    )
    return CheckedBatch(seqs, rows, flat, width)


def plain_events(document: Any, *, members: frozenset[str]) -> list[Event] | None:
    """The events of a JSON document (as `orjson.loads` gives it) that is plainly a valid batch: an object with
    `events` and only `members`, `events` a non-empty list of `{seq, values}` objects, seq an integer in range,
    values an object of at most 512 members. None for anything else, which the caller's full parser then reads
    (and explains). What the values hold is `check_events`' business."""
    if type(document) is not dict or not document.keys() <= members:
        return None
    events = document.get("events")
    if type(events) is not list or not events:
        return None
    # Whole-batch checks (C loops, no Python step per event): objects of two members, `seq` and `values`.
    if set(map(type, events)) != _DICT or set(map(len, events)) != _TWO:
        return None
    try:
        seqs, values = list(map(_SEQ, events)), list(map(_VALUES, events))
    except KeyError:
        return None
    if set(map(type, seqs)) != _INT or min(seqs) < 0 or max(seqs) > MAX_SEQ:  # type() is not int for a bool
        return None
    if set(map(type, values)) != _DICT or max(map(len, values)) > MAX_VALUES:
        return None
    return cast(list[Event], events)


_NUMBERS = frozenset((float, int))  # not bool: type(True) is bool


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
