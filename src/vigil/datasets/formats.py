"""Tabular file formats: read CSV, JSON records, Parquet and Arrow IPC into one normalised Arrow table, or refuse.

Every reader ends in `normalise.normalised`, so whatever the format, a dataset holds only flat columns of four kinds
(numeric, boolean, categorical, datetime) under unique, bounded names. Library errors are turned into
`MalformedFile` problems with a short, truncated message: a hostile file must never be echoed back whole.
"""

from __future__ import annotations

import csv
import enum
import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pyarrow import ipc

from vigil.analysis.columns import clean
from vigil.core.bounds import json_cost
from vigil.core.errors import InvalidInput, MalformedFile, UnsupportedMediaType
from vigil.datasets.decoding import (
    DecodeBudget,
    charge_batch,
    check_ipc_file,
    check_ipc_stream,
    check_parquet,
)
from vigil.datasets.normalise import (
    ColumnSchema,
    TableLimits,
    check_names,
    check_width,
    column_label,
    infer_schema,
    normalised,
    short_message,
)

# What a caller of the readers needs is here, the column rules' names included (they live in `normalise`).
__all__ = [
    "MEDIA_TYPES",
    "ROW_GROUP_ROWS",
    "ColumnSchema",
    "FileFormat",
    "TableLimits",
    "format_for",
    "infer_schema",
    "read_table",
    "table_from_bytes",
    "table_from_json",
    "table_from_records",
    "to_records",
    "write_parquet",
]

# A CSV row must fit in one parse block; this bounds the longest row (and header) we accept.
_CSV_BLOCK_BYTES = 16 * 1024 * 1024
_PARQUET_BATCH_ROWS = 65_536
_ARROW_FILE_MAGIC = b"ARROW1"


class FileFormat(enum.StrEnum):
    CSV = "csv"
    JSON = "json"
    PARQUET = "parquet"
    ARROW = "arrow"


MEDIA_TYPES: dict[str, FileFormat] = {
    "text/csv": FileFormat.CSV,
    "application/csv": FileFormat.CSV,
    "application/json": FileFormat.JSON,
    "application/vnd.apache.parquet": FileFormat.PARQUET,
    "application/x-parquet": FileFormat.PARQUET,
    "application/vnd.apache.arrow.stream": FileFormat.ARROW,
    "application/vnd.apache.arrow.file": FileFormat.ARROW,
}
_EXTENSIONS = {
    ".csv": FileFormat.CSV,
    ".json": FileFormat.JSON,
    ".parquet": FileFormat.PARQUET,
    ".pq": FileFormat.PARQUET,
    ".arrow": FileFormat.ARROW,
    ".arrows": FileFormat.ARROW,
    ".feather": FileFormat.ARROW,
    ".ipc": FileFormat.ARROW,
}
# Multipart clients often label every file this way; the file name then decides.
_GENERIC_MEDIA_TYPES = {None, "", "application/octet-stream"}


def format_for(*, media_type: str | None, filename: str | None) -> FileFormat:
    """The format a body or file part is in, from its media type, else (for generic types) its file name."""
    media = (media_type or "").split(";")[0].strip().lower()
    if media in MEDIA_TYPES:
        return MEDIA_TYPES[media]
    if media in _GENERIC_MEDIA_TYPES and filename:
        fmt = _EXTENSIONS.get(Path(filename).suffix.lower())
        if fmt is not None:
            return fmt
    raise UnsupportedMediaType(media or None, list(MEDIA_TYPES))


# -- reading ---------------------------------------------------------------------------------------------------
def read_table(path: Path, fmt: FileFormat, *, limits: TableLimits) -> pa.Table:
    """Reads a file in `fmt` into a normalised table; raises `MalformedFile`/`InvalidInput` when it cannot, and
    `TooManyRows`/`DecodeBudgetExceeded` (before decoding) when it would decode past the limits."""
    if path.stat().st_size == 0:
        raise MalformedFile("The file is empty.")
    if fmt is FileFormat.JSON:
        return table_from_json(path.read_bytes(), limits=limits)
    with pa.memory_map(str(path)) as source:
        return _read(source.read_buffer(), fmt, limits=limits)


def table_from_bytes(data: bytes, fmt: FileFormat, *, limits: TableLimits) -> pa.Table:
    """As `read_table`, for a body already in memory (detection requests)."""
    if not data:
        raise MalformedFile("The body is empty.")
    if fmt is FileFormat.JSON:
        return table_from_json(data, limits=limits)
    return _read(pa.py_buffer(data), fmt, limits=limits)


def _read(data: pa.Buffer, fmt: FileFormat, *, limits: TableLimits) -> pa.Table:
    budget = limits.budget()
    try:
        if fmt is FileFormat.CSV:
            table = _read_csv(data, budget)
        elif fmt is FileFormat.PARQUET:
            table = _read_parquet(data, limits, budget)
        else:
            table = _read_arrow(data, budget)
        return normalised(table, limits=limits, budget=budget)
    except (pa.ArrowException, OSError, ValueError) as exc:
        # UnicodeDecodeError (a ValueError) lands here too: a header that is not UTF-8 is the file's fault.
        raise MalformedFile(f"This is not a readable {fmt.value.upper()} file: {short_message(exc)}") from exc


def _read_csv(data: pa.Buffer, budget: DecodeBudget) -> pa.Table:
    # CSV decodes to about its own size, so the body limit bounds it; the rows and bytes are charged after.
    _check_quotes(data)
    table = pacsv.read_csv(
        pa.BufferReader(data),
        read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK_BYTES),
        convert_options=pacsv.ConvertOptions(strings_can_be_null=True),
    )
    budget.charge(rows=table.num_rows, nbytes=table.nbytes)
    return table


def _check_quotes(data: pa.Buffer) -> None:
    """An unterminated quoted field swallows the rest of the file into one cell; Arrow accepts that silently.
    Quotes come in pairs in well-formed CSV, so only an odd count needs the (slow, exact) look for where."""
    view = memoryview(data)
    quotes = sum(view[i : i + _CSV_BLOCK_BYTES].tobytes().count(b'"') for i in range(0, len(view), _CSV_BLOCK_BYTES))
    if quotes % 2 == 0:
        return
    text = io.TextIOWrapper(io.BytesIO(view), encoding="utf-8", errors="replace", newline="")
    reader = csv.reader(text, strict=True)
    record_line = 1
    try:
        for _ in reader:
            record_line = reader.line_num + 1
    except csv.Error as exc:
        raise InvalidInput(
            f"Malformed CSV: the record starting on line {record_line} has a quoted field that is never closed "
            "(or a quote inside a quoted field that is not doubled).",
            errors=[{"loc": ["body", "line", record_line], "msg": "unterminated quoted field", "type": "csv_quote"}],
            line=record_line,
        ) from exc


def _read_parquet(data: pa.Buffer, limits: TableLimits, budget: DecodeBudget) -> pa.Table:
    """Rows, columns and fixed-width bytes from the footer first; then row group by row group, text columns
    kept dictionary-encoded until their decoded size has been charged."""
    probe = pq.ParquetFile(pa.BufferReader(data))
    schema = probe.schema_arrow
    check_width(len(schema), limits)
    check_parquet(probe.metadata, schema, budget)
    text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    reader = pq.ParquetFile(pa.BufferReader(data), read_dictionary=text) if text else probe
    batches = []
    for batch in reader.iter_batches(batch_size=_PARQUET_BATCH_ROWS):
        charge_batch(batch, budget)
        batches.append(batch)
    return pa.Table.from_batches(batches, schema=batches[0].schema if batches else reader.schema_arrow)


def _read_arrow(data: pa.Buffer, budget: DecodeBudget) -> pa.Table:
    """Arrow IPC in its stream form, or its file (Feather v2) form: a magic, the same messages, a footer. Every
    message is sized before any is decoded."""
    raw = data.to_pybytes()  # the header walk reads bytes; bodies are bounded by the body limit
    if raw[:6] == _ARROW_FILE_MAGIC and raw[-6:] == _ARROW_FILE_MAGIC:
        check_ipc_file(raw, budget)
        with ipc.open_file(pa.BufferReader(data)) as file_reader:
            return file_reader.read_all()
    check_ipc_stream(raw, budget)
    with ipc.open_stream(pa.BufferReader(data)) as reader:
        return reader.read_all()


def table_from_json(data: bytes, *, limits: TableLimits) -> pa.Table:
    """JSON records: an array of flat objects, e.g. `[{"a": 1, "b": "x"}, …]`."""
    # Parsed JSON is Python objects, some twenty-five times the text (10 MB of `{"a":0},` is ~290 MB): what they
    # will take is estimated from the text's punctuation and charged before parsing.
    limits.budget().charge(nbytes=json_cost(data))
    try:
        records = json.loads(data, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise MalformedFile(f"This is not valid JSON: {short_message(exc)}") from exc
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise MalformedFile('JSON data must be an array of records (objects), e.g. [{"a": 1}, {"a": 2}].')
    return table_from_records(records, limits=limits)


def _refuse_constant(name: str) -> float:
    raise MalformedFile(f"{name} is not a JSON number; send null for a missing value.")


def table_from_records(records: list[dict[str, Any]], *, limits: TableLimits) -> pa.Table:
    """Records (dicts) to a normalised table; a key missing from a record is a null, a column has one type."""
    if not records:
        raise MalformedFile("There are no records.")
    limits.budget().charge(rows=len(records))
    names: dict[str, None] = {}
    for record in records:
        for key in record:
            names.setdefault(key, None)
            if len(names) > limits.max_columns:
                raise InvalidInput(f"Too many columns: at most {limits.max_columns} are allowed.")
    check_names(list(names), limits)
    columns = {}
    for name in names:
        values = [record.get(name) for record in records]
        columns[name] = _column_from_values(name, values)
    return normalised(pa.table(columns), limits=limits)


def _column_from_values(name: str, values: list[Any]) -> pa.Array:
    kinds = {type(v) for v in values if v is not None}
    if kinds & {dict, list}:
        raise InvalidInput(
            f"Column {column_label(name)} holds nested objects or arrays; only flat values are supported.",
            errors=[{"loc": ["records", name], "msg": "nested value", "type": "nested"}],
        )
    if bool in kinds and kinds - {bool}:
        raise InvalidInput(
            f"Column {column_label(name)} mixes booleans with other values.",
            errors=[{"loc": ["records", name], "msg": "mixed types", "type": "mixed_types"}],
        )
    try:
        array = pa.array(values)
    except (pa.ArrowException, TypeError, OverflowError) as exc:
        raise InvalidInput(
            f"Column {column_label(name)} mixes values of different types: {short_message(exc)}",
            errors=[{"loc": ["records", name], "msg": "mixed types", "type": "mixed_types"}],
        ) from exc
    # Checked on the array, not value by value: inline detection records come through here.
    if pa.types.is_floating(array.type) and pc.all(pc.is_finite(array)).as_py() is False:
        raise InvalidInput(
            f"Column {column_label(name)} holds a non-finite number (NaN or infinity); send null for a missing value.",
            errors=[{"loc": ["records", name], "msg": "non-finite number", "type": "non_finite"}],
        )
    return array


# -- writing ---------------------------------------------------------------------------------------------------
# Row groups of this many rows: the unit batch work fans out by (a scoring job's partitions are runs of them).
ROW_GROUP_ROWS = 131_072


def write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd", row_group_size=ROW_GROUP_ROWS)


def to_records(table: pa.Table) -> list[dict[str, Any]]:
    """Rows as JSON-safe dicts: NaN becomes null, timestamps ISO-8601 strings."""
    return [{key: clean(value) for key, value in row.items()} for row in table.to_pylist()]
