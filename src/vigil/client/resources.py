"""The API's resource collections as namespaces of `VigilClient`: `datasets`, `detectors`, `api_keys` (and the base
of `jobs`, in `vigil.client.jobs`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic

from vigil.client import frames
from vigil.client.models import (
    ApiKey,
    ApiKeyCreated,
    Dataset,
    DetectionResult,
    DetectorInfo,
    FeedbackLabel,
    FeedbackSummary,
    Job,
    M,
    ModelVersion,
    Page,
    Report,
    Rows,
    VersionComparison,
)

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

REPORT_KINDS = ("profile", "quality", "analysis")


def parquet_bytes(frame: Any) -> bytes:
    """A pandas or polars DataFrame, a pyarrow Table or a list of records as Parquet bytes."""
    return frames.parquet_bytes(frame)


class Collection(Generic[M]):
    path: str
    model: type[M]

    def __init__(self, client: VigilClient) -> None:
        self._client = client

    def list(self, *, limit: int | None = None, cursor: str | None = None) -> Page[M]:
        """One page: ``items`` and ``next_cursor``, newest first."""
        return self._page(self._client.call("GET", f"{API}/{self.path}", params={"limit": limit, "cursor": cursor}))

    def iter_all(self, *, page_size: int = 100) -> Iterator[M]:
        """Every item, following `next_cursor` page after page."""
        cursor: str | None = None
        while True:
            page = self.list(limit=page_size, cursor=cursor)
            yield from page.items
            cursor = page.next_cursor
            if not cursor:
                return

    def get(self, item_id: str) -> M:
        return self.model.model_validate(self._client.call("GET", f"{API}/{self.path}/{item_id}"))

    def _page(self, body: dict[str, Any]) -> Page[M]:
        return Page[self.model].model_validate(body)  # type: ignore[name-defined]


class Datasets(Collection[Dataset]):
    path = "datasets"
    model = Dataset

    def upload(
        self,
        data: bytes | str | Path | Any,
        *,
        name: str | None = None,
        description: str | None = None,
        media_type: str | None = None,
        idempotency_key: str | None = None,
    ) -> Dataset:
        """Uploads bytes (give `media_type`, default CSV), a file path (type from its suffix), or a table — a
        pandas or polars DataFrame or a pyarrow Table, sent as Parquet. Returns the dataset: ``{id, name, rows,
        columns, schema, …}``."""
        if isinstance(data, bytes):
            body, media = data, media_type or "text/csv"
        elif isinstance(data, str | Path):
            path = Path(data)
            body = path.read_bytes()
            media = media_type or MEDIA_BY_SUFFIX.get(path.suffix.lower(), "application/octet-stream")
            name = name or path.stem
        elif frames.kind_of(data) is not None:
            body, media = parquet_bytes(data), PARQUET
        else:
            raise TypeError(
                f"cannot upload a {type(data).__name__}: "
                "give bytes, a path, or a pandas/polars DataFrame or a pyarrow Table"
            )
        made = self._client.call(
            "POST",
            f"{API}/datasets",
            content=body,
            params={"name": name, "description": description},
            headers={"Content-Type": media},
            idempotency_key=idempotency_key,
        )
        return Dataset.model_validate(made)

    def update(self, dataset_id: str, *, name: str | None = None, description: str | None = None) -> Dataset:
        body = {k: v for k, v in {"name": name, "description": description}.items() if v is not None}
        return Dataset.model_validate(self._client.call("PATCH", f"{API}/datasets/{dataset_id}", json=body))

    def delete(self, dataset_id: str) -> None:
        self._client.request("DELETE", f"{API}/datasets/{dataset_id}")

    def rows(self, dataset_id: str, *, offset: int = 0, limit: int = 100) -> Rows:
        """A window of rows: `columns`, `rows` (records), `offset`, `limit` and the dataset's `total`."""
        window = self._client.call(
            "GET", f"{API}/datasets/{dataset_id}/rows", params={"offset": offset, "limit": limit}
        )
        return Rows.model_validate(window)

    def download(self, dataset_id: str, *, format: str = "parquet", to: str | Path | None = None) -> bytes:
        """The dataset's file (`format`: parquet, csv, json or arrow); also written to `to` when given."""
        content = self._client.request(
            "GET", f"{API}/datasets/{dataset_id}/download", params={"format": format}
        ).content
        if to is not None:
            Path(to).write_bytes(content)
        return content

    def to_frame(self, dataset_id: str, *, kind: frames.FrameKind = "polars") -> Any:
        """The whole dataset as a `kind` frame: "polars" (default), "pandas" or "arrow"."""
        return frames.convert(frames.read_parquet(self.download(dataset_id)), kind)

    # -- reports: profile, quality, analysis --------------------------------------------------------------------
    def report(self, dataset_id: str, kind: str, *, wait: bool = True, **options: Any) -> Report | Job:
        """Makes a report (`kind`: profile, quality or analysis; `options` as the API takes them, e.g.
        ``expectations=…`` or ``detector_id=…``). A large dataset's report is made by a job: with `wait`, the
        client waits for it and returns the report; otherwise the job."""
        if kind not in REPORT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(REPORT_KINDS)}")
        answer = self._client.request("POST", f"{API}/datasets/{dataset_id}/{kind}", json=options or None)
        if answer.status_code != 202:
            return Report.model_validate(answer.json())
        job = Job.model_validate(answer.json())
        if not wait:
            return job
        job = self._client.jobs.wait(job.id)
        if job.status != "succeeded":
            return job
        return self.get_report(dataset_id, kind)

    def get_report(self, dataset_id: str, kind: str, *, version: int | None = None) -> Report:
        found = self._client.call("GET", f"{API}/datasets/{dataset_id}/{kind}", params={"version": version})
        return Report.model_validate(found)

    def report_html(self, dataset_id: str, kind: str, *, to: str | Path | None = None) -> str:
        """The report as a self-contained HTML page (plots included); also written to `to` when given."""
        text = self._client.request("GET", f"{API}/datasets/{dataset_id}/{kind}.html").text
        if to is not None:
            Path(to).write_text(text, encoding="utf-8")
        return text

    def all_rows(self, dataset_id: str, *, page_size: int = 1000) -> list[dict[str, Any]]:
        """Every row, window after window (for result datasets and other small data)."""
        rows: list[dict[str, Any]] = []
        while True:
            window = self.rows(dataset_id, offset=len(rows), limit=page_size)
            rows.extend(window.rows)
            if not window.rows or len(rows) >= window.total:
                return rows


class Detectors(Collection[DetectorInfo]):
    path = "detectors"
    model = DetectorInfo

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
    ) -> DetectorInfo:
        body: dict[str, Any] = {"name": name, "algorithm": algorithm}
        optional = {
            "parameters": parameters,
            "contamination": contamination,
            "features": features,
            "description": description,
            "preprocessing": preprocessing,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        made = self._client.call("POST", f"{API}/detectors", json=body, idempotency_key=idempotency_key)
        return DetectorInfo.model_validate(made)

    def update(self, detector_id: str, **changes: Any) -> DetectorInfo:
        """Changes name, description, parameters, contamination, features or preprocessing (next training)."""
        return DetectorInfo.model_validate(self._client.call("PATCH", f"{API}/detectors/{detector_id}", json=changes))

    def delete(self, detector_id: str) -> None:
        self._client.request("DELETE", f"{API}/detectors/{detector_id}")

    def train(
        self, detector_id: str, dataset_id: str, *, promote: bool = True, idempotency_key: str | None = None
    ) -> Job:
        """Starts training a new model version (made active when ready unless `promote=False`); returns the job."""
        job = self._client.call(
            "POST",
            f"{API}/detectors/{detector_id}/train",
            json={"dataset_id": dataset_id, "promote": promote},
            idempotency_key=idempotency_key,
        )
        return Job.model_validate(job)

    def score(self, detector_id: str, frame: Any, *, version: int | None = None, explain: int | None = None) -> Any:
        """Scores a table (pandas, polars or pyarrow) and returns the same kind of table: the caller's columns
        plus `score` and `is_anomaly` (and the explanation columns with `explain=k`)."""
        kind = frames.kind_of(frame) or "arrow"
        table = frames.to_arrow(frame)
        answer = self._client.request(
            "POST",
            f"{API}/detectors/{detector_id}/detect",
            content=frames.parquet_bytes(table),
            params={"version": version, "explain": explain},
            headers={"Content-Type": PARQUET, "Accept": PARQUET},
        )
        scores = frames.read_parquet(answer.content).drop_columns(["index"])
        for name in scores.column_names:
            column = scores.column(name)
            if name in table.column_names:
                table = table.drop_columns([name])
            table = table.append_column(name, column)
        return frames.convert(table, kind)

    def versions(self, detector_id: str, *, limit: int | None = None, cursor: str | None = None) -> Page[ModelVersion]:
        page = self._client.call(
            "GET", f"{API}/detectors/{detector_id}/versions", params={"limit": limit, "cursor": cursor}
        )
        return Page[ModelVersion].model_validate(page)

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
    ) -> DetectionResult | Job:
        """Exactly one of `records`, `frame` (Parquet body) or `dataset_id` (answers a job). `explain=k` adds each
        row's top-k features (`explanation` per result; `top_feature_i` columns in a job's result dataset)."""
        if sum(x is not None for x in (records, dataset_id, frame)) != 1:
            raise ValueError("give exactly one of records, dataset_id or frame")
        path = f"{API}/detectors/{detector_id}/detect"
        if frame is not None:
            answer = self._client.request(
                "POST",
                path,
                content=parquet_bytes(frame),
                params={"version": version, "explain": explain},
                headers={"Content-Type": PARQUET},
                idempotency_key=idempotency_key,
            )
        else:
            body: dict[str, Any] = {"records": records} if records is not None else {"dataset_id": dataset_id}
            if version is not None:
                body["version"] = version
            if explain is not None:
                body["explain"] = {"top_k": explain}
            answer = self._client.request("POST", path, json=body, idempotency_key=idempotency_key)
        if answer.status_code == 202:
            return Job.model_validate(answer.json())
        return DetectionResult.model_validate(answer.json())

    # -- model versions: judge, promote, roll back, move between installations ----------------------------------
    def version(self, detector_id: str, version: int) -> ModelVersion:
        return ModelVersion.model_validate(
            self._client.call("GET", f"{API}/detectors/{detector_id}/versions/{version}")
        )

    def promote(self, detector_id: str, version: int) -> DetectorInfo:
        promoted = self._client.call("POST", f"{API}/detectors/{detector_id}/versions/{version}/promote")
        return DetectorInfo.model_validate(promoted)

    def rollback(self, detector_id: str) -> DetectorInfo:
        return DetectorInfo.model_validate(self._client.call("POST", f"{API}/detectors/{detector_id}/rollback"))

    def delete_version(self, detector_id: str, version: int) -> None:
        self._client.request("DELETE", f"{API}/detectors/{detector_id}/versions/{version}")

    def compare(self, detector_id: str, a: int, b: int, *, dataset_id: str) -> VersionComparison:
        """Rank correlation, flag overlap and metric deltas (b − a) of two versions on a dataset."""
        compared = self._client.call(
            "POST", f"{API}/detectors/{detector_id}/versions/compare", json={"a": a, "b": b, "dataset_id": dataset_id}
        )
        return VersionComparison.model_validate(compared)

    def export_version(self, detector_id: str, version: int) -> bytes:
        """The version as a signed export (bytes) for `import_version` in another tenant or installation."""
        return self._client.request("GET", f"{API}/detectors/{detector_id}/versions/{version}/export").content

    def import_version(self, detector_id: str, data: bytes, *, promote: bool = False) -> ModelVersion:
        imported = self._client.call(
            "POST",
            f"{API}/detectors/{detector_id}/versions/import",
            content=data,
            params={"promote": promote},
            headers={"Content-Type": "application/octet-stream"},
        )
        return ModelVersion.model_validate(imported)

    # -- feedback -------------------------------------------------------------------------------------------------
    def feedback(
        self,
        detector_id: str,
        *,
        dataset_id: str,
        labels: dict[int, str] | None = None,
        label_column: str | None = None,
    ) -> FeedbackSummary:
        """Labels rows of a dataset: `labels` maps row index → "anomaly"/"normal", or name a `label_column`."""
        body: dict[str, Any] = {"dataset_id": dataset_id}
        if labels is not None:
            body["labels"] = [{"index": index, "label": label} for index, label in labels.items()]
        if label_column is not None:
            body["label_column"] = label_column
        return FeedbackSummary.model_validate(
            self._client.call("POST", f"{API}/detectors/{detector_id}/feedback", json=body)
        )

    def list_feedback(
        self, detector_id: str, *, dataset_id: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> Page[FeedbackLabel]:
        page = self._client.call(
            "GET",
            f"{API}/detectors/{detector_id}/feedback",
            params={"dataset_id": dataset_id, "limit": limit, "cursor": cursor},
        )
        return Page[FeedbackLabel].model_validate(page)

    def delete_feedback(self, detector_id: str, label_id: str) -> None:
        self._client.request("DELETE", f"{API}/detectors/{detector_id}/feedback/{label_id}")


class ApiKeys(Collection[ApiKey]):
    """Scoped API keys of the caller's tenant (a tenant admin makes them; the secret is in `create`'s answer only)."""

    path = "api-keys"
    model = ApiKey

    def create(
        self, name: str, scopes: list[str], *, expires_at: str | None = None, idempotency_key: str | None = None
    ) -> ApiKeyCreated:
        body: dict[str, Any] = {"name": name, "scopes": scopes}
        if expires_at is not None:
            body["expires_at"] = expires_at
        return ApiKeyCreated.model_validate(
            self._client.call("POST", f"{API}/api-keys", json=body, idempotency_key=idempotency_key)
        )

    def revoke(self, key_id: str) -> None:
        self._client.request("DELETE", f"{API}/api-keys/{key_id}")
