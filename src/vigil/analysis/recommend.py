"""How serious each quality issue is, and what to do about it: impute, drop, cap, encode, deduplicate, cast,
standardize — each recommendation names the issues it answers."""

from __future__ import annotations

from collections.abc import Mapping

from vigil.analysis.columns import Report

# (high, medium): an issue's share of affected rows at or above which it is that severe.
_THRESHOLDS: dict[str, tuple[float, float]] = {
    "missing_values": (0.5, 0.05),
    "duplicate_rows": (0.1, 0.01),
    "outliers": (0.1, 0.01),
    "mixed_types": (0.1, 0.0),
    "inconsistent_categories": (0.1, 0.01),
}
_RULE_THRESHOLDS = (0.05, 0.0)  # broken validity rules: any is at least medium
DROP_COLUMN_MISSING_SHARE = 0.6


def severity(check: str, share: float) -> str:
    """>>> severity("missing_values", 0.7), severity("missing_values", 0.01), severity("max_violated", 0.001)
    ('high', 'low', 'medium')
    """
    high, medium = _THRESHOLDS.get(check, _RULE_THRESHOLDS)
    if share >= high:
        return "high"
    if share > medium or (medium > 0 and share >= medium):
        return "medium"
    return "low"


def recommendations(issues: list[Report], kinds: Mapping[str, str], *, label: str | None = None) -> list[Report]:
    """One recommendation per issue that has a remedy, most urgent first (the issues come sorted that way). The
    `label` column's remedies are a label's: an answer is not imputed."""
    found: list[Report] = []
    for issue in issues:
        column = issue["column"] or ""
        advice = _label_advice(issue) if label is not None and column == label else None
        advice = advice or _advice(issue, kinds.get(column, ""))
        if advice is not None:
            action, detail = advice
            found.append(
                {
                    "action": action,
                    "column": issue["column"],
                    "issues": [issue["id"]],
                    "severity": issue["severity"],
                    "detail": detail,
                }
            )
    return found


def _label_advice(issue: Report) -> tuple[str, str] | None:
    """>>> _label_advice({"check": "missing_values", "affected_rows": 3, "share": 0.1})[0]
    'drop'
    """
    if issue["check"] in ("missing_values", "null_violated", "non_finite"):
        return "drop", (
            f"{issue['affected_rows']} rows have no usable label: label them, or leave them out when judging a "
            "detector — never impute an answer."
        )
    return None


def _advice(issue: Report, kind: str) -> tuple[str, str] | None:  # noqa: PLR0912 - one answer per check
    check, share, details = issue["check"], issue["share"], issue["details"]
    if check == "missing_values":
        if share >= DROP_COLUMN_MISSING_SHARE:
            return "drop", f"{share:.0%} of the values are missing: drop the column, it carries little information."
        how = {"numeric": "the median", "datetime": "interpolation in time"}.get(kind, "the most frequent value")
        return "impute", f"Impute the {share:.1%} missing values with {how} (or add a missing-indicator feature)."
    if check == "duplicate_rows":
        if "expected_by_chance" in details:
            return "deduplicate", (  # the action the API documents; the detail says when not to
                f"{issue['affected_rows']} rows repeat an earlier one, which few distinct values per column make "
                "likely: keep them if they are separate observations; deduplicate only if each row should be unique."
            )
        return "deduplicate", f"Remove the {issue['affected_rows']} repeated rows, keeping each row's first occurrence."
    if check == "outliers":
        return "cap", (
            f"{_cap_phrase(details)} for descriptive statistics and models that are sensitive to extremes — but look "
            "at them first: for anomaly detection they may be exactly what you are looking for."
        )
    if check == "non_finite":
        return "impute", "Replace the infinite values (a division by zero upstream?) with missing values, then impute."
    if check == "mixed_types":
        minority = details.get("minority")
        if minority == "text":
            return "cast", "Cast the column to numbers; the non-numeric values become missing values to impute."
        return "standardize", "The column is text with a few numbers: map them to categories or set them missing."
    if check == "inconsistent_categories":
        return "standardize", "Map each category's spellings to one (trim spaces, one letter case) before encoding."
    if check == "needs_encoding":
        how = "one-hot" if details.get("distinct", 0) <= 20 else "ordinal or frequency"
        return "encode", f"Encode this text column ({how} encoding) to use it as a detector feature."
    if check in ("constant_column", "identifier_like"):
        return "drop", f"Drop the column: {issue['message']}, so it cannot help a detector."
    if check in ("min_violated", "max_violated", "not_allowed", "wrong_type"):
        return "cap" if check in ("min_violated", "max_violated") and kind == "numeric" else "impute", (
            f"{issue['affected_rows']} value(s) break the expectation ({issue['message']}): correct them at the "
            "source, or "
            + ("cap them to the bound." if kind == "numeric" and "violated" in check else "set them missing.")
        )
    if check == "null_violated":
        return "impute", "Values are missing where the expectation forbids it: fill them at the source or impute."
    if check == "unique_violated":
        return "deduplicate", "Values repeat where they should be unique: find and remove the duplicate records."
    return None


def _cap_phrase(details: Mapping[str, object]) -> str:
    """The cap in terms of the values the column really has: only the sides where a fence falls inside them.

    >>> _cap_phrase({"lower_fence": -7.2, "upper_fence": 9.2, "cap_lower": None, "cap_upper": 9.2,
    ...              "observed_min": 1.0, "observed_max": 10.0})
    'Cap values above 9.2 (the column runs from 1 to 10)'
    """
    if "cap_lower" not in details:  # a report made before the observed range was kept
        return f"Cap values to [{details['lower_fence']:.6g}, {details['upper_fence']:.6g}]"
    low, high = details.get("cap_lower"), details.get("cap_upper")
    observed = f" (the column runs from {details['observed_min']:.6g} to {details['observed_max']:.6g})"
    if isinstance(low, float) and isinstance(high, float):
        return f"Cap values to [{low:.6g}, {high:.6g}]{observed}"
    if isinstance(high, float):
        return f"Cap values above {high:.6g}{observed}"
    if isinstance(low, float):
        return f"Cap values below {low:.6g}{observed}"
    return f"Leave the values as they are{observed}"
