"""A declared label column — the dataset's known answer (`label_column`): kept out of the features, summarised as
its classes, and the target the features' relevance is measured against.

A label profiled as a feature misleads: its 0/1 values look like outliers, it correlates with everything that
predicts it, and a detector trained on it has been told the answer.
"""

from __future__ import annotations

import polars as pl

from vigil.analysis.columns import Frame, Report, check_columns, height_of, kind_of, lazy
from vigil.analysis.relevance import relevance

__all__ = ["MAX_CLASSES", "label_classes", "label_relevance", "split_label"]

# A label with more values than this is summarised by its most frequent ones.
MAX_CLASSES = 20


def split_label(frame: Frame, columns: list[str], label: str | None) -> list[str]:
    """The feature columns: `columns` without the label (refused with a problem if the frame has no such column).

    >>> split_label(pl.DataFrame({"x": [1], "y": [0]}), ["x", "y"], "y")
    ['x']
    """
    if label is None:
        return columns
    check_columns(frame, [label], field="label_column")
    return [c for c in columns if c != label]


def label_classes(frame: Frame, label: str) -> Report:
    """The label's classes: how many rows each (most frequent first), and how many rows have none.

    >>> summary = label_classes(pl.DataFrame({"y": [0, 0, 0, 1, None]}), "y")
    >>> summary["missing"], summary["classes"]
    (1, [{'value': 0, 'count': 3, 'share': 0.75}, {'value': 1, 'count': 1, 'share': 0.25}])
    """
    scan = lazy(frame)
    dtype = scan.collect_schema()[label]
    counts = (
        scan.select(pl.col(label).drop_nulls().value_counts(sort=True, name="count"))
        .unnest(label)
        .collect()
        .sort(["count", label], descending=[True, False], nulls_last=True)
    )
    labelled = int(counts.get_column("count").sum()) if counts.height else 0
    return {
        "name": label,
        "kind": kind_of(dtype),
        "dtype": str(dtype),
        "distinct": counts.height,
        "missing": height_of(frame) - labelled,
        "classes": [
            {"value": row[label], "count": int(row["count"]), "share": row["count"] / labelled}
            for row in counts.head(MAX_CLASSES).iter_rows(named=True)
        ],
    }


def label_relevance(frame: Frame, features: list[str], label: str, *, max_rows: int, seed: int) -> Report | None:
    """How much each feature tells about the label (mutual information, then |Spearman|); None without a
    feature it can be measured on (datetimes are left out, as in the analysis report)."""
    schema = lazy(frame).collect_schema()
    candidates = [c for c in features if kind_of(schema[c]) != "datetime"]
    if not candidates:
        return None
    return relevance(frame, features=candidates, target=label, max_rows=max_rows, seed=seed)
