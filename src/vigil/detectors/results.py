"""A detection's result — the scores of a batch of rows by one model version — and its encodings as the detect
route sends them: JSON (a row per object), or Parquet and Arrow (a column per field), which bulk clients want."""

from __future__ import annotations

import builtins
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq


@dataclass(frozen=True)
class Detection:
    """Scores of a batch of rows by one model version; the router sends it as JSON, Parquet or Arrow (below)."""

    detector_id: str
    model_version: int
    threshold: float
    scores: np.ndarray
    flags: np.ndarray
    explanation: builtins.list[builtins.list[tuple[str, float]]] | None = None
    explanation_method: str | None = None
    # 0–1: where each score falls among the training scores (see `FittedDetector.percentiles`).
    percentiles: np.ndarray | None = None
    # Rows with a missing feature value that preprocessing filled in (None: none could be missing).
    imputed: np.ndarray | None = None

    @property
    def anomalies(self) -> int:
        return int(self.flags.sum())

    def summary(self) -> dict[str, Any]:
        total = int(self.scores.shape[0])
        return {
            "detector_id": self.detector_id,
            "model_version": self.model_version,
            "threshold": self.threshold,
            "total": total,
            "anomalies": self.anomalies,
            "anomaly_rate": self.anomalies / total if total else 0.0,
            "imputed_rows": int(self.imputed.sum()) if self.imputed is not None else 0,
            **({"explanation_method": self.explanation_method} if self.explanation_method else {}),
        }


def table_of(result: Detection) -> pa.Table:
    """A column per field: index, score, is_anomaly, then percentile, imputed and the explanation's top features
    where the detection has them."""
    columns: dict[str, Any] = {
        "index": pa.array(np.arange(len(result.scores), dtype=np.int64)),
        "score": result.scores,
        "is_anomaly": result.flags,
    }
    if result.percentiles is not None:
        columns["percentile"] = result.percentiles
    if result.imputed is not None:
        columns["imputed"] = result.imputed
    if result.explanation is not None:
        k = max((len(row) for row in result.explanation), default=0)
        for rank in range(k):
            columns[f"top_feature_{rank + 1}"] = pa.array(
                [row[rank][0] if rank < len(row) else None for row in result.explanation], pa.string()
            )
            columns[f"top_contribution_{rank + 1}"] = pa.array(
                [row[rank][1] if rank < len(row) else None for row in result.explanation], pa.float64()
            )
    return pa.table(columns)


def parquet_bytes(result: Detection) -> bytes:
    table = table_of(result)
    sink = io.BytesIO()
    # Scores are floats that hardly compress: not compressing them saves time, not bytes. Nor dictionary-encoding
    # them: distinct floats fill no dictionary, and trying costs ~45 ms per 200k rows; only the explanation's
    # feature names repeat.
    names = [name for name in table.column_names if name.startswith("top_feature_")]
    pq.write_table(table, sink, compression="none", use_dictionary=names)
    return sink.getvalue()


def arrow_bytes(result: Detection) -> bytes:
    table = table_of(result)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def json_bytes(result: Detection) -> bytes:
    """The summary and a row per object; raises ValueError for non-finite scores (JSON has no NaN: a 500, never a
    malformed body)."""
    if not np.isfinite(result.scores).all():
        raise ValueError("non-finite scores")
    body = result.summary()
    scores, flags = result.scores.tolist(), result.flags.tolist()
    body["results"] = [
        {"index": i, "score": s, "is_anomaly": f} for i, (s, f) in enumerate(zip(scores, flags, strict=True))
    ]
    _add_row_details(body["results"], result)
    return orjson.dumps(body)


def _add_row_details(rows: builtins.list[dict[str, Any]], result: Detection) -> None:
    """Each JSON row's percentile, imputed flag and explanation, where the detection has them."""
    if result.percentiles is not None:
        for row, percentile in zip(rows, result.percentiles.round(4).tolist(), strict=True):
            row["percentile"] = percentile
    if result.imputed is not None:
        for row, imputed in zip(rows, result.imputed.tolist(), strict=True):
            row["imputed"] = imputed
    if result.explanation is not None:
        for row, top in zip(rows, result.explanation, strict=True):
            row["explanation"] = [{"feature": name, "contribution": value} for name, value in top]
