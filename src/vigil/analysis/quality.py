"""Quality assessment: completeness, uniqueness, validity, consistency and outliers, each scored 0–1, with the
issues found (severity, affected rows, sample row indexes) and what to do about each.

Columns are assessed in batches: one aggregated pass for the robust statistics and category counts, then one
pass that counts and samples every rule's rows. Whole-row duplicates are found from a 64-bit hash of each row,
combined across batches, so no pass needs all columns in memory at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from vigil.analysis.columns import (
    Frame,
    Progress,
    Report,
    check_columns,
    clean,
    height_of,
    kind_of,
    lazy,
    missing,
    progress_steps,
)
from vigil.analysis.expectations import Expectation, Rule, rules_for
from vigil.analysis.label import label_classes, split_label
from vigil.analysis.recommend import recommendations, severity

DIMENSIONS = ("completeness", "uniqueness", "validity", "consistency", "outliers")
ROBUST_Z = 3.5  # Iglewicz & Hoaglin's cut-off for the modified z-score
_MAD_TO_SIGMA = 1.4826
_MEAN_AD_TO_SIGMA = 1.253314
_HASH_MIX = np.uint64(0x9E3779B97F4A7C15)
_SPACES = re.compile(r"\s+")
# Columns with at most this many distinct values each make repeated rows likely by chance.
LOW_CARDINALITY = 20


@dataclass(frozen=True)
class QualityOptions:
    columns: Sequence[str] | None = None
    expectations: Mapping[str, Expectation] = field(default_factory=dict)
    outlier_z: float = ROBUST_Z
    samples: int = 10
    column_batch: int = 16
    max_categories: int = 100_000  # category checks are skipped above this many distinct values
    # The dataset's known answer: checked for what is missing or breaks a rule, not as a feature (its rare class
    # is no outlier, its text no category to encode); summarised as classes.
    label: str | None = None


@dataclass
class _Finding:
    dimension: str
    check: str
    column: str | None
    message: str
    mask: pl.Expr | None = None
    affected: int = 0
    sample: list[int] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    counts: bool = True  # counts towards its dimension's score
    severity: str | None = None  # when the data says better than the share alone (see `_judge_duplicates`)


def assess(frame: Frame, *, options: QualityOptions | None = None, progress: Progress | None = None) -> Report:
    """Assesses a frame's quality; returns ``{"scores", "overall", "issues", "recommendations", "dataset"}``.

    >>> frame = pl.DataFrame({"x": [1.0, None, 3.0, 3.0, 2.0], "y": ["a", "b", "c", "c", "a"]})
    >>> report = assess(frame)
    >>> report["scores"]["completeness"], report["scores"]["uniqueness"]
    (0.9, 0.8)
    >>> [(i["check"], i["affected_rows"], i["sample_rows"]) for i in report["issues"] if i["counts_in_score"]]
    [('duplicate_rows', 1, [3]), ('missing_values', 1, [1])]
    """
    options = options or QualityOptions()
    scan = lazy(frame)
    schema = scan.collect_schema()
    columns = split_label(frame, check_columns(frame, options.columns), options.label)
    check_columns(frame, list(options.expectations), field="expectations")
    rules = {c: rules_for(c, schema[c], e) for c, e in options.expectations.items()}
    height = height_of(frame)
    batches = [columns[i : i + options.column_batch] for i in range(0, len(columns), max(1, options.column_batch))]
    steps = progress_steps(progress, 0.0, 90.0, len(batches))
    steps(0)
    findings: list[_Finding] = []
    row_hash: np.ndarray | None = None
    for i, batch in enumerate(batches):
        batch_findings, batch_hash = _assess_batch(scan, {c: schema[c] for c in batch}, rules, options)
        findings += batch_findings
        row_hash = batch_hash if row_hash is None else (row_hash * _HASH_MIX) ^ batch_hash
        steps(i + 1)
    if options.label is not None:
        labelled, label_hash = _assess_batch(scan, {options.label: schema[options.label]}, rules, options, label=True)
        findings += labelled
        row_hash = label_hash if row_hash is None else (row_hash * _HASH_MIX) ^ label_hash
    extra = [c for c in rules if c not in {*columns, options.label}]
    if extra:
        more, _ = _assess_batch(scan, {c: schema[c] for c in extra}, rules, options, only_rules=True)
        findings += more
    if options.columns is not None:  # duplicates are whole rows, whatever columns were asked for
        row_hash = _row_hash(scan, list(schema.names()))
    duplicates = _duplicates(row_hash, options.samples)
    if duplicates.affected:
        _judge_duplicates(duplicates, scan, list(schema.names()), height)
        findings.append(duplicates)
    kinds = {c: kind_of(schema[c]) for c in [*columns, *([options.label] if options.label else [])]}
    scores = _scores(findings, height, kinds)
    issues = _issues(findings, height)
    report: Report = {
        "dataset": {"rows": height, "columns": len(schema), "assessed_columns": len(columns)},
        "scores": scores,
        "overall": sum(scores.values()) / len(scores),
        "issues": issues,
        "recommendations": recommendations(issues, kinds, label=options.label),
        "label": label_classes(scan, options.label) if options.label is not None else None,
        "parameters": {"outlier_z": options.outlier_z, "samples": options.samples, "label_column": options.label},
    }
    if progress is not None:
        progress(100.0)
    return clean(report)  # type: ignore[no-any-return]


def _row_hash(scan: pl.LazyFrame, columns: list[str]) -> np.ndarray:
    return scan.select(pl.struct(columns).hash(seed=0)).collect().to_series().to_numpy()


def _assess_batch(
    scan: pl.LazyFrame,
    schema: dict[str, pl.DataType],
    rules: Mapping[str, list[Rule]],
    options: QualityOptions,
    *,
    only_rules: bool = False,
    label: bool = False,
) -> tuple[list[_Finding], np.ndarray]:
    """The findings of a batch of columns (only its expectations' with `only_rules`; no feature checks — outliers,
    categories — for the `label`) and its part of the rows' hash."""
    kinds = {c: kind_of(dtype) for c, dtype in schema.items()}
    numeric = [c for c, k in kinds.items() if k == "numeric" and not label]
    text = [c for c, k in kinds.items() if k == "categorical" and not label]
    findings: list[_Finding] = []
    if not only_rules:
        robust, categories = _batch_statistics(scan, schema, numeric, text, options)
        for c, dtype in schema.items():
            findings.append(_Finding("completeness", "missing_values", c, "missing values", missing(c, dtype)))
            if dtype.is_float():
                findings.append(
                    _Finding("validity", "non_finite", c, "infinite values", pl.col(c).is_infinite().fill_null(False))
                )
        findings += [_outlier_finding(c, r, options.outlier_z) for c in numeric if (r := robust[c]) is not None]
        for c in text:
            findings += _category_findings(c, categories[c])
    for c in schema:
        findings += [_Finding("validity", r.check, c, r.message, r.mask) for r in rules.get(c, [])]
    queries = [_count_query(scan, findings, options.samples)]
    if not only_rules:
        queries.append(scan.select(pl.struct(list(schema)).hash(seed=0)))
    results = pl.collect_all(queries)
    row = results[0].row(0, named=True)
    for i, finding in enumerate(findings):
        if finding.mask is not None:
            finding.affected = int(row[f"n{i}"])
            finding.sample = list(row[f"s{i}"] or [])
    row_hash = results[1].to_series().to_numpy() if len(results) > 1 else np.empty(0, np.uint64)
    return [f for f in findings if f.affected or not f.counts], row_hash


def _count_query(scan: pl.LazyFrame, findings: list[_Finding], samples: int) -> pl.LazyFrame:
    exprs: list[pl.Expr] = [pl.len().alias("__rows")]
    index = pl.col("__row")
    for i, finding in enumerate(findings):
        if finding.mask is None:
            continue
        mask = finding.mask.fill_null(False)
        exprs += [mask.sum().alias(f"n{i}"), index.filter(mask).head(samples).implode().alias(f"s{i}")]
    return scan.with_row_index("__row").select(exprs)


def _batch_statistics(
    scan: pl.LazyFrame, schema: dict[str, pl.DataType], numeric: list[str], text: list[str], options: QualityOptions
) -> tuple[dict[str, dict[str, float] | None], dict[str, pl.DataFrame | None]]:
    """Median, MAD, mean absolute deviation and quartiles of numeric columns (finite values only), and the
    value counts of text columns that are not too many to check."""
    exprs: list[pl.Expr] = []
    for c in numeric:
        x = pl.col(c).cast(pl.Float64)
        x = x.filter(x.is_finite())
        deviation = (x - x.median()).abs()
        exprs += [
            x.median().alias(f"{c}|median"),
            deviation.median().alias(f"{c}|mad"),
            deviation.mean().alias(f"{c}|mean_ad"),
            x.min().alias(f"{c}|min"),
            x.max().alias(f"{c}|max"),
        ]
    exprs += [pl.col(c).n_unique().alias(f"{c}|distinct") for c in text]
    row = scan.select(exprs).collect().row(0, named=True) if exprs else {}
    robust: dict[str, dict[str, float] | None] = {}
    for c in numeric:
        median, mad, mean_ad = row[f"{c}|median"], row[f"{c}|mad"], row[f"{c}|mean_ad"]
        robust[c] = (
            None
            if median is None
            else {"median": median, "mad": mad, "mean_ad": mean_ad, "min": row[f"{c}|min"], "max": row[f"{c}|max"]}
        )
    checked = [c for c in text if row[f"{c}|distinct"] <= options.max_categories]
    counts = pl.collect_all(
        [scan.select(pl.col(c).drop_nulls().value_counts(sort=True, name="n").struct.unnest()) for c in checked]
    )
    categories: dict[str, pl.DataFrame | None] = dict.fromkeys(text)
    categories.update(zip(checked, counts, strict=True))
    return robust, categories


def _outlier_finding(column: str, robust: dict[str, float], z: float) -> _Finding:
    """Modified z-scores (Iglewicz & Hoaglin): |x − median| / (1.4826·MAD) > z; when half the values are equal
    (MAD = 0) the mean absolute deviation stands in, and a column with no spread has no outliers."""
    scale = _MAD_TO_SIGMA * robust["mad"]
    if scale == 0:
        scale = _MEAN_AD_TO_SIGMA * robust["mean_ad"]
    x = pl.col(column).cast(pl.Float64)
    low, high = robust["median"] - z * scale, robust["median"] + z * scale
    mask = (x.is_finite() & ((x < low) | (x > high))) if scale > 0 else pl.lit(False)
    details: dict[str, float | None] = {
        "median": robust["median"],
        "scale": scale,
        "lower_fence": low,
        "upper_fence": high,
        "z": z,
    }
    # What a cap would really do: a fence beyond the observed range caps nothing on that side (a column of values
    # 1–10 is not to be "capped to [-7.2, 9.2]", but at 9.2 above only).
    if robust.get("min") is not None and robust.get("max") is not None:
        details["observed_min"], details["observed_max"] = robust["min"], robust["max"]
        details["cap_lower"] = low if low > robust["min"] else None
        details["cap_upper"] = high if high < robust["max"] else None
    return _Finding(
        "outliers", "outliers", column, f"values beyond {z} robust standard deviations", mask, details=details
    )


def _category_findings(column: str, counts: pl.DataFrame | None) -> list[_Finding]:
    if counts is None or counts.height == 0:
        return []
    x = pl.col(column)
    findings: list[_Finding] = []
    values = [str(v) for v in counts[column].to_list()]
    frequency = counts["n"].to_list()
    numeric = [_is_number(v) for v in values]
    numeric_rows = sum(n for n, is_num in zip(frequency, numeric, strict=True) if is_num)
    total = sum(frequency)
    if 0 < numeric_rows < total:
        minority_numeric = numeric_rows <= total - numeric_rows
        minority = [v for v, is_num in zip(values, numeric, strict=True) if is_num == minority_numeric]
        kind = "numbers" if minority_numeric else "text"
        findings.append(
            _Finding(
                "consistency",
                "mixed_types",
                column,
                f"mostly {'text' if minority_numeric else 'numbers'}, with some {kind}",
                x.cast(pl.String).is_in(minority),
                details={"numeric_share": numeric_rows / total, "minority": kind, "examples": minority[:5]},
            )
        )
    groups: dict[str, list[tuple[str, int]]] = {}
    for value, n in zip(values, frequency, strict=True):
        groups.setdefault(_SPACES.sub(" ", value.strip()).casefold(), []).append((value, n))
    variants = {k: g for k, g in groups.items() if len(g) > 1}
    if variants:
        # The most frequent spelling of each group is the canonical one; the other spellings are inconsistent.
        minority = [v for g in variants.values() for v, _ in sorted(g, key=lambda vn: -vn[1])[1:]]
        examples = [[v for v, _ in g] for g in list(variants.values())[:5]]
        findings.append(
            _Finding(
                "consistency",
                "inconsistent_categories",
                column,
                "the same category spelled differently (case or spaces)",
                x.cast(pl.String).is_in(minority),
                details={"groups": len(variants), "examples": examples},
            )
        )
    if len(values) == 1:
        findings.append(_Finding("uniqueness", "constant_column", column, "one value only", counts=False))
    elif len(values) == total and total > 50:
        findings.append(_Finding("uniqueness", "identifier_like", column, "every value distinct", counts=False))
    else:
        findings.append(
            _Finding("validity", "needs_encoding", column, "text, which detectors cannot use as it is", counts=False,
                     details={"distinct": len(values)})
        )  # fmt: skip
    return findings


def _is_number(value: str) -> bool:
    try:
        float(value.strip())
    except ValueError:
        return False
    return bool(value.strip())


def _duplicates(row_hash: np.ndarray | None, samples: int) -> _Finding:
    finding = _Finding("uniqueness", "duplicate_rows", None, "rows that repeat an earlier row")
    if row_hash is None or row_hash.size == 0:
        return finding
    repeated = np.flatnonzero(~pl.Series(row_hash).is_first_distinct().to_numpy())
    finding.affected, finding.sample = int(repeated.size), repeated[:samples].tolist()
    return finding


def _judge_duplicates(finding: _Finding, scan: pl.LazyFrame, columns: list[str], height: int) -> None:
    """Repeated rows mean little in data whose every column takes a handful of values (small integer scores,
    flags): there, rows repeat by chance. The finding then keeps its count but is at most "low", and says how many
    repeats chance alone would give if the columns were independent (from each column's value frequencies)."""
    if not columns or height < 2:
        return
    counts = scan.select([pl.col(c).n_unique().alias(c) for c in columns]).collect().row(0, named=True)
    widest = max(int(v) for v in counts.values())
    finding.details["max_distinct_per_column"] = widest
    if widest > LOW_CARDINALITY or height < 10 * widest:  # a few rows have few values in any column
        return
    # P(two rows agree on a column) = Σ p_v²; independent columns multiply. Expected repeated rows ≈ n − E[distinct].
    collision = 1.0
    for c in columns:
        shares = scan.select(pl.col(c).value_counts(normalize=True).struct.field("proportion")).collect().to_series()
        collision *= float((shares.to_numpy() ** 2).sum())
    pairs = height * (height - 1) / 2 * collision
    finding.details["expected_by_chance"] = round(min(pairs, height - 1), 1)
    finding.severity = "low"
    finding.message = (
        f"rows that repeat an earlier row — expected in data whose columns take at most {widest} values each "
        "(check them only if each row should be a unique record)"
    )


def _scores(findings: list[_Finding], height: int, kinds: Mapping[str, str]) -> dict[str, float]:
    """Each dimension: 1 − the share of its cells (rows, for uniqueness) that break a rule; 1 when none apply."""
    cells = {
        "completeness": len(kinds),
        "uniqueness": 1,
        "validity": len(kinds),
        "consistency": sum(1 for k in kinds.values() if k == "categorical"),
        "outliers": sum(1 for k in kinds.values() if k == "numeric"),
    }
    scores = {}
    for dimension in DIMENSIONS:
        bad = sum(f.affected for f in findings if f.dimension == dimension and f.counts)
        total = height * max(cells[dimension], 1)
        scores[dimension] = max(0.0, 1.0 - bad / total) if total else 1.0
    return scores


def _issues(findings: list[_Finding], height: int) -> list[Report]:
    issues = []
    for f in findings:
        share = f.affected / height if height else 0.0
        issues.append(
            {
                "id": f"{f.check}:{f.column}" if f.column is not None else f.check,
                "dimension": f.dimension,
                "check": f.check,
                "column": f.column,
                "severity": f.severity or (severity(f.check, share) if f.counts else "info"),
                "affected_rows": f.affected,
                "share": share,
                "sample_rows": f.sample,
                "message": f.message,
                "details": f.details,
                "counts_in_score": f.counts,
            }
        )
    order = {"high": 0, "medium": 1, "low": 2, "info": 3}
    return sorted(issues, key=lambda i: (order[i["severity"]], -i["affected_rows"]))
