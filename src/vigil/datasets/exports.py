"""Writing a stored dataset out in any of the upload formats, batch by batch, so a download never needs the whole
table in memory; CSV cells that a spreadsheet would run as formulas are written as text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pyarrow import ipc

from vigil.core.csv_safety import FORMULA_STARTS, neutralise_cell
from vigil.datasets.formats import FileFormat, to_records

MEDIA_TYPES = {
    FileFormat.CSV: "text/csv",
    FileFormat.JSON: "application/json",
    FileFormat.PARQUET: "application/vnd.apache.parquet",
    FileFormat.ARROW: "application/vnd.apache.arrow.stream",
}
_BATCH_ROWS = 64_000


def write_export(source: Path, fmt: FileFormat, target: Path) -> None:
    """Writes the Parquet file `source` to `target` in `fmt`."""
    parquet = pq.ParquetFile(source)
    batches = parquet.iter_batches(batch_size=_BATCH_ROWS)
    schema = parquet.schema_arrow
    if fmt is FileFormat.CSV:
        _write_csv(batches, schema, target)
    elif fmt is FileFormat.ARROW:
        with ipc.new_stream(str(target), schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
    elif fmt is FileFormat.JSON:
        _write_json(batches, target)
    else:
        with pq.ParquetWriter(str(target), schema, compression="zstd") as parquet_writer:
            for batch in batches:
                parquet_writer.write_batch(batch)


def _write_csv(batches: Iterator[pa.RecordBatch], schema: pa.Schema, target: Path) -> None:
    names = [str(neutralise_cell(name)) for name in schema.names]
    with pacsv.CSVWriter(str(target), pa.schema([f.with_name(n) for f, n in zip(schema, names, strict=True)])) as w:
        for batch in batches:
            w.write_batch(pa.RecordBatch.from_arrays([_neutralised(c) for c in batch.columns], names=names))


def _neutralised(column: pa.Array) -> pa.Array:
    """Text cells starting like a formula get a leading apostrophe (CWE-1236); other columns are left alone."""
    if not pa.types.is_string(column.type):
        return column
    risky = pc.starts_with(column, FORMULA_STARTS[0])
    for prefix in FORMULA_STARTS[1:]:
        risky = pc.or_(risky, pc.starts_with(column, prefix))
    return pc.if_else(risky, pc.binary_join_element_wise("'", column, ""), column)


def _write_json(batches: Iterator[pa.RecordBatch], target: Path) -> None:
    """JSON records, the shape uploads take: `[{"column": value, …}, …]`."""
    with target.open("w", encoding="utf-8") as out:
        out.write("[")
        first = True
        for batch in batches:
            for record in to_records(pa.Table.from_batches([batch])):
                out.write(("" if first else ",\n") + json.dumps(record, allow_nan=False))
                first = False
        out.write("]\n")
