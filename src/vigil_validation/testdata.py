"""The suites' real data: the Wisconsin breast-cancer set shipped in `vigil_validation/data` (or a configured
file), with its known answer (`malignant`) kept out of the features."""

from __future__ import annotations

import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import polars as pl

from vigil_validation.config import TestDataConfig


@dataclass(frozen=True)
class LabelledData:
    csv: bytes
    frame: pl.DataFrame
    label_column: str
    features: list[str]

    @property
    def labels(self) -> list[int]:
        return [int(v) for v in self.frame[self.label_column].to_list()]

    def parquet(self) -> bytes:
        buffer = io.BytesIO()
        self.frame.write_parquet(buffer)
        return buffer.getvalue()


def load(config: TestDataConfig) -> LabelledData:
    packaged = resources.files("vigil_validation").joinpath("data", config.dataset)
    raw = packaged.read_bytes() if packaged.is_file() else Path(config.dataset).read_bytes()
    frame = pl.read_csv(io.BytesIO(raw))
    missing = [c for c in [*config.features, config.label_column] if c not in frame.columns]
    if missing:
        raise ValueError(f"test_data.dataset {config.dataset!r} lacks columns {missing}")
    return LabelledData(csv=raw, frame=frame, label_column=config.label_column, features=list(config.features))
