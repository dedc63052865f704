"""The binary layout of one write-ahead-log record: a batch's new events, their scores and flags.

One row per batch, not per event: a batch of 100 events costs one INSERT. Layout (little-endian):
``b"VWAL"``, format byte, event count n (uint32), feature count f (uint16), then ``seq`` int64[n], the values
float64[n·f] row by row in the stream's feature order, ``score`` float64[n], ``flag`` uint8[n]. Floats are kept
bit for bit, so replaying a record feeds the model exactly what it first saw.

>>> body = encode([4, 7], [1.0, 2.0, 3.5, -1.0], [0.1, 0.9], [False, True], width=2)
>>> record = decode(body, ["a", "b"])
>>> record.seqs, record.events[1], record.scores, record.flags
([4, 7], {'a': 3.5, 'b': -1.0}, [0.1, 0.9], [False, True])
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MAGIC = b"VWAL"
FORMAT = 1
_HEADER = struct.Struct("<4sBIH")


@dataclass(frozen=True)
class WalRecord:
    seqs: list[int]
    events: list[dict[str, float]]
    scores: list[float]
    flags: list[bool]


def encode(
    seqs: Sequence[int], values: Sequence[float], scores: Sequence[float], flags: Sequence[bool], *, width: int
) -> bytes:
    """The record of `len(seqs)` events whose `values` come row after row, `width` to a row (`array` packs flat
    lists of Python numbers in one C loop each; the layout is little-endian whatever the machine)."""
    n = len(seqs)
    if len(values) != n * width:
        raise ValueError("values must hold `width` numbers per event")
    parts: list[array[Any]] = [array("q", seqs), array("d", values), array("d", scores), array("B", flags)]
    if sys.byteorder != "little":
        for part in parts:
            part.byteswap()
    return b"".join((_HEADER.pack(MAGIC, FORMAT, n, width if n else 0), *(part.tobytes() for part in parts)))


def decode(body: bytes, features: Sequence[str]) -> WalRecord:
    magic, version, n, width = _HEADER.unpack_from(body)
    if magic != MAGIC or version != FORMAT or width != len(features):
        raise ValueError("not a write-ahead-log record of this stream")
    offset = _HEADER.size
    seqs = np.frombuffer(body, dtype="<i8", count=n, offset=offset)
    offset += 8 * n
    values = np.frombuffer(body, dtype="<f8", count=n * width, offset=offset).reshape(n, width)
    offset += 8 * n * width
    scores = np.frombuffer(body, dtype="<f8", count=n, offset=offset)
    offset += 8 * n
    flags = np.frombuffer(body, dtype=np.uint8, count=n, offset=offset)
    names = list(features)
    return WalRecord(
        seqs=seqs.tolist(),
        events=[dict(zip(names, row, strict=True)) for row in values.tolist()],
        scores=scores.tolist(),
        flags=[bool(f) for f in flags],
    )
