"""The event check and the plain-batch reader (`streams/events.py`): what the fast path takes as it is, what it
leaves to the full parser, and that an event is given to the model in the stream's order, as floats."""

from __future__ import annotations

from typing import Any

import pytest

from vigil.core.errors import InvalidInput
from vigil.streams.events import MAX_SEQ, check_events, plain_events

MEMBERS = frozenset(("events",))


def batch(*events: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"events": list(events), **extra}


def test_a_plain_batch_is_taken_as_it_is() -> None:
    events = [{"seq": 1, "values": {"a": 1.5}}, {"seq": MAX_SEQ, "values": {"a": 2}}]
    document = batch(*events)
    assert plain_events(document, members=MEMBERS) is document["events"]


@pytest.mark.parametrize(
    "document",
    [
        [],
        batch(),
        batch({"seq": 1, "values": {"a": 1.0}}, other=1),
        batch({"seq": 1, "values": {"a": 1.0}, "id": 3}),
        batch({"seq": 1}),
        batch({"id": 1, "values": {"a": 1.0}}),  # two members, but not seq and values
        batch({"seq": 1, "values": {"a": 1.0}}, [1, 2]),
        batch({"seq": 1, "values": {"a": 1.0}}, {"seq": 2, "values": {"a": 1.0}, "x": 1}),
        batch({"seq": 1, "values": {"a": 1.0}}, {"seq": 2, "values": None}),
        batch({"seq": "1", "values": {"a": 1.0}}),
        batch({"seq": True, "values": {"a": 1.0}}),
        batch({"seq": 1.0, "values": {"a": 1.0}}),
        batch({"seq": -1, "values": {"a": 1.0}}),
        batch({"seq": MAX_SEQ + 1, "values": {"a": 1.0}}),
        batch({"seq": 1, "values": [1.0]}),
        batch({"seq": 1, "values": {f"f{i}": 1.0 for i in range(513)}}),
    ],
)
def test_anything_else_is_left_to_the_full_parser(document: Any) -> None:
    assert plain_events(document, members=MEMBERS) is None


def test_events_reach_the_model_in_the_streams_order_as_floats() -> None:
    events: Any = [
        {"seq": 3, "values": {"a": 1.0, "b": 2.0}},
        {"seq": 5, "values": {"b": 4, "a": 3.5}},  # another order, an integer
    ]
    checked = check_events(events, ["a", "b"])
    assert checked.rows == [{"a": 1.0, "b": 2.0}, {"a": 3.5, "b": 4.0}]
    assert [list(row) for row in checked.rows] == [["a", "b"], ["a", "b"]]
    assert all(type(v) is float for row in checked.rows for v in row.values())
    assert checked.values == [1.0, 2.0, 3.5, 4.0]
    old, fresh = checked.split(3)
    assert (old, fresh.seqs, fresh.rows, fresh.values) == ([3], [5], [{"a": 3.5, "b": 4.0}], [3.5, 4.0])
    assert checked.split(None) == ([], checked)


@pytest.mark.parametrize(
    ("values", "field", "kind"),
    [
        ({"a": True, "b": 1.0}, "a", "float_type"),
        ({"a": 1.0, "b": float("inf")}, "b", "finite_number"),
        ({"a": 1.0, "b": 10**400}, "b", "finite_number"),
        ({"a": 1.0}, "b", "missing"),
        ({"a": 1.0, "c": 1.0}, "b", "missing"),
        ({"b": 1.0, "a": "1"}, "a", "float_type"),  # another order, rebuilt, then checked
    ],
)
def test_a_bad_value_is_named_with_its_seq(values: dict[str, Any], field: str, kind: str) -> None:
    events: Any = [{"seq": 1, "values": {"a": 0.0, "b": 0.0}}, {"seq": 2, "values": values}]
    with pytest.raises(InvalidInput) as refused:
        check_events(events, ["a", "b"])
    first = refused.value.extra["errors"][0]
    assert (first["seq"], first["field"], first["type"]) == (2, field, kind)


def test_events_whose_names_in_a_row_spell_the_features_are_still_checked_one_by_one() -> None:
    # Names one after the other "a b a b", as two ordered events would give, from events of 1, 2 and 1 members.
    events: Any = [
        {"seq": 1, "values": {"a": 1.0}},
        {"seq": 2, "values": {"b": 1.0, "a": 1.0}},
        {"seq": 3, "values": {"b": 1.0}},
    ]
    with pytest.raises(InvalidInput) as refused:
        check_events(events, ["a", "b"])
    errors = [(e["seq"], e["field"], e["type"]) for e in refused.value.extra["errors"]]
    assert errors == [(1, "b", "missing"), (3, "a", "missing")]
