"""Tables in and out of the SDK: pandas, polars and pyarrow, whichever the caller uses (pandas is optional: it is
only used through pyarrow when the caller hands a pandas frame over or asks for one).

Everything travels as Parquet through pyarrow, so a column's type survives the round trip: what goes up as a
pandas frame comes back as a pandas frame with the same dtypes, plus the server's columns.
"""

from __future__ import annotations

import io
from typing import Any, Literal

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

FrameKind = Literal["arrow", "polars", "pandas"]


def kind_of(data: Any) -> FrameKind | None:
    """Which library's table `data` is (by its type's module: no library is imported to find out)."""
    module = type(data).__module__.split(".", maxsplit=1)[0]
    if isinstance(data, pa.Table | pa.RecordBatch):
        return "arrow"
    if module == "polars":
        return "polars"
    if module == "pandas":
        return "pandas"
    return None


def to_arrow(data: Any) -> pa.Table:
    """A pyarrow Table from a pyarrow Table or RecordBatch, a polars or pandas DataFrame, or a list of records."""
    kind = kind_of(data)
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if kind == "arrow":
        table: pa.Table = data
        return table
    if kind == "polars":
        converted: pa.Table = data.to_arrow()
        return converted
    if kind == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    if isinstance(data, list) and all(isinstance(row, dict) for row in data):
        return pa.Table.from_pylist(data)
    raise TypeError(
        f"cannot send a {type(data).__name__}: give a pandas or polars DataFrame, a pyarrow Table or a list of dicts"
    )


def parquet_bytes(data: Any) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(to_arrow(data), buffer)
    return buffer.getvalue()


def read_parquet(content: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(content))


def convert(table: pa.Table, kind: FrameKind) -> Any:
    """The table as the caller's kind of frame."""
    if kind == "arrow":
        return table
    if kind == "polars":
        return pl.from_arrow(table)
    if kind == "pandas":
        return table.to_pandas()
    raise ValueError(f"unknown frame kind {kind!r}: arrow, polars or pandas")


def columns_of(data: Any) -> list[str]:
    return list(to_arrow(data).column_names)
