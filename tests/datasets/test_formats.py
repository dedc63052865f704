"""The format readers on their own: what each accepts, how it is normalised, and what it refuses."""

from __future__ import annotations

import io
import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from vigil.core.errors import InvalidInput, MalformedFile, UnsupportedMediaType
from vigil.datasets import formats
from vigil.datasets.formats import FileFormat, TableLimits

LIMITS = TableLimits(max_columns=5, max_column_name_length=10)


def kinds(table: pa.Table) -> dict[str, str]:
    return {c.name: c.kind for c in formats.infer_schema(table)}


@pytest.mark.parametrize(
    ("media_type", "filename", "expected"),
    [
        ("text/csv; charset=utf-8", None, FileFormat.CSV),
        ("application/x-parquet", None, FileFormat.PARQUET),
        ("application/octet-stream", "data.PARQUET", FileFormat.PARQUET),
        (None, "events.arrow", FileFormat.ARROW),
        ("", "x.json", FileFormat.JSON),
    ],
)
def test_format_from_media_type_or_file_name(
    media_type: str | None, filename: str | None, expected: FileFormat
) -> None:
    assert formats.format_for(media_type=media_type, filename=filename) is expected


def test_unknown_formats_are_415() -> None:
    with pytest.raises(UnsupportedMediaType):
        formats.format_for(media_type="application/xml", filename="x.csv")
    with pytest.raises(UnsupportedMediaType):
        formats.format_for(media_type="application/octet-stream", filename="x.xlsx")


def test_json_records_with_missing_keys_and_timestamps() -> None:
    records = [{"a": 1, "t": "2024-01-01T10:00:00"}, {"b": "x"}, {"a": 2.5, "t": None}]
    table = formats.table_from_records(records, limits=LIMITS)
    assert table.column_names == ["a", "t", "b"]
    assert kinds(table) == {"a": "numeric", "t": "datetime", "b": "categorical"}
    assert formats.to_records(table)[1] == {"a": None, "t": None, "b": "x"}
    assert formats.to_records(table)[0]["t"] == "2024-01-01T10:00:00"


@pytest.mark.parametrize(
    ("records", "fragment"),
    [
        ([{"a": 1}, {"a": "x"}], "mixes"),
        ([{"a": True}, {"a": 1}], "booleans"),
        ([{"a": {"nested": 1}}], "nested"),
        ([{"a": float("inf")}], "non-finite"),
        ([{f"c{i}": i for i in range(6)}], "Too many columns"),
        ([{"x" * 11: 1}], "column name"),
        ([{" ": 1}], "column name"),
    ],
)
def test_records_that_cannot_be_a_table(records: list[dict[str, object]], fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        formats.table_from_records(records, limits=LIMITS)


@pytest.mark.parametrize("body", [b"NaN", b"[1, 2]", b'{"a": 1}', b'[{"a": NaN}]', b"[" * 100_000, b"[]"], ids=str)
def test_json_that_is_not_records_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedFile):
        formats.table_from_bytes(body, FileFormat.JSON, limits=LIMITS)


def test_every_binary_format_round_trips(tmp_path: Path) -> None:
    frame = pl.DataFrame({"x": [1.0, None], "c": pl.Series(["a", "b"], dtype=pl.Categorical), "b": [True, None]})
    parquet = tmp_path / "f.parquet"
    frame.write_parquet(parquet)
    feather = tmp_path / "f.arrow"
    frame.write_ipc(feather)
    stream = io.BytesIO()
    frame.write_ipc_stream(stream)
    tables = [
        formats.read_table(parquet, FileFormat.PARQUET, limits=LIMITS),
        formats.read_table(feather, FileFormat.ARROW, limits=LIMITS),
        formats.table_from_bytes(stream.getvalue(), FileFormat.ARROW, limits=LIMITS),
    ]
    for table in tables:
        # Categorical (dictionary) columns are decoded into plain text.
        assert kinds(table) == {"x": "numeric", "c": "categorical", "b": "boolean"}
        assert formats.to_records(table) == [{"x": 1.0, "c": "a", "b": True}, {"x": None, "c": "b", "b": None}]


def test_nested_parquet_columns_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "nested.parquet"
    pl.DataFrame({"a": [[1, 2], [3]]}).write_parquet(path)
    with pytest.raises(InvalidInput, match="not supported"):
        formats.read_table(path, FileFormat.PARQUET, limits=LIMITS)


def test_refusals_never_echo_a_huge_input() -> None:
    body = ("a,b\n1,2\n3,4," + "9" * 100_000 + "\n").encode()
    with pytest.raises(MalformedFile) as caught:
        formats.table_from_bytes(body, FileFormat.CSV, limits=LIMITS)
    assert len(caught.value.detail) < 500


def test_empty_and_header_only_files(tmp_path: Path) -> None:
    empty = tmp_path / "e.csv"
    empty.write_bytes(b"")
    with pytest.raises(MalformedFile, match="empty"):
        formats.read_table(empty, FileFormat.CSV, limits=LIMITS)
    with pytest.raises(MalformedFile, match="no rows"):
        formats.table_from_bytes(b"a,b\n", FileFormat.CSV, limits=LIMITS)
    assert json.dumps(formats.to_records(formats.table_from_bytes(b"a\n1\n", FileFormat.CSV, limits=LIMITS)))
