"""Reports as self-contained HTML pages: inline CSS, plots as PNG data URIs, no script and no external asset.

Everything from the data (column names, values, messages that quote them) is HTML-escaped, and the page carries
a Content-Security-Policy that forbids scripts, so a hostile column name is shown, never run.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

MAX_PLOTTED_COLUMNS = 60
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2733;background:#f5f7fa}
header{background:#1d3557;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;opacity:.85}main{padding:20px 28px;max-width:1180px}
section{background:#fff;border:1px solid #dde3ea;border-radius:8px;padding:16px 20px;margin:0 0 18px}
h2{font-size:17px;margin:0 0 12px}h3{font-size:15px;margin:0 0 6px;word-break:break-all}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:4px 8px;
border-bottom:1px solid #eef1f4;vertical-align:top}th{background:#f0f3f7}td.n{text-align:right;
font-variant-numeric:tabular-nums}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));
gap:14px}.wide{grid-template-columns:repeat(auto-fill,minmax(min(480px,100%),1fr))}
.card{border:1px solid #e3e8ee;border-radius:6px;padding:10px 12px}.kind{font-size:12px;color:#5c6b7a}
.tiles{display:flex;gap:12px;flex-wrap:wrap}.tile{background:#f0f3f7;border-radius:6px;padding:8px 14px}
.tile b{display:block;font-size:20px}.sev-high{color:#c0392b;font-weight:600}.sev-medium{color:#b9770e}
.sev-low{color:#2e6da4}.sev-info{color:#7f8c8d}img{max-width:100%;height:auto}.scroll{overflow-x:auto;max-width:100%}code{word-break:break-all}
"""


def e(value: Any) -> str:
    """Escaped text for HTML, numbers shortened.

    >>> e("<script>alert(1)</script>")
    '&lt;script&gt;alert(1)&lt;/script&gt;'
    >>> e(0.123456789), e(None)
    ('0.1235', '—')
    """
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value), quote=True)


def _page(title: str, subtitle: str, sections: Iterable[str]) -> str:
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{_CSP}\">"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{e(title)}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>{e(title)}</h1><p>{e(subtitle)}</p></header><main>{''.join(sections)}</main></body></html>"
    )


def _section(title: str, body: str) -> str:
    return f"<section><h2>{e(title)}</h2>{body}</section>"


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[int] = ()) -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td{' class=n' if i in numeric else ''}>{e(v)}</td>" for i, v in enumerate(row)) + "</tr>"
        for row in rows
    )
    # A wide table scrolls inside its own box on a narrow screen instead of widening the page.
    return f"<div class=scroll><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _tiles(items: Mapping[str, Any]) -> str:
    return (
        "<div class=tiles>" + "".join(f"<div class=tile><b>{e(v)}</b>{e(k)}</div>" for k, v in items.items()) + "</div>"
    )


def _image(uri: str, alt: str) -> str:
    return f"<img src='{uri}' alt='{e(alt)}'>"  # the URI is base64 made here, never user text


def _correlations(report: Mapping[str, Any] | None) -> str:
    from vigil.analysis import plots  # matplotlib, imported when a report is drawn, costs seconds of server start-up

    if not report or len(report.get("columns", [])) < 2:
        return ""
    labels = report["columns"]
    pearson = _image(plots.heatmap(labels, report["pearson"], title="Pearson"), "Pearson correlation, column by column")
    spearman = _image(
        plots.heatmap(labels, report["spearman"], title="Spearman"), "Spearman correlation, column by column"
    )
    pairs = _table(
        ["column", "with column", "Pearson", "Spearman"],
        ([p["a"], p["b"], p["pearson"], p["spearman"]] for p in report["strongest"]),
        numeric=(2, 3),
    )
    note = f"<p class=kind>On {e(report['sample_rows'])} of {e(report.get('rows'))} rows.</p>"
    # Two heatmaps side by side, not three columns' worth: squeezed to 340 px their cell labels were unreadable.
    heatmaps = f"<div class='grid wide'><div>{pearson}</div><div>{spearman}</div></div>"
    return _section("Correlations", f"{heatmaps}{note}{pairs}")


# -- profile -----------------------------------------------------------------------------------------------------
def render_profile(report: Mapping[str, Any], *, title: str = "Data profile") -> str:
    """The profile as a page: dataset tiles, a card per column (statistics and histogram), the correlations."""
    dataset = report["dataset"]
    tiles = _tiles(
        {
            "rows": dataset["rows"],
            "columns": dataset["columns"],
            "duplicate rows": dataset["duplicate_rows"],
            "memory (MB)": round(dataset["memory_bytes"] / 1e6, 2),
            **{f"{k} columns": v for k, v in dataset["kinds"].items() if v},
        }
    )
    cards = [_column_card(c, plot=i < MAX_PLOTTED_COLUMNS) for i, c in enumerate(report["columns"])]
    return _page(
        title,
        f"{dataset['rows']} rows × {dataset['columns']} columns",
        [_section("Dataset", tiles), _label(report.get("label")),
         _section("Columns", f"<div class=grid>{''.join(cards)}</div>"), _correlations(report.get("correlations")),
         _relevance(report.get("relevance"))],
    )  # fmt: skip


def _column_card(column: Mapping[str, Any], *, plot: bool) -> str:
    from vigil.analysis import plots

    kind = column["kind"]
    stats: list[tuple[str, Any]] = [
        ("count", column["count"]),
        ("missing", f"{column['missing']} ({column['missing_share']:.1%})"),
        ("distinct", column["distinct"]),
    ]
    if kind == "numeric":
        q = column["quantiles"]
        stats += [("mean", column["mean"]), ("std", column["std"]), ("min", column["min"]), ("p5", q["p5"])]
        stats += [("median", q["p50"]), ("p95", q["p95"]), ("max", column["max"])]
        stats += [("skewness", column["skewness"]), ("kurtosis", column["kurtosis"])]
        stats += [("zeros", column["zeros"]), ("negatives", column["negatives"])]
    elif kind == "datetime":
        gaps = column.get("gaps") or {}
        stats += [("from", column["min"]), ("to", column["max"]), ("median step (s)", gaps.get("median_seconds")),
                  ("largest gap (s)", gaps.get("max_seconds")), ("large gaps", gaps.get("large_gaps"))]  # fmt: skip
    elif kind == "boolean":
        stats += [("true", column["true"]), ("false", column["false"])]
    table = _table(["statistic", "value"], stats, numeric=(1,))
    figure = ""
    histogram = column.get("histogram")
    if plot and histogram and histogram["counts"]:
        uri = plots.histogram(
            histogram["edges"], histogram["counts"], datetime_axis=kind == "datetime", x_label=column["name"]
        )
        figure = _image(uri, f"histogram of {column['name']}: rows by value")
    top = ""
    if column.get("top_values") and kind != "numeric":
        top = _table(
            ["value", "count", "share"],
            ([t["value"], t["count"], f"{t['share']:.1%}"] for t in column["top_values"][:8]),
            numeric=(1, 2),
        )
    return (
        f"<div class=card><h3>{e(column['name'])}</h3><div class=kind>{e(kind)} · {e(column['dtype'])}</div>"
        f"{figure}{table}{top}</div>"
    )


# -- quality -----------------------------------------------------------------------------------------------------
def render_quality(report: Mapping[str, Any], *, title: str = "Data quality") -> str:
    """The scorecard, the issues (severity, affected rows, sample rows) and the recommendations."""
    from vigil.analysis import plots

    scores = {**report["scores"], "overall": report["overall"]}
    scorecard = _image(
        plots.bars(list(scores), list(scores.values()), limit=1.0, x_label="score (1: no issue)", y_label="dimension"),
        "quality scorecard: score by dimension",
    )
    issues = "".join(
        f"<tr><td class='sev-{e(i['severity'])}'>{e(i['severity'])}</td><td>{e(i['dimension'])}</td>"
        f"<td>{e(i['check'])}</td><td><code>{e(i['column'])}</code></td><td class=n>{e(i['affected_rows'])}</td>"
        f"<td class=n>{i['share']:.2%}</td><td>{e(', '.join(map(str, i['sample_rows'])))}</td>"
        f"<td>{e(i['message'])}</td></tr>"
        for i in report["issues"]
    )
    issues_table = (
        "<div class=scroll><table><thead><tr><th>severity</th><th>dimension</th><th>check</th><th>column</th>"
        "<th>rows</th><th>share</th><th>sample rows</th><th>what</th></tr></thead>"
        f"<tbody>{issues}</tbody></table></div>"
    )
    advice = _table(
        ["action", "column", "severity", "detail"],
        ([r["action"], r["column"], r["severity"], r["detail"]] for r in report["recommendations"]),
    )
    return _page(
        title,
        f"overall score {report['overall']:.3f} · {len(report['issues'])} issue(s)",
        [
            _section("Scorecard", scorecard),
            _section("Issues", issues_table),
            _section("Recommendations", advice),
            _label(report.get("label")),
        ],
    )


# -- analysis ----------------------------------------------------------------------------------------------------
def render_analysis(report: Mapping[str, Any], *, title: str = "Statistical analysis") -> str:
    """Fits and normality per column, the correlation heatmaps, and the feature relevance chart."""

    rows = []
    for column in report["columns"]:
        best = column["fits"][0] if column["fits"] else {}
        tests = column["normality"]["tests"]
        rows.append(
            [column["name"], column["best_fit"] or "none fits", best.get("ks_statistic"), best.get("ks_pvalue"),
             ", ".join(f"{f['family']} ({f['ks_statistic']:.3f})" for f in column["fits"][1:4]),
             (tests.get("shapiro_wilk") or tests.get("dagostino_pearson") or {}).get("pvalue"),
             {True: "yes", False: "no"}.get(column["normality"]["normal"], "—")]
        )  # fmt: skip
    fits = _table(
        ["column", "best fit", "KS statistic", "KS p-value", "next best (KS)", "normality p-value", "normal?"],
        rows,
        numeric=(2, 3, 5),
    )
    sections = [_section("Distributions", fits), _correlations(report.get("correlations"))]
    sections.append(_relevance(report.get("relevance")))
    return _page(title, f"{len(report['columns'])} numeric column(s)", sections)


def _relevance(relevance: Mapping[str, Any] | None) -> str:
    """The feature relevance chart and table (against a label, or a detector's scores); nothing without one."""
    from vigil.analysis import plots

    if not relevance:
        return ""
    key = "permutation_importance" if relevance["method"] == "permutation" else "mutual_information"
    features = relevance["features"][:40]
    label = key.replace("_", " ")
    chart = plots.bars(
        [f["feature"] for f in features], [f[key] for f in features], title=label, x_label=label, y_label="feature"
    )
    if key == "permutation_importance":
        table = _table(
            ["rank", "feature", "permutation importance", "± std", "mutual information with scores"],
            ([f["rank"], f["feature"], f[key], f["permutation_std"], f["mutual_information"]] for f in features),
            numeric=(0, 2, 3, 4),
        )
    else:
        table = _table(
            ["rank", "feature", "mutual information", "Spearman"],
            ([f["rank"], f["feature"], f[key], f["spearman"]] for f in features),
            numeric=(0, 2, 3),
        )
    note = f"<p class=kind>Against {e(relevance['target'])}, on {e(relevance['sample_rows'])} rows.</p>"
    return _section("Feature relevance", _image(chart, f"{label} by feature") + note + table)


def _label(label: Mapping[str, Any] | None) -> str:
    """The label column's classes: the dataset's known answer, kept apart from the features."""
    if not label:
        return ""
    note = (
        f"<p class=kind><code>{e(label['name'])}</code> is the label: not a feature, not profiled as one. "
        f"{e(label['distinct'])} class(es); {e(label['missing'])} row(s) without a label.</p>"
    )
    table = _table(
        ["class", "rows", "share"], ([c["value"], c["count"], c["share"]] for c in label["classes"]), numeric=(1, 2)
    )
    return _section("Label", note + table)
