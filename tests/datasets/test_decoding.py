"""Decompression bombs and malformed files: what a file decodes to is checked from its metadata before decoding,
against the row cap and the decode budget; malformed CSV says where; no message names a server path."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyarrow import ipc

from vigil.core.errors import InvalidInput, MalformedFile
from vigil.datasets import formats
from vigil.datasets.decoding import DecodeBudgetExceeded, TooManyRows
from vigil.datasets.formats import FileFormat, TableLimits

MIB = 1024 * 1024
BOMB_ROWS = 20_000_000  # 160 MB of float64 once decoded, a few KB on the wire


def _parquet_bomb(path: Path, rows: int = BOMB_ROWS) -> None:
    """Zeros in 1M-row groups: dictionary + run-length encoding make each group a few bytes."""
    chunk = pa.table({"x": pa.array(np.zeros(1_000_000))})
    with pq.ParquetWriter(path, chunk.schema, compression="zstd") as writer:
        for _ in range(rows // 1_000_000):
            writer.write_table(chunk, row_group_size=1_000_000)


def _string_bomb_table(rows: int = 300, width: int = MIB) -> pa.Table:
    """One megabyte-long string, referenced by every row: about `rows` MB once decoded."""
    dictionary = pa.array(["s" * width])
    return pa.table({"s": pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int32)), dictionary)})


def _ipc(table: pa.Table, *, file: bool = False, compression: str | None = None) -> bytes:
    sink = io.BytesIO()
    options = ipc.IpcWriteOptions(compression=compression)
    opener = ipc.new_file if file else ipc.new_stream
    with opener(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue()


def test_a_parquet_bomb_is_refused_from_its_footer_before_decoding(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.parquet"
    _parquet_bomb(bomb)
    assert bomb.stat().st_size < 100_000
    with pytest.raises(TooManyRows) as refused:
        formats.read_table(bomb, FileFormat.PARQUET, limits=TableLimits(max_rows=1_000_000))
    assert refused.value.seen == BOMB_ROWS
    with pytest.raises(DecodeBudgetExceeded):
        formats.read_table(bomb, FileFormat.PARQUET, limits=TableLimits(max_decoded_bytes=64 * MIB))
    # Proof that nothing was decoded: with every data page destroyed (the footer intact), the refusal is the same.
    data = bytearray(bomb.read_bytes())
    footer_start = len(data) - 8 - int.from_bytes(data[-8:-4], "little")
    data[4:footer_start] = b"\x00" * (footer_start - 4)
    with pytest.raises(TooManyRows):
        formats.table_from_bytes(bytes(data), FileFormat.PARQUET, limits=TableLimits(max_rows=1_000_000))


def test_a_parquet_string_bomb_is_refused_before_its_text_is_expanded(tmp_path: Path) -> None:
    path = tmp_path / "strings.parquet"
    pq.write_table(_string_bomb_table(), path, compression="zstd")
    assert path.stat().st_size < 200_000
    with pytest.raises(DecodeBudgetExceeded) as refused:
        formats.read_table(path, FileFormat.PARQUET, limits=TableLimits(max_decoded_bytes=128 * MIB))
    assert refused.value.extra["limit_bytes"] == 128 * MIB


@pytest.mark.parametrize("file", [False, True], ids=["stream", "file"])
def test_a_compressed_arrow_bomb_is_refused_from_its_message_headers(file: bool) -> None:
    bomb = _ipc(pa.table({"x": np.zeros(4_000_000)}), file=file, compression="zstd")
    assert len(bomb) < 100_000
    with pytest.raises(TooManyRows):
        formats.table_from_bytes(bomb, FileFormat.ARROW, limits=TableLimits(max_rows=10_000))
    with pytest.raises(DecodeBudgetExceeded):
        formats.table_from_bytes(bomb, FileFormat.ARROW, limits=TableLimits(max_decoded_bytes=8 * MIB))
    # Within the limits the same bytes decode, so the sizes read from the headers are the real ones.
    table = formats.table_from_bytes(bomb, FileFormat.ARROW, limits=TableLimits(max_decoded_bytes=40 * MIB))
    assert table.num_rows == 4_000_000


@pytest.mark.parametrize("file", [False, True], ids=["stream", "file"])
def test_an_arrow_dictionary_bomb_is_refused_before_it_is_expanded(file: bool) -> None:
    bomb = _ipc(_string_bomb_table(), file=file, compression="zstd")
    with pytest.raises(DecodeBudgetExceeded):
        formats.table_from_bytes(bomb, FileFormat.ARROW, limits=TableLimits(max_decoded_bytes=128 * MIB))


def test_a_damaged_arrow_header_is_a_malformed_file() -> None:
    good = _ipc(pa.table({"x": [1.0, 2.0]}))
    for damaged in (
        good[:-20],
        good[:12] + b"\xff" * 40 + good[52:],
        b"\xff\xff\xff\xff\x10\x00\x00\x00" + b"\x00" * 8,
    ):
        with pytest.raises(MalformedFile):
            formats.table_from_bytes(damaged, FileFormat.ARROW, limits=TableLimits())


def test_json_records_count_against_the_row_cap() -> None:
    with pytest.raises(TooManyRows):
        formats.table_from_bytes(b'[{"a": 1}, {"a": 2}, {"a": 3}]', FileFormat.JSON, limits=TableLimits(max_rows=2))


@pytest.mark.parametrize(
    ("body", "line"),
    [(b'a,b\n1,"2\n3,4\n', 2), (b'a,b\n1,2\n3,4\n5,"six\n7,8\n9,10\n', 4), (b'"a,b\n1,2\n', 1)],
)
def test_an_unterminated_quoted_field_is_refused_and_says_where(body: bytes, line: int) -> None:
    with pytest.raises(InvalidInput) as refused:
        formats.table_from_bytes(body, FileFormat.CSV, limits=TableLimits())
    assert f"line {line}" in refused.value.detail
    assert refused.value.extra["line"] == line


def test_well_formed_quotes_still_parse() -> None:
    body = b'a,b\n"x,""y""",1\n5",2\n"multi\nline",3\n'  # doubled quotes, a stray inch mark, a quoted newline
    table = formats.table_from_bytes(body, FileFormat.CSV, limits=TableLimits())
    assert table.column("a").to_pylist() == ['x,"y"', '5"', "multi\nline"]


def test_a_header_that_is_not_utf8_is_a_malformed_file() -> None:
    with pytest.raises(MalformedFile):
        formats.table_from_bytes(b"a\xff,b\n1,2\n", FileFormat.CSV, limits=TableLimits())


def test_errors_never_name_the_servers_files(tmp_path: Path) -> None:
    staging = tmp_path / "staging" / "upload-1234.part"
    staging.parent.mkdir()
    for fmt, data in ((FileFormat.PARQUET, b"PAR1garbagePAR1"), (FileFormat.ARROW, b"ARROW1\x00\x00garbage")):
        staging.write_bytes(data)
        with pytest.raises(MalformedFile) as refused:
            formats.read_table(staging, fmt, limits=TableLimits())
        assert str(tmp_path) not in refused.value.detail, refused.value.detail
        assert "staging" not in refused.value.detail, refused.value.detail


def test_plain_text_pages_past_the_budget_are_refused_from_the_footer(tmp_path: Path) -> None:
    """Text that is not dictionary-encoded: the pages' uncompressed size in the footer already says too much."""
    path = tmp_path / "plain.parquet"
    table = pa.table({"s": pa.array([f"{i:08d}" + "t" * 1000 for i in range(20_000)])})  # ~20 MB of text
    pq.write_table(table, path, compression="zstd", use_dictionary=False)
    assert formats.read_table(path, FileFormat.PARQUET, limits=TableLimits(max_decoded_bytes=64 * MIB)).num_rows
    data = bytearray(path.read_bytes())  # every page destroyed, the footer intact: refused without reading one
    footer_start = len(data) - 8 - int.from_bytes(data[-8:-4], "little")
    data[4:footer_start] = b"\x00" * (footer_start - 4)
    with pytest.raises(DecodeBudgetExceeded):
        formats.table_from_bytes(bytes(data), FileFormat.PARQUET, limits=TableLimits(max_decoded_bytes=8 * MIB))


def test_json_that_would_parse_into_too_many_objects_is_refused_before_parsing() -> None:
    records = b"[" + b",".join([b'{"a":0}'] * 500_000) + b"]"  # 4 MB of text, ~100 MB of Python objects
    with pytest.raises(DecodeBudgetExceeded):
        formats.table_from_bytes(records, FileFormat.JSON, limits=TableLimits(max_decoded_bytes=64 * MIB))
    # Refused on the estimate alone: the same text cut short (so unparseable) is refused the same way.
    with pytest.raises(DecodeBudgetExceeded):
        formats.table_from_bytes(records[:-10], FileFormat.JSON, limits=TableLimits(max_decoded_bytes=64 * MIB))
    assert formats.table_from_bytes(records, FileFormat.JSON, limits=TableLimits(max_decoded_bytes=256 * MIB))
