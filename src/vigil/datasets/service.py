"""Dataset use cases: ingest an upload as Parquet, describe, preview, rename, delete, and hand frames to others.

An upload is all-or-nothing: the file is parsed and validated in a staging area, written as Parquet, moved into
the blob store, and only then recorded; any failure removes what was written, so bad input leaves nothing behind.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Row
from sqlalchemy.orm import Session

from vigil.core.context import AppContext
from vigil.core.database import TenantScope
from vigil.core.errors import InvalidInput, NotFound, PayloadTooLarge, QuotaExceeded
from vigil.core.ids import new_id
from vigil.core.pagination import decode_cursor, page_of
from vigil.datasets import exports, formats
from vigil.datasets.decoding import TooManyRows
from vigil.datasets.models import Dataset
from vigil.datasets.repository import DatasetRepository
from vigil.datasets.schemas import DatasetPublic, DatasetUpdate, RowsPublic
from vigil.identity.quotas import StorageMeter, policy_of


@dataclass(frozen=True, slots=True)
class StoredTable:
    """A table written into the blob store (`DatasetService.put_table`), not yet recorded as a dataset."""

    dataset_id: str
    key: str
    size: int
    rows: int
    columns: int
    schema: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class DatasetUsage:
    datasets: int
    storage_bytes: int
    largest_rows: int


def to_public(dataset: Dataset | Row[Any]) -> DatasetPublic:
    """From the entity, or from a list page's row (the same attribute names)."""
    return DatasetPublic(
        id=dataset.id,
        name=dataset.name,
        description=dataset.description,
        rows=dataset.n_rows,
        columns=dataset.n_columns,
        schema_=dataset.columns_schema,
        size_bytes=dataset.size_bytes,
        source_format=dataset.source_format,
        origin=dataset.origin,
        created_at=dataset.created_at,
        updated_at=dataset.updated_at,
    )


class DatasetService:
    def __init__(self, *, session: Session, scope: TenantScope, app: AppContext) -> None:
        self.session = session
        self.scope = scope
        self.app = app
        self.datasets = DatasetRepository(session=session, scope=scope)

    @property
    def limits(self) -> formats.TableLimits:
        settings = self.app.settings
        return formats.TableLimits(
            max_columns=settings.max_dataset_columns,
            max_column_name_length=settings.max_column_name_length,
            max_decoded_bytes=settings.max_decoded_bytes,
        )

    def inline_limits(self) -> formats.TableLimits:
        """Limits of a table sent inline with a request (a Parquet or Arrow detection body)."""
        return dataclasses.replace(self.limits, max_rows=self.app.settings.max_inline_table_rows)

    # -- create ----------------------------------------------------------------------------------------------
    def create_from_file(
        self,
        *,
        path: Path,
        fmt: formats.FileFormat,
        name: str,
        description: str | None,
        created_by: str | None,
    ) -> DatasetPublic:
        policy = policy_of(self.session, self.scope, self.app.settings)
        if path.stat().st_size > policy.max_upload_bytes:
            raise PayloadTooLarge(policy.max_upload_bytes)
        policy.check("datasets", used=self.datasets.count())  # fail fast; checked again, locked, before the insert
        # The rows quota is known now: a file that would pass it is refused from its metadata, before decoding.
        rows_quota = policy.quotas["rows_per_dataset"]
        try:
            table = formats.read_table(path, fmt, limits=dataclasses.replace(self.limits, max_rows=rows_quota))
        except TooManyRows as exc:
            raise QuotaExceeded("rows_per_dataset", rows_quota, exc.seen) from exc
        return self.create_from_table(
            table=table, name=name, description=description, source_format=fmt.value, created_by=created_by
        )

    def create_from_table(
        self,
        *,
        table: pa.Table,
        name: str,
        description: str | None,
        source_format: str,
        created_by: str | None,
        origin: dict[str, Any] | None = None,
    ) -> DatasetPublic:
        """Stores a table as a new dataset: `put_table`, then `record_table`; a refused record removes the file."""
        stored = self.put_table(table)
        try:
            return self.record_table(
                stored, name=name, description=description, source_format=source_format, created_by=created_by,
                origin=origin,
            )  # fmt: skip
        except BaseException:
            self.app.blobs.delete(stored.key, best_effort=True)
            raise

    def put_table(self, table: pa.Table) -> StoredTable:
        """Writes a table as Parquet into the blob store, under a new dataset's key, in no transaction: the slow
        part of storing a dataset (seconds for a large table) never holds a lock — on SQLite the database's one
        write lock, which a job's outcome is recorded under (`record_table` with `commit=False`)."""
        dataset_id = new_id("ds")
        key = self.app.blobs.key(self.scope, "datasets", f"{dataset_id}.parquet")
        staging = self.app.blobs.staging_path(self.scope)
        try:
            formats.write_parquet(table, staging)
            size = self.app.blobs.put_file(key, staging)
        finally:
            staging.unlink(missing_ok=True)
        schema = [column.to_dict() for column in formats.infer_schema(table)]
        return StoredTable(dataset_id, key, size, table.num_rows, table.num_columns, schema)

    def record_table(
        self,
        stored: StoredTable,
        *,
        name: str,
        description: str | None,
        source_format: str,
        created_by: str | None,
        origin: dict[str, Any] | None = None,
        commit: bool = True,
    ) -> DatasetPublic:
        """Records a put table as a dataset, if the tenant's quotas allow. With `commit=False` the row joins the
        caller's transaction. The file is the caller's to remove if this fails (or the transaction rolls back)."""
        try:
            # Quotas are checked with the tenant's row locked until the commit: no two uploads share the last slot.
            policy = policy_of(self.session, self.scope, self.app.settings, lock=True)
            policy.check("rows_per_dataset", used=stored.rows, adding=0)
            count, _ = self.datasets.usage()
            policy.check("datasets", used=count)
            # The file is in the store already, so it is counted in `stored_bytes` only once it has a row.
            used = storage_meter(self.app).stored_bytes(self.session, self.scope)
            policy.check("storage_bytes", used=used, adding=stored.size)
            dataset = Dataset(
                id=stored.dataset_id,
                tenant_id=self.scope.tenant_id,
                name=name,
                description=description,
                n_rows=stored.rows,
                n_columns=stored.columns,
                columns_schema=stored.schema,
                size_bytes=stored.size,
                source_format=source_format,
                origin=origin or {},
                blob_key=stored.key,
                created_by=created_by,
            )
            self.datasets.add(dataset)
            if commit:
                self.session.commit()
        except BaseException:
            self.session.rollback()
            raise
        return to_public(dataset)

    # -- read ------------------------------------------------------------------------------------------------
    def get(self, *, dataset_id: str) -> DatasetPublic:
        return to_public(self._get(dataset_id))

    def list(self, *, limit: int, cursor: str | None) -> tuple[list[DatasetPublic], str | None]:
        rows = self.datasets.list(limit=limit, after_id=decode_cursor(cursor))
        items, next_cursor = page_of(rows, limit=limit, id_of=lambda d: d.id)
        return [to_public(d) for d in items], next_cursor

    def rows(self, *, dataset_id: str, offset: int, limit: int) -> RowsPublic:
        dataset = self._get(dataset_id)
        frame = pl.scan_parquet(self.app.blobs.local_path(dataset.blob_key)).slice(offset, limit).collect()
        return RowsPublic(
            columns=[c["name"] for c in dataset.columns_schema],
            rows=formats.to_records(frame.to_arrow()),
            offset=offset,
            limit=limit,
            total=dataset.n_rows,
        )

    def schema_of(self, *, dataset_id: str) -> builtins.list[dict[str, Any]]:
        return list(self._get(dataset_id).columns_schema)

    def row_groups(self, *, dataset_id: str) -> builtins.list[int]:
        """The rows of each row group of the stored Parquet file, in order: how batch work can be partitioned."""
        metadata = pq.ParquetFile(self.app.blobs.local_path(self._get(dataset_id).blob_key)).metadata
        return [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]

    def load_frame(
        self,
        *,
        dataset_id: str,
        columns: Sequence[str] | None = None,
        offset: int = 0,
        length: int | None = None,
    ) -> pl.DataFrame:
        """The dataset's rows as a polars frame (only `columns`, when given; rows [offset, offset + length) when
        given — only the row groups that hold them are read), for the engines."""
        dataset = self._get(dataset_id)
        known = {c["name"] for c in dataset.columns_schema}
        missing = [c for c in columns or () if c not in known]
        if missing:
            raise InvalidInput(
                f"Dataset {dataset_id!r} has no column(s) {', '.join(map(repr, missing[:10]))}.",
                errors=[{"loc": ["features", c], "msg": "no such column in the dataset"} for c in missing[:50]],
            )
        scan = pl.scan_parquet(self.app.blobs.local_path(dataset.blob_key))
        if columns is not None:
            scan = scan.select(list(columns))
        if offset or length is not None:
            scan = scan.slice(offset, length)
        return scan.collect()

    # -- change ----------------------------------------------------------------------------------------------
    def update(self, *, dataset_id: str, data: DatasetUpdate) -> DatasetPublic:
        dataset = self._get(dataset_id)
        if data.name is not None:
            dataset.name = data.name
        if "description" in data.model_fields_set:
            dataset.description = data.description
        self.session.commit()
        return to_public(dataset)

    def delete(self, *, dataset_id: str) -> None:
        dataset = self._get(dataset_id)
        key = dataset.blob_key
        self.datasets.delete(dataset)
        self.session.commit()
        # The row is gone first: a crash now leaves an orphan file, never a row pointing at nothing.
        self.app.blobs.delete(key, best_effort=True)

    def export(self, *, dataset_id: str, fmt: formats.FileFormat) -> tuple[Path, str]:
        """The dataset written in `fmt` to a staging file (the caller removes it), and a file name to offer."""
        dataset = self._get(dataset_id)
        target = self.app.blobs.staging_path(self.scope)
        try:
            exports.write_export(self.app.blobs.local_path(dataset.blob_key), fmt, target)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return target, f"{dataset.id}.{fmt.value}"

    def stored_file(self, *, dataset_id: str) -> Path:
        """Where the dataset's Parquet file is stored (to read, never to change: datasets are immutable)."""
        return self.app.blobs.local_path(self._get(dataset_id).blob_key)

    def usage(self) -> DatasetUsage:
        """What the tenant's datasets take of its quotas (`storage_bytes`: everything it stores, models too)."""
        count, _ = self.datasets.usage()
        stored = storage_meter(self.app).stored_bytes(self.session, self.scope)
        return DatasetUsage(datasets=count, storage_bytes=stored, largest_rows=self.datasets.largest_rows())

    def stored(self, *, dataset_id: str) -> Dataset:
        """The dataset's record (for the report use cases, which read its stored file)."""
        return self._get(dataset_id)

    def _get(self, dataset_id: str) -> Dataset:
        dataset = self.datasets.get(dataset_id)
        if dataset is None:
            raise NotFound("dataset", dataset_id)
        return dataset


def dataset_bytes(session: Session, scope: TenantScope) -> int:
    """The datasets' share of a tenant's storage (result datasets included): a counter for the `StorageMeter`."""
    return DatasetRepository(session=session, scope=scope).usage()[1]


def dataset_blob_refs(session: Session, scope: TenantScope, keys: builtins.list[str]) -> Sequence[str]:
    """The datasets' blobs among `keys` (uploads and detection results): a referrer for the orphan-blob sweep."""
    return DatasetRepository(session=session, scope=scope).referenced_blobs(keys)


def dataset_blob_keys(session: Session, scope: TenantScope, after: str | None, limit: int) -> Sequence[str]:
    """A page of the datasets' blobs, in key order: for the missing-blob check."""
    return DatasetRepository(session=session, scope=scope).blob_keys(after=after, limit=limit)


def storage_meter(app: AppContext) -> StorageMeter:
    """The app's meter; an app context assembled by hand (tests) without one counts the datasets alone."""
    return app.find(StorageMeter) or StorageMeter((dataset_bytes,))
