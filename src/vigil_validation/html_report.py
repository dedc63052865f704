"""The run's HTML report: one self-contained page (inline CSS, plots as PNG data URIs, no script, nothing fetched)
drawn from `summary.json` — per suite its tests with outcome, duration, reason, measured figures, and plots of
the structured series tests attached with `record_series`.

Known series kinds, and the `data` each expects (other kinds are shown as their data, so nothing is lost):

- `latency_steps` — `{"steps": [{"rate": r, "p50": ms, "p90": ms, "p99": ms, "p99_9": ms, "max": ms}, …],
  "limit_ms": ms}`: latency percentiles per offered load step;
- `throughput` — `{"offered_per_s": [r, …], "operations": {name: [answered/s per step, …]}}`: throughput per
  operation against the offered rate;
- `memory` — `{"t_s": [...], "rss_mib": [...], "warmup_s": s, "slope_mib_per_min": m}`: resident memory over time;
- `knee` — `{"rates": [...], "p99_ms": [...], "error_rate": [...], "held": [bool, …], "knee_per_s": r | null,
  "p99_limit_ms": ms}`: a stress ramp and the highest rate that held;
- `timeline` — `{"t_s": [...], "values": {name: [...]}, "events": [{"t_s": s, "label": text}, …]}`: values over
  time with marked events (a recovery timeline).
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

OUTCOME_COLOURS = {
    "passed": "#1a7f37",
    "failed": "#cf222e",
    "error": "#cf222e",
    "skipped": "#9a6700",
    "xfailed": "#9a6700",
    "xpassed": "#cf222e",
}
CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#1f2328}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
h3{font-size:1rem;margin:1.2rem 0 .3rem}.muted{color:#656d76}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border:1px solid #d0d7de;padding:.3rem .5rem;
text-align:left;vertical-align:top}th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:0 .45rem;border-radius:.7rem;color:#fff;font-size:.8rem;font-weight:600}
.test{border:1px solid #d0d7de;border-radius:6px;padding:.6rem .9rem;margin:.8rem 0}
pre{white-space:pre-wrap;background:#f6f8fa;padding:.5rem;border-radius:4px;max-height:18rem;overflow:auto}
img{max-width:100%;height:auto;border:1px solid #eaeef2;margin:.4rem 0}
.totals span{margin-right:1.2rem}
"""
MAX_PRE = 4000


def write_html_report(summary: dict[str, Any], path: Path) -> Path:
    path.write_text(render(summary), encoding="utf-8")
    return path


def render(summary: dict[str, Any]) -> str:
    target = summary.get("target", {})
    totals = summary.get("totals", {})
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'\">",
        f"<title>Vigil validation — {_e(target.get('description', ''))}</title><style>{CSS}</style></head><body>",
        "<h1>Vigil validation report</h1>",
        f"<p class='muted'>{_e(target.get('description', 'unknown target'))} · started "
        f"{_e(summary.get('started_at', ''))} · {float(summary.get('duration_s', 0)):.1f} s</p>",
        "<p class='totals'>"
        + "".join(
            f"<span>{_badge(outcome)} {int(totals.get(outcome, 0))}</span>"
            for outcome in ("passed", "failed", "error", "skipped")
        )
        + f"<span>{int(totals.get('total', 0))} tests</span></p>",
    ]
    if summary.get("collection_errors"):
        parts.append("<h2>Collection errors</h2>")
        parts += [
            f"<pre>{_e(e.get('nodeid', ''))}: {_e(e.get('error', ''))}</pre>" for e in summary["collection_errors"]
        ]
    by_suite: dict[str, list[dict[str, Any]]] = {}
    for test in summary.get("tests", []):
        by_suite.setdefault(str(test.get("suite", "other")), []).append(test)
    parts.append(_suite_table(summary.get("suites", {})))
    for suite, tests in sorted(by_suite.items()):
        parts.append(f"<h2 id='{_e(suite)}'>{_e(suite)}</h2>")
        parts += [_test_block(test) for test in tests]
    parts.append("</body></html>")
    return "\n".join(parts)


def _suite_table(suites: dict[str, dict[str, int]]) -> str:
    outcomes = ("passed", "failed", "error", "skipped")
    rows = "".join(
        f"<tr><td><a href='#{_e(name)}'>{_e(name)}</a></td>"
        + "".join(f"<td class='num'>{int(counts.get(o, 0))}</td>" for o in outcomes)
        + "</tr>"
        for name, counts in sorted(suites.items())
    )
    head = "".join(f"<th>{o}</th>" for o in outcomes)
    return f"<table><tr><th>suite</th>{head}</tr>{rows}</table>"


def _test_block(test: dict[str, Any]) -> str:
    name = str(test.get("nodeid", "")).split("::", 1)[-1]
    lines = [
        "<div class='test'>",
        f"<h3>{_badge(str(test.get('outcome', '')))} {_e(name)} "
        f"<span class='muted'>{float(test.get('duration_s', 0)):.2f} s</span></h3>",
        f"<div class='muted'>{_e(test.get('nodeid', ''))}</div>",
    ]
    if test.get("failure"):
        lines.append(f"<pre>{_e(str(test['failure'])[:MAX_PRE])}</pre>")
    if test.get("skip_reason"):
        lines.append(f"<p class='muted'>skipped: {_e(test['skip_reason'])}</p>")
    figures = test.get("figures") or []
    if figures:
        rows = "".join(
            f"<tr><td>{_e(f.get('name', ''))}</td><td class='num'>{_number(f.get('value'))}</td>"
            f"<td>{_e(f.get('unit', ''))}</td></tr>"
            for f in figures
        )
        lines.append(f"<table><tr><th>figure</th><th>value</th><th>unit</th></tr>{rows}</table>")
    lines += [_series_block(series) for series in test.get("series") or []]
    lines.append("</div>")
    return "\n".join(lines)


def _series_block(series: dict[str, Any]) -> str:
    kind = str(series.get("kind", ""))
    title = f"{series.get('name', kind)}" + (f" ({series['unit']})" if series.get("unit") else "")
    draw = PLOTTERS.get(kind)
    data = series.get("data") or {}
    if draw is not None:
        try:
            figure = draw(data, title)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            return f"<p class='muted'>{_e(title)}: cannot draw this {_e(kind)} series ({_e(exc)})</p>"
        return f"<img alt='{_e(title)}' src='data:image/png;base64,{_png(figure)}'>"
    text = json.dumps(data, indent=1, default=str)[:MAX_PRE]
    return f"<h3>{_e(title)} <span class='muted'>{_e(kind)}</span></h3><pre>{_e(text)}</pre>"


# -- plots -------------------------------------------------------------------------------------------------------
def _figure(title: str) -> tuple[Figure, Any]:
    # Made directly, without pyplot: no global state, no display backend, safe in any thread. Imported here, as
    # every `vigil` command imports this module and most never draw.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.6), dpi=100)
    axes = figure.subplots()
    axes.set_title(title, fontsize=11)
    axes.grid(True, alpha=0.3)
    return figure, axes


def _latency_steps(data: dict[str, Any], title: str) -> Figure:
    figure, axes = _figure(title)
    steps = data["steps"]
    rates = [float(s["rate"]) for s in steps]
    for key, label in (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p99_9", "p99.9"), ("max", "max")):
        axes.plot(rates, [float(s[key]) for s in steps], marker="o", label=label)
    if data.get("limit_ms"):
        axes.axhline(float(data["limit_ms"]), color="#cf222e", linestyle="--", label="p99 limit")
    axes.set_xlabel("offered load (requests/s)")
    axes.set_ylabel("latency (ms)")
    axes.set_yscale("log")
    axes.legend(fontsize=8, ncol=3)
    return figure


def _throughput(data: dict[str, Any], title: str) -> Figure:
    figure, axes = _figure(title)
    offered = [float(r) for r in data["offered_per_s"]]
    operations = {name: [float(v) for v in values] for name, values in sorted(data["operations"].items())}
    if len(offered) == 1:  # one load: each operation's share of it, as bars
        names = list(operations)
        axes.barh(names, [values[0] for values in operations.values()], color="#0969da")
        axes.set_xlabel(
            f"answered (requests/s) of {offered[0]:g}/s offered, {sum(v[0] for v in operations.values()):.1f}/s in all"
        )
        axes.invert_yaxis()
        return figure
    axes.plot(offered, offered, color="#8c959f", linestyle=":", label="offered")
    total = [sum(values[i] for values in operations.values()) for i in range(len(offered))]
    axes.plot(offered, total, color="#1f2328", marker="s", label="all operations")
    for name, achieved in operations.items():
        axes.plot(offered, achieved, marker="o", label=name)
    axes.set_xlabel("offered load (requests/s)")
    axes.set_ylabel("answered (requests/s)")
    axes.legend(fontsize=8, ncol=2)
    return figure


def _memory(data: dict[str, Any], title: str) -> Figure:
    figure, axes = _figure(title)
    t = [float(v) for v in data["t_s"]]
    rss = [float(v) for v in data["rss_mib"]]
    axes.plot(t, rss, color="#0969da", label="resident memory")
    warmup = float(data.get("warmup_s", 0))
    if warmup:
        axes.axvspan(0, warmup, color="#eaeef2", label="warm-up")
    slope = data.get("slope_mib_per_min")
    after = [(x, y) for x, y in zip(t, rss, strict=True) if x >= warmup]
    if slope is not None and after:
        x0, _ = after[0]
        mean_t = sum(x for x, _ in after) / len(after)
        mean_y = sum(y for _, y in after) / len(after)
        fit = [mean_y + float(slope) / 60 * (x - mean_t) for x, _ in after]
        axes.plot(
            [x for x, _ in after], fit, color="#cf222e", linestyle="--", label=f"slope {float(slope):.2f} MiB/min"
        )
        axes.set_xlim(left=min(0.0, x0))
    axes.set_xlabel("time (s)")
    axes.set_ylabel("MiB")
    axes.legend(fontsize=8)
    return figure


def _knee(data: dict[str, Any], title: str) -> Figure:
    figure, axes = _figure(title)
    rates = [float(r) for r in data["rates"]]
    p99 = [float(v) for v in data["p99_ms"]]
    held = [bool(h) for h in data["held"]]
    axes.plot(rates, p99, color="#0969da", label="p99")
    axes.scatter([r for r, h in zip(rates, held, strict=True) if h], [p for p, h in zip(p99, held, strict=True) if h],
                 color="#1a7f37", zorder=3, label="held")  # fmt: skip
    axes.scatter([r for r, h in zip(rates, held, strict=True) if not h],
                 [p for p, h in zip(p99, held, strict=True) if not h], color="#cf222e", marker="x", zorder=3,
                 label="broke")  # fmt: skip
    if data.get("p99_limit_ms"):
        axes.axhline(float(data["p99_limit_ms"]), color="#cf222e", linestyle="--", label="p99 limit")
    if data.get("knee_per_s") is not None:
        axes.axvline(float(data["knee_per_s"]), color="#1a7f37", linestyle=":", label=f"knee {data['knee_per_s']:g}/s")
    errors = data.get("error_rate")
    if errors:
        twin = axes.twinx()
        twin.bar(rates, [100 * float(e) for e in errors], width=[r * 0.08 for r in rates], alpha=0.25,
                 color="#cf222e")  # fmt: skip
        twin.set_ylabel("errors (%)")
    axes.set_xlabel("offered load (requests/s)")
    axes.set_ylabel("p99 latency (ms)")
    axes.set_yscale("log")
    axes.legend(fontsize=8, loc="upper left")
    return figure


def _timeline(data: dict[str, Any], title: str) -> Figure:
    figure, axes = _figure(title)
    t = [float(v) for v in data["t_s"]]
    for name, values in sorted((data.get("values") or {}).items()):
        axes.plot(t, [float(v) for v in values], label=name)
    for event in data.get("events") or []:
        axes.axvline(float(event["t_s"]), color="#8c959f", linestyle="--")
        axes.annotate(str(event.get("label", "")), (float(event["t_s"]), 1), xycoords=("data", "axes fraction"),
                      rotation=90, va="top", ha="right", fontsize=8)  # fmt: skip
    axes.set_xlabel("time (s)")
    if data.get("values"):
        axes.legend(fontsize=8)
    return figure


PLOTTERS: dict[str, Callable[[dict[str, Any], str], Figure]] = {
    "latency_steps": _latency_steps,
    "throughput": _throughput,
    "memory": _memory,
    "knee": _knee,
    "timeline": _timeline,
}


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _badge(outcome: str) -> str:
    colour = OUTCOME_COLOURS.get(outcome, "#656d76")
    return f"<span class='badge' style='background:{colour}'>{_e(outcome)}</span>"


def _number(value: Any) -> str:
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return _e(value)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)
