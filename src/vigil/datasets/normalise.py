"""What a dataset may hold, whatever file it came in: flat columns of four kinds (numeric, boolean, categorical,
datetime) under unique, bounded names — every reader of `formats` ends here — and the short, path-free messages
with which a file is refused (a hostile file must never be echoed back whole)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from vigil.core.errors import InvalidInput, MalformedFile
from vigil.datasets.decoding import DecodeBudget, decoded_variable_bytes

ColumnKind = Literal["numeric", "categorical", "boolean", "datetime"]
_MAX_MESSAGE = 300
# Library messages may name a file on the server (a staging path): any absolute path is cut from them.
_PATHS = re.compile(r"(?:[A-Za-z]:\\|/)(?:[^\s'\"/\\]+[/\\])+[^\s'\"]*")


@dataclass(frozen=True)
class TableLimits:
    max_columns: int = 2048
    max_column_name_length: int = 256
    # Rows one read may produce (the inline cap, or the rows-per-dataset quota) and the bytes it may decode to:
    # checked from the file's metadata before decoding (`decoding.py`).
    max_rows: int | None = None
    max_decoded_bytes: int | None = None

    def budget(self) -> DecodeBudget:
        return DecodeBudget(max_rows=self.max_rows, max_bytes=self.max_decoded_bytes)


@dataclass(frozen=True)
class ColumnSchema:
    name: str
    kind: ColumnKind
    dtype: str
    nullable: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def normalised(table: pa.Table, *, limits: TableLimits, budget: DecodeBudget | None = None) -> pa.Table:
    if table.num_columns == 0:
        raise MalformedFile("The data has no columns.")
    check_width(table.num_columns, limits)
    check_names(table.column_names, limits)
    if table.num_rows == 0:
        raise MalformedFile("The data has a header but no rows.")
    if budget is not None:
        # Dictionary columns expand when decoded below: what they will take is charged first. (Parquet's were
        # charged at their decoded size as they were read; this counts them twice, erring on the safe side.)
        budget.charge(nbytes=sum(decoded_variable_bytes(c) for c in table.columns if pa.types.is_dictionary(c.type)))
    columns = [_normalised_column(name, table.column(name)) for name in table.column_names]
    return pa.Table.from_arrays(columns, names=table.column_names)


def check_width(columns: int, limits: TableLimits) -> None:
    if columns > limits.max_columns:
        raise InvalidInput(
            f"Too many columns: {columns} given, at most {limits.max_columns} are allowed.",
            errors=[{"loc": ["body"], "msg": "too many columns", "type": "too_many_columns"}],
        )


def check_names(names: list[str], limits: TableLimits) -> None:
    errors: list[dict[str, Any]] = []
    for position, name in enumerate(names):
        if not name.strip():
            errors.append({"loc": ["columns", position], "msg": "empty column name", "type": "empty_name"})
        elif len(name) > limits.max_column_name_length:
            errors.append(
                {
                    "loc": ["columns", position],
                    "msg": f"column name longer than {limits.max_column_name_length} characters",
                    "type": "name_too_long",
                }
            )
    seen: set[str] = set()
    for position, name in enumerate(names):
        if name in seen:
            errors.append({"loc": ["columns", position], "msg": "duplicate column name", "type": "duplicate_name"})
        seen.add(name)
    if errors:
        raise InvalidInput(f"{len(errors)} column name(s) cannot be used.", errors=errors[:50])


def _normalised_column(name: str, column: pa.ChunkedArray) -> pa.ChunkedArray:
    """One flat column of a supported type; dictionary strings decoded, decimals as floats, dates as timestamps."""
    dtype = column.type
    if pa.types.is_dictionary(dtype):
        column = _decoded(column)
        dtype = column.type
    if pa.types.is_null(dtype):
        # A column of nulls only: nothing says what it holds, so it is numeric with every value missing.
        return column.cast(pa.float64())
    if pa.types.is_decimal(dtype) or pa.types.is_float16(dtype):
        return column.cast(pa.float64())
    if pa.types.is_date(dtype):
        return column.cast(pa.timestamp("ms"))
    if pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return column.cast(pa.string())
    if (
        pa.types.is_integer(dtype)
        or pa.types.is_floating(dtype)
        or pa.types.is_boolean(dtype)
        or pa.types.is_timestamp(dtype)
    ):
        return column
    if pa.types.is_string(dtype):
        return _parsed_datetimes(column)
    raise InvalidInput(
        f"Column {column_label(name)} has type {dtype}, which is not supported; "
        "use numbers, booleans, text or timestamps.",
        errors=[{"loc": ["columns", name], "msg": f"unsupported type {dtype}", "type": "unsupported_type"}],
    )


def _decoded(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A dictionary-encoded column as plain values (decoded by hand: Arrow cannot take() from string views)."""
    value_type = column.type.value_type
    plain = pa.string() if pa.types.is_string_view(value_type) or pa.types.is_large_string(value_type) else value_type
    chunks = [pc.take(chunk.dictionary.cast(plain), chunk.indices) for chunk in column.chunks]
    return pa.chunked_array(chunks, type=plain)


def _parsed_datetimes(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Text that is all ISO-8601 timestamps (as JSON carries them) becomes a datetime column."""
    sample = column.drop_null().slice(0, 100)
    if len(sample) == 0:
        return column
    try:
        pc.cast(sample, pa.timestamp("us"))
        return pc.cast(column, pa.timestamp("us"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return column


def infer_schema(table: pa.Table) -> list[ColumnSchema]:
    """The kind of every column of a normalised table."""
    return [
        ColumnSchema(
            name=field.name, kind=_kind(field.type), dtype=str(field.type), nullable=table.column(i).null_count > 0
        )
        for i, field in enumerate(table.schema)
    ]


def _kind(dtype: pa.DataType) -> ColumnKind:
    if pa.types.is_boolean(dtype):
        return "boolean"
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype):
        return "numeric"
    if pa.types.is_timestamp(dtype):
        return "datetime"
    return "categorical"


# -- messages --------------------------------------------------------------------------------------------------
def short_message(exc: BaseException) -> str:
    text = _PATHS.sub("<file>", " ".join(str(exc).split()))
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "…"


def column_label(name: str) -> str:
    return repr(name) if len(name) <= 64 else repr(name[:64] + "…")
