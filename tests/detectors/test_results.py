"""A detection's encodings (`detectors/results.py`): every field round-trips, and the Parquet answer spends no time
dictionary-encoding floats (distinct values fill no dictionary), only the explanation's repeated feature names."""

from __future__ import annotations

import io

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vigil.detectors.results import Detection, arrow_bytes, json_bytes, parquet_bytes


def _detection(rows: int = 1000) -> Detection:
    scores = np.random.default_rng(0).normal(size=rows)
    return Detection(
        detector_id="det_x",
        model_version=3,
        threshold=1.5,
        scores=scores,
        flags=scores > 1.5,
        explanation=[[("f1", 0.7), ("f0", 0.2)] if i % 2 else [("f0", 0.9)] for i in range(rows)],
        explanation_method="isolation_path",
        percentiles=np.linspace(0, 1, rows),
        imputed=np.zeros(rows, dtype=bool),
    )


def test_parquet_and_arrow_carry_every_field() -> None:
    result = _detection()
    for table in (
        pq.read_table(io.BytesIO(parquet_bytes(result))),
        pa.ipc.open_stream(arrow_bytes(result)).read_all(),
    ):
        assert table.column("index").to_pylist() == list(range(1000))
        assert np.array_equal(table.column("score").to_numpy(), result.scores)
        assert np.array_equal(table.column("is_anomaly").to_numpy(), result.flags)
        assert np.array_equal(table.column("percentile").to_numpy(), result.percentiles)
        assert table.column("top_feature_1").to_pylist()[:2] == ["f0", "f1"]
        assert table.column("top_feature_2").to_pylist()[:2] == [None, "f0"]
        assert table.column("top_contribution_2").to_pylist()[:2] == [None, 0.2]


def test_parquet_dictionary_encodes_only_the_feature_names() -> None:
    metadata = pq.ParquetFile(io.BytesIO(parquet_bytes(_detection()))).metadata
    row_group = metadata.row_group(0)
    encodings = {
        row_group.column(i).path_in_schema: row_group.column(i).encodings for i in range(row_group.num_columns)
    }
    assert all("RLE_DICTIONARY" in encodings[name] for name in ("top_feature_1", "top_feature_2"))
    plain = [name for name in encodings if not name.startswith("top_feature_")]
    assert plain
    assert not any("RLE_DICTIONARY" in encodings[name] for name in plain)


def test_json_has_a_row_per_object_and_refuses_non_finite_scores() -> None:
    body = orjson.loads(json_bytes(_detection(3)))
    assert body["total"] == 3
    assert body["model_version"] == 3
    assert [row["index"] for row in body["results"]] == [0, 1, 2]
    assert body["results"][1]["explanation"] == [
        {"feature": "f1", "contribution": 0.7},
        {"feature": "f0", "contribution": 0.2},
    ]
    broken = _detection(3)
    broken.scores[1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):  # a 500, never a malformed body
        json_bytes(broken)
