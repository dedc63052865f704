"""Properties of the format readers (Hypothesis): whatever bytes arrive in whatever declared format, a reader
answers with a normalised table or a `VigilError` (a problem the client is shown) — never any other exception,
which the server would turn into a 500.

Random bytes rarely get past a Parquet or Arrow magic number, so besides them the tests feed valid files of each
format that were then damaged: truncated, bytes overwritten, bytes inserted."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyarrow import ipc

from vigil.core.errors import VigilError
from vigil.datasets import formats
from vigil.datasets.formats import FileFormat, TableLimits

LIMITS = TableLimits(max_columns=16, max_column_name_length=32)
# The one file under tmp_path is rewritten by each example, so sharing the fixture across examples is fine.
PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)

cell = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
column_names = st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=4, unique=True)


@st.composite
def records(draw: st.DrawFn) -> list[dict[str, object]]:
    names = draw(column_names)
    rows = draw(st.integers(min_value=0, max_value=6))
    return [{name: draw(cell) for name in names} for _ in range(rows)]


def _table(rows: list[dict[str, object]]) -> pa.Table | None:
    """A typed table of the records (one type per column), or None when Arrow cannot type a column."""
    try:
        return pa.Table.from_pylist(rows) if rows else None
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return None


def _encoded(rows: list[dict[str, object]], fmt: FileFormat) -> bytes:
    if fmt is FileFormat.JSON:
        return json.dumps(rows).encode()
    table = _table(rows)
    if table is None:
        return b""
    sink = io.BytesIO()
    if fmt is FileFormat.CSV:
        try:
            pacsv.write_csv(table, sink)
        except pa.ArrowException:
            return b""
    elif fmt is FileFormat.PARQUET:
        pq.write_table(table, sink)
    else:
        with ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    return sink.getvalue()


@st.composite
def damaged(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` truncated, overwritten in places, or with bytes inserted."""
    if not data:
        return draw(st.binary(max_size=64))
    damage = draw(st.sampled_from(["truncate", "overwrite", "insert"]))
    at = draw(st.integers(min_value=0, max_value=len(data) - 1))
    if damage == "truncate":
        return data[:at]
    chunk = draw(st.binary(min_size=1, max_size=16))
    if damage == "overwrite":
        return data[:at] + chunk + data[at + len(chunk) :]
    return data[:at] + chunk + data[at:]


def assert_table_or_problem(data: bytes, fmt: FileFormat, tmp_path: Path) -> None:
    """Both entry points: a body in memory (detection) and a staged file (uploads)."""
    for read in (
        lambda: formats.table_from_bytes(data, fmt, limits=LIMITS),
        lambda: _read_file(data, fmt, tmp_path),
    ):
        try:
            table = read()
        except VigilError:
            continue
        assert isinstance(table, pa.Table)
        assert table.num_columns <= LIMITS.max_columns
        assert len(set(table.column_names)) == table.num_columns, "duplicate column names got through"
        formats.infer_schema(table)  # every column is one of the four kinds


def _read_file(data: bytes, fmt: FileFormat, tmp_path: Path) -> pa.Table:
    path = tmp_path / f"upload.{fmt.value}"
    path.write_bytes(data)
    return formats.read_table(path, fmt, limits=LIMITS)


@PROPERTY_SETTINGS
@given(fmt=st.sampled_from(list(FileFormat)), data=st.binary(max_size=512))
def test_any_bytes_in_any_format_are_a_table_or_a_problem(fmt: FileFormat, data: bytes, tmp_path: Path) -> None:
    assert_table_or_problem(data, fmt, tmp_path)


@PROPERTY_SETTINGS
@given(fmt=st.sampled_from(list(FileFormat)), rows=records(), data=st.data())
def test_damaged_files_are_a_table_or_a_problem(
    fmt: FileFormat, rows: list[dict[str, object]], data: st.DataObject, tmp_path: Path
) -> None:
    assert_table_or_problem(data.draw(damaged(_encoded(rows, fmt))), fmt, tmp_path)


@PROPERTY_SETTINGS
@given(rows=records())
def test_any_json_records_are_a_table_or_a_problem(rows: list[dict[str, object]], tmp_path: Path) -> None:
    """Valid JSON of any shape of flat records (mixed types in a column, huge integers, NaN…)."""
    assert_table_or_problem(json.dumps(rows).encode(), FileFormat.JSON, tmp_path)


@PROPERTY_SETTINGS
@given(text=st.text(max_size=200), encoding=st.sampled_from(["utf-8", "utf-16", "latin-1"]))
def test_any_text_as_csv_is_a_table_or_a_problem(text: str, encoding: str, tmp_path: Path) -> None:
    """Quotes, separators, line breaks and non-UTF-8 encodings in any order."""
    assert_table_or_problem(text.encode(encoding, "replace"), FileFormat.CSV, tmp_path)
