"""The API's resource collections as namespaces of `VigilClient`: `datasets`, `detectors`, `jobs`."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vigil.client.errors import JobTimeout
from vigil.client.types import FINAL_JOB_STATES, JSON

if TYPE_CHECKING:
    from vigil.client.client import VigilClient

API = "/api/v1"
PARQUET = "application/vnd.apache.parquet"
# What a raw upload body is, by file suffix; the server refuses anything else with 415.
MEDIA_BY_SUFFIX = {
    ".csv": "text/csv",
    ".json": "application/json",
    ".parquet": PARQUET,
    ".arrow": "application/vnd.apache.arrow.stream",
    ".arrows": "application/vnd.apache.arrow.stream",
}


def parquet_bytes(frame: Any) -> bytes:
    """A polars DataFrame (or anything with `write_parquet`) as Parquet bytes."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


class _Collection:
    path: str

    def __init__(self, client: VigilClient) -> None:
        self._client = client

    def list(self, *, limit: int | None = None, cursor: str | None = None) -> JSON:
        """One page: ``{items, next_cursor}``, newest first."""
        return self._client.call("GET", f"{API}/{self.path}", params={"limit": limit, "cursor": cursor})

    def iter_all(self, *, page_size: int = 100) -> Iterator[JSON]:
        """Every item, following `next_cursor` page after page."""
        cursor: str | None = None
        while True:
            page = self.list(limit=page_size, cursor=cursor)
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def get(self, item_id: str) -> JSON:
        return self._client.call("GET", f"{API}/{self.path}/{item_id}")


class Datasets(_Collection):
    path = "datasets"

    def upload(
        self,
        data: bytes | str | Path | Any,
        *,
        name: str | None = None,
        description: str | None = None,
        media_type: str | None = None,
        idempotency_key: str | None = None,
    ) -> JSON:
        """Uploads bytes (give `media_type`, default CSV), a file path (type from its suffix), or a polars
        DataFrame (sent as Parquet). Returns the dataset: ``{id, name, rows, columns, schema, …}``."""
        if isinstance(data, bytes):
            body, media = data, media_type or "text/csv"
        elif isinstance(data, str | Path):
            path = Path(data)
            body = path.read_bytes()
            media = media_type or MEDIA_BY_SUFFIX.get(path.suffix.lower(), "application/octet-stream")
            name = name or path.stem
        elif hasattr(data, "write_parquet"):
            body, media = parquet_bytes(data), PARQUET
        else:
            raise TypeError(f"cannot upload a {type(data).__name__}: give bytes, a path or a polars DataFrame")
        return self._client.call(
            "POST",
            f"{API}/datasets",
            content=body,
            params={"name": name, "description": description},
            headers={"Content-Type": media},
            idempotency_key=idempotency_key,
        )

    def update(self, dataset_id: str, *, name: str | None = None, description: str | None = None) -> JSON:
        body = {k: v for k, v in {"name": name, "description": description}.items() if v is not None}
        return self._client.call("PATCH", f"{API}/datasets/{dataset_id}", json=body)

    def delete(self, dataset_id: str) -> None:
        self._client.request("DELETE", f"{API}/datasets/{dataset_id}")

    def rows(self, dataset_id: str, *, offset: int = 0, limit: int = 100) -> JSON:
        """A window of rows: ``{columns, rows, offset, limit, total}``."""
        return self._client.call("GET", f"{API}/datasets/{dataset_id}/rows", params={"offset": offset, "limit": limit})

    def all_rows(self, dataset_id: str, *, page_size: int = 1000) -> list[dict[str, Any]]:
        """Every row, window after window (for result datasets and other small data)."""
        rows: list[dict[str, Any]] = []
        while True:
            window = self.rows(dataset_id, offset=len(rows), limit=page_size)
            rows.extend(window["rows"])
            if not window["rows"] or len(rows) >= window["total"]:
                return rows


class Detectors(_Collection):
    path = "detectors"

    def create(
        self,
        *,
        name: str,
        algorithm: str = "auto",
        parameters: dict[str, Any] | None = None,
        contamination: float | None = None,
        features: list[str] | None = None,
        description: str | None = None,
        preprocessing: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> JSON:
        body: dict[str, Any] = {"name": name, "algorithm": algorithm}
        optional = {
            "parameters": parameters,
            "contamination": contamination,
            "features": features,
            "description": description,
            "preprocessing": preprocessing,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return self._client.call("POST", f"{API}/detectors", json=body, idempotency_key=idempotency_key)

    def update(self, detector_id: str, **changes: Any) -> JSON:
        """Changes name, description, parameters, contamination, features or preprocessing (next training)."""
        return self._client.call("PATCH", f"{API}/detectors/{detector_id}", json=changes)

    def delete(self, detector_id: str) -> None:
        self._client.request("DELETE", f"{API}/detectors/{detector_id}")

    def train(
        self, detector_id: str, dataset_id: str, *, promote: bool = True, idempotency_key: str | None = None
    ) -> JSON:
        """Starts training a new model version (made active when ready unless `promote=False`); returns the job."""
        return self._client.call(
            "POST",
            f"{API}/detectors/{detector_id}/train",
            json={"dataset_id": dataset_id, "promote": promote},
            idempotency_key=idempotency_key,
        )

    def versions(self, detector_id: str, *, limit: int | None = None, cursor: str | None = None) -> JSON:
        return self._client.call(
            "GET", f"{API}/detectors/{detector_id}/versions", params={"limit": limit, "cursor": cursor}
        )

    def detect(
        self,
        detector_id: str,
        *,
        records: list[dict[str, Any]] | None = None,
        dataset_id: str | None = None,
        frame: Any = None,
        version: int | None = None,
        explain: int | None = None,
        idempotency_key: str | None = None,
    ) -> JSON:
        """Exactly one of `records`, `frame` (Parquet body) or `dataset_id` (answers a job). `explain=k` adds each
        row's top-k features (`explanation` per result; `top_feature_i` columns in a job's result dataset)."""
        if sum(x is not None for x in (records, dataset_id, frame)) != 1:
            raise ValueError("give exactly one of records, dataset_id or frame")
        path = f"{API}/detectors/{detector_id}/detect"
        if frame is not None:
            return self._client.call(
                "POST",
                path,
                content=parquet_bytes(frame),
                params={"version": version, "explain": explain},
                headers={"Content-Type": PARQUET},
                idempotency_key=idempotency_key,
            )
        body: dict[str, Any] = {"records": records} if records is not None else {"dataset_id": dataset_id}
        if version is not None:
            body["version"] = version
        if explain is not None:
            body["explain"] = {"top_k": explain}
        return self._client.call("POST", path, json=body, idempotency_key=idempotency_key)

    # -- model versions: judge, promote, roll back, move between installations ----------------------------------
    def version(self, detector_id: str, version: int) -> JSON:
        return self._client.call("GET", f"{API}/detectors/{detector_id}/versions/{version}")

    def promote(self, detector_id: str, version: int) -> JSON:
        return self._client.call("POST", f"{API}/detectors/{detector_id}/versions/{version}/promote")

    def rollback(self, detector_id: str) -> JSON:
        return self._client.call("POST", f"{API}/detectors/{detector_id}/rollback")

    def delete_version(self, detector_id: str, version: int) -> None:
        self._client.request("DELETE", f"{API}/detectors/{detector_id}/versions/{version}")

    def compare(self, detector_id: str, a: int, b: int, *, dataset_id: str) -> JSON:
        """Rank correlation, flag overlap and metric deltas (b − a) of two versions on a dataset."""
        return self._client.call(
            "POST", f"{API}/detectors/{detector_id}/versions/compare", json={"a": a, "b": b, "dataset_id": dataset_id}
        )

    def export_version(self, detector_id: str, version: int) -> bytes:
        """The version as a signed export (bytes) for `import_version` in another tenant or installation."""
        return self._client.request("GET", f"{API}/detectors/{detector_id}/versions/{version}/export").content

    def import_version(self, detector_id: str, data: bytes, *, promote: bool = False) -> JSON:
        return self._client.call(
            "POST",
            f"{API}/detectors/{detector_id}/versions/import",
            content=data,
            params={"promote": promote},
            headers={"Content-Type": "application/octet-stream"},
        )

    # -- feedback -------------------------------------------------------------------------------------------------
    def feedback(
        self,
        detector_id: str,
        *,
        dataset_id: str,
        labels: dict[int, str] | None = None,
        label_column: str | None = None,
    ) -> JSON:
        """Labels rows of a dataset: `labels` maps row index → "anomaly"/"normal", or name a `label_column`."""
        body: dict[str, Any] = {"dataset_id": dataset_id}
        if labels is not None:
            body["labels"] = [{"index": index, "label": label} for index, label in labels.items()]
        if label_column is not None:
            body["label_column"] = label_column
        return self._client.call("POST", f"{API}/detectors/{detector_id}/feedback", json=body)

    def list_feedback(
        self, detector_id: str, *, dataset_id: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> JSON:
        return self._client.call(
            "GET",
            f"{API}/detectors/{detector_id}/feedback",
            params={"dataset_id": dataset_id, "limit": limit, "cursor": cursor},
        )

    def delete_feedback(self, detector_id: str, label_id: str) -> None:
        self._client.request("DELETE", f"{API}/detectors/{detector_id}/feedback/{label_id}")


class Jobs(_Collection):
    path = "jobs"

    def list(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        status: str | None = None,
        kind: str | None = None,
    ) -> JSON:
        return self._client.call(
            "GET", f"{API}/jobs", params={"limit": limit, "cursor": cursor, "status": status, "kind": kind}
        )

    def cancel(self, job_id: str) -> JSON:
        return self._client.call("POST", f"{API}/jobs/{job_id}/cancel")

    def wait(self, job_id: str, *, timeout: float = 120.0, poll: float = 0.2) -> JSON:
        """Polls until the job succeeded, failed or was cancelled and returns it (whatever the outcome);
        raises `JobTimeout` if it is still queued or running after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job["status"] in FINAL_JOB_STATES:
                return job
            if time.monotonic() >= deadline:
                raise JobTimeout(job, timeout)
            time.sleep(poll)
