"""What a file will decode to, read from its metadata before anything is decoded — and a budget it must fit.

A few KB of Parquet or compressed Arrow can describe hundreds of millions of rows or a gigabyte-long string
(dictionary and run-length encodings, zstd): decoding first and checking after is how a server runs out of memory.
So rows, columns and decoded bytes are counted from the footer (Parquet) or each message's header (Arrow IPC)
and charged to a per-request `DecodeBudget`; only data that fits is ever decoded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vigil.core.errors import InvalidInput, MalformedFile, VigilError

# Arrow IPC `MessageHeader` union members we read (Message.fbs); anything else is not tabular data.
_SCHEMA, _DICTIONARY_BATCH, _RECORD_BATCH = 1, 2, 3
_NO_COMPRESSION = -1  # a compressed buffer's length prefix when that buffer was left uncompressed


class TooManyRows(InvalidInput):
    """More rows than the request may hold (the inline cap, or the rows-per-dataset quota)."""

    def __init__(self, limit: int, seen: int) -> None:
        super().__init__(
            f"The data holds more than {limit} rows, the most this request takes; larger data goes in a dataset "
            "(and is scored by a job).",
            errors=[{"loc": ["body"], "msg": f"at most {limit} rows", "type": "too_many_rows"}],
            limit=limit,
        )
        self.limit = limit
        self.seen = seen


class DecodeBudgetExceeded(VigilError):
    status = 413
    slug = "payload-too-large"
    title = "Payload too large"

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(
            f"The data would decode to more than {limit_bytes} bytes in memory, the most one request may use.",
            limit_bytes=limit_bytes,
        )


@dataclass
class DecodeBudget:
    """Rows and decoded bytes one request may produce; `charge` refuses the first step past either."""

    max_rows: int | None = None
    max_bytes: int | None = None
    rows: int = field(default=0, init=False)
    bytes: int = field(default=0, init=False)

    def charge(self, *, rows: int = 0, nbytes: int = 0) -> None:
        self.rows += rows
        self.bytes += nbytes
        if self.max_rows is not None and self.rows > self.max_rows:
            raise TooManyRows(self.max_rows, self.rows)
        if self.max_bytes is not None and self.bytes > self.max_bytes:
            raise DecodeBudgetExceeded(self.max_bytes)


# -- Parquet ---------------------------------------------------------------------------------------------------
def check_parquet(metadata: pq.FileMetaData, schema: pa.Schema, budget: DecodeBudget) -> None:
    """Rows and the fixed-width part of the decoded size, from the footer alone. Variable-width columns (text)
    are charged batch by batch as they are read, dictionary-encoded, before they are expanded."""
    width = sum(_fixed_width(f.type) for f in schema)
    budget.charge(rows=metadata.num_rows, nbytes=metadata.num_rows * width)
    # Pages decode to at least their uncompressed size (plain-encoded text exactly): a file whose pages alone
    # exceed the budget is refused now, not after its text has been read. Not charged: the batches are.
    pages = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    if budget.max_bytes is not None and pages > budget.max_bytes:
        raise DecodeBudgetExceeded(budget.max_bytes)


def charge_batch(batch: pa.RecordBatch, budget: DecodeBudget) -> None:
    """The variable-width (and dictionary-encoded) columns of a batch, at their size once decoded."""
    budget.charge(nbytes=sum(decoded_variable_bytes(column) for column in batch.columns))


def decoded_variable_bytes(array: pa.Array | pa.ChunkedArray) -> int:
    """What a text/binary column will take once plain (dictionary values expanded), without expanding it."""
    chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
    total = 0
    for chunk in chunks:
        dtype = chunk.type
        if pa.types.is_dictionary(dtype):
            if not _is_text(dtype.value_type):
                total += len(chunk) * _fixed_width(dtype.value_type)
                continue
            values = chunk.dictionary
            if pa.types.is_string_view(values.type) or pa.types.is_binary_view(values.type):
                values = values.cast(pa.large_binary())  # no length kernel for views
            lengths = pc.binary_length(values)
            used = pc.sum(pc.take(lengths, chunk.indices)).as_py() or 0
            total += int(used) + 8 * (len(chunk) + 1)
        elif _is_text(dtype):
            total += chunk.nbytes
    return total


def _is_text(dtype: pa.DataType) -> bool:
    checks = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)
    return any(
        bool(check(dtype)) for check in (*checks, pa.types.is_binary, pa.types.is_large_binary, pa.types.is_binary_view)
    )


def _fixed_width(dtype: pa.DataType) -> int:
    """Bytes per row of a fixed-width column once decoded (plus its validity bit, rounded up to a byte)."""
    if pa.types.is_dictionary(dtype) or _is_text(dtype):
        return 0
    try:
        return max(int(dtype.bit_width) // 8, 1) + 1
    except ValueError:  # nested or otherwise unsized: refused by the reader, count it as a wide column
        return 16


# -- Arrow IPC -------------------------------------------------------------------------------------------------
def check_ipc_stream(data: bytes, budget: DecodeBudget) -> None:
    """Walks an IPC stream's messages without decoding a body: each record or dictionary batch's rows and the
    sizes of its buffers once decompressed (a compressed buffer states its own uncompressed length)."""
    position = 0
    try:
        while position + 4 <= len(data):
            length = struct.unpack_from("<i", data, position)[0]
            position += 4
            if length == -1:  # the continuation marker, then the length
                length = struct.unpack_from("<i", data, position)[0]
                position += 4
            if length == 0:
                return  # end of stream
            if length < 0:
                raise MalformedFile("An Arrow message declares a negative length.")
            metadata = data[position : position + length]
            position += length
            body_length = _charge_message(metadata, data, position, budget)
            position += body_length
    except (struct.error, IndexError) as exc:
        raise MalformedFile("This is not a readable Arrow IPC stream.") from exc


def check_ipc_file(data: bytes, budget: DecodeBudget) -> None:
    """The file form: the footer lists every dictionary and record batch (where its message is, how long its
    metadata and body are); each is sized as in a stream."""
    try:
        footer_length = struct.unpack_from("<i", data, len(data) - 10)[0]
        start = len(data) - 10 - footer_length
        if footer_length <= 0 or start < 8:
            raise MalformedFile("The Arrow file's footer is damaged.")
        footer_bytes = data[start : len(data) - 10]
        footer: _Table = (footer_bytes, struct.unpack_from("<I", footer_bytes, 0)[0])
        for index in (2, 3):  # Footer.dictionaries, Footer.recordBatches: vectors of Block
            blocks = _vector(footer, index)
            if blocks is None:
                continue
            buf, first, count = blocks
            for i in range(count):
                offset, meta_length, body_length = struct.unpack_from("<qi4xq", buf, first + 24 * i)
                if offset < 8 or meta_length < 8 or body_length < 0 or offset + meta_length > len(data):
                    raise MalformedFile("The Arrow file's footer points outside the file.")
                prefix = 8 if struct.unpack_from("<i", data, offset)[0] == -1 else 4
                metadata = data[offset + prefix : offset + meta_length]
                _charge_message(metadata, data, offset + meta_length, budget, body_length=body_length)
    except (struct.error, IndexError) as exc:
        raise MalformedFile("This is not a readable Arrow IPC file.") from exc


def _charge_message(
    metadata: bytes, data: bytes, body_start: int, budget: DecodeBudget, body_length: int | None = None
) -> int:
    """Charges one message's rows and decoded bytes; returns its body's length."""
    root: _Table = (metadata, struct.unpack_from("<I", metadata, 0)[0])
    header_type = _scalar(root, 1, "<B", 0)
    declared_body = _scalar(root, 3, "<q", 0)
    body_length = declared_body if body_length is None else body_length
    if body_length < 0 or body_start + body_length > len(data):
        raise MalformedFile("An Arrow message's body runs past the end of the data.")
    if header_type == _SCHEMA:
        return body_length
    header = _table_field_table(root, 2)
    if header is not None and header_type == _DICTIONARY_BATCH:
        header = _table_field_table(header, 1)  # DictionaryBatch.data: a RecordBatch
    if header is None or header_type not in (_DICTIONARY_BATCH, _RECORD_BATCH):
        raise MalformedFile("The Arrow data holds a message that is not tabular data.")
    rows, nbytes = _record_batch_size(header, data, body_start)
    budget.charge(rows=rows if header_type == _RECORD_BATCH else 0, nbytes=nbytes)
    return body_length


# A flatbuffer table: the buffer and the table's position in it.
_Table = tuple[bytes, int]


def _record_batch_size(batch: _Table, data: bytes, body_start: int) -> tuple[int, int]:
    rows = _scalar(batch, 0, "<q", 0)
    compressed = _field_position(batch, 3) is not None
    total = 0
    buffers = _vector(batch, 2)
    if buffers is not None:
        buf, start, count = buffers
        for i in range(count):
            offset, length = struct.unpack_from("<qq", buf, start + 16 * i)
            if compressed and length >= 8:
                declared = struct.unpack_from("<q", data, body_start + offset)[0]
                total += length - 8 if declared == _NO_COMPRESSION else declared
            else:
                total += length
    if rows < 0 or total < 0:
        raise MalformedFile("An Arrow record batch declares a negative size.")
    return rows, total


def _field_position(table: _Table, index: int) -> int | None:
    buf, pos = table
    vtable = pos - struct.unpack_from("<i", buf, pos)[0]
    vtable_size = struct.unpack_from("<H", buf, vtable)[0]
    slot = 4 + 2 * index
    if slot + 2 > vtable_size:
        return None
    offset = struct.unpack_from("<H", buf, vtable + slot)[0]
    return pos + offset if offset else None


def _scalar(table: _Table, index: int, fmt: str, default: int) -> int:
    position = _field_position(table, index)
    return default if position is None else int(struct.unpack_from(fmt, table[0], position)[0])


def _table_field_table(table: _Table, index: int) -> _Table | None:
    position = _field_position(table, index)
    if position is None:
        return None
    return table[0], position + struct.unpack_from("<I", table[0], position)[0]


def _vector(table: _Table, index: int) -> tuple[bytes, int, int] | None:
    position = _field_position(table, index)
    if position is None:
        return None
    start = position + struct.unpack_from("<I", table[0], position)[0]
    return table[0], start + 4, struct.unpack_from("<I", table[0], start)[0]
