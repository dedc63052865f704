"""Tables in and out of the SDK: pandas, polars and pyarrow, whichever the caller uses (pandas is optional: it is
only used through pyarrow when the caller hands a pandas frame over or asks for one).

Everything travels as Parquet through pyarrow, so a column's type survives the round trip: what goes up as a
pandas frame comes back as a pandas frame with the same dtypes, plus the server's columns.

pyarrow and polars are imported on first use, not with the SDK: every `vigil` command imports the SDK, and the two
cost about half a second of each command's start (a test keeps them out).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pyarrow as pa

FrameKind = Literal["arrow", "polars", "pandas"]


def kind_of(data: Any) -> FrameKind | None:
    """Which library's table `data` is (by its type's module: no library is imported to find out)."""
    module = type(data).__module__.split(".", maxsplit=1)[0]
    if module == "pyarrow" and type(data).__name__ in ("Table", "RecordBatch"):
        return "arrow"
    if module == "polars":
        return "polars"
    if module == "pandas":
        return "pandas"
    return None


def to_arrow(data: Any) -> pa.Table:
    """A pyarrow Table from a pyarrow Table or RecordBatch, a polars or pandas DataFrame, or a list of records."""
    import pyarrow as pa  # noqa: PLC0415 (see the module docstring)

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
    import pyarrow.parquet as pq  # noqa: PLC0415 (see the module docstring)

    buffer = io.BytesIO()
    pq.write_table(to_arrow(data), buffer)
    return buffer.getvalue()


def read_parquet(content: bytes) -> pa.Table:
    import pyarrow.parquet as pq  # noqa: PLC0415 (see the module docstring)

    return pq.read_table(io.BytesIO(content))


def convert(table: pa.Table, kind: FrameKind) -> Any:
    """The table as the caller's kind of frame."""
    if kind == "arrow":
        return table
    if kind == "polars":
        import polars as pl  # noqa: PLC0415 (see the module docstring)

        return pl.from_arrow(table)
    if kind == "pandas":
        return table.to_pandas()
    raise ValueError(f"unknown frame kind {kind!r}: arrow, polars or pandas")


def columns_of(data: Any) -> list[str]:
    return list(to_arrow(data).column_names)
