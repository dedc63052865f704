"""Report plots as self-contained PNG data URIs, drawn with matplotlib's object API (Agg, no pyplot state).

Text drawn into a figure comes from users (column names), so it is drawn literally: `parse_math=False` keeps a
name such as ``$\\frac$`` from being parsed as mathtext, and long names are shortened.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import matplotlib.dates as mdates
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

ACCENT = "#3b6ea8"
_DPI = 80


def short(label: str, limit: int = 24) -> str:
    """>>> short("a" * 30, 10)
    'aaaaaaaaa…'
    """
    return label if len(label) <= limit else label[: limit - 1] + "…"


def to_data_uri(figure: Figure) -> str:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def histogram(
    edges: Sequence[float], counts: Sequence[int], *, datetime_axis: bool = False, x_label: str = "value"
) -> str:
    figure = Figure(figsize=(4.0, 2.2))
    axes = figure.add_subplot()
    axes.set_xlabel(short(x_label, 40), fontsize=8, parse_math=False)
    axes.set_ylabel("rows", fontsize=8)
    if counts:
        positions = np.asarray(edges, dtype=float)
        if datetime_axis:  # edges are seconds since the epoch
            positions = mdates.date2num(  # type: ignore[no-untyped-call]
                (positions * 1e6).astype("int64").astype("datetime64[us]")
            )
            axes.xaxis_date()
            figure.autofmt_xdate()
        axes.stairs(counts, positions, fill=True, color=ACCENT)
    axes.spines[["top", "right"]].set_visible(False)
    axes.tick_params(labelsize=8)
    return to_data_uri(figure)


def heatmap(labels: Sequence[str], matrix: Sequence[Sequence[float | None]], *, title: str) -> str:
    values = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
    size = max(3.0, min(12.0, 0.35 * len(labels) + 2))
    figure = Figure(figsize=(size + 1, size))
    axes = figure.add_subplot()
    image = axes.imshow(values, cmap="RdBu_r", norm=TwoSlopeNorm(vcenter=0.0, vmin=-1.0, vmax=1.0))
    ticks = range(len(labels))
    names = [short(label) for label in labels]
    axes.set_xticks(ticks, names, rotation=90, fontsize=8, parse_math=False)
    axes.set_yticks(ticks, names, fontsize=8, parse_math=False)
    if len(labels) <= 12:
        for i in ticks:
            for j in ticks:
                if not np.isnan(values[i, j]):
                    value = values[i, j]
                    axes.text(
                        j,
                        i,
                        f"{value:.2f}",
                        ha="center",
                        va="center",
                        fontsize=8,
                        color=annotation_colour(tuple(image.cmap(image.norm(value)))),
                        parse_math=False,
                    )
    axes.set_title(title, fontsize=10, parse_math=False)
    figure.colorbar(image, ax=axes, shrink=0.8)
    return to_data_uri(figure)


def annotation_colour(cell: Sequence[float]) -> str:
    """White or black, whichever contrasts more with a heatmap cell of this RGBA colour: RdBu_r is dark at both ends
    (the diagonal's 1.00 among them), where black text vanished.

    >>> annotation_colour((0.4, 0.0, 0.12, 1.0)), annotation_colour((0.97, 0.97, 0.97, 1.0))
    ('white', 'black')
    """
    # WCAG 2 contrast ratios, (lighter + 0.05) / (darker + 0.05): equal for white and black at luminance ~0.179.
    return "white" if relative_luminance(cell) < 0.179 else "black"


def relative_luminance(colour: Sequence[float]) -> float:
    """WCAG 2 relative luminance of an sRGB colour (0 black, 1 white).

    >>> relative_luminance((1.0, 1.0, 1.0, 1.0)), relative_luminance((0.0, 0.0, 0.0, 1.0))
    (1.0, 0.0)
    """
    red, green, blue = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in colour[:3])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def bars(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    limit: float | None = None,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
) -> str:
    figure = Figure(figsize=(6.0, max(1.6, 0.32 * len(labels) + 0.6)))
    axes = figure.add_subplot()
    axes.set_xlabel(x_label, fontsize=8, parse_math=False)
    axes.set_ylabel(y_label, fontsize=8, parse_math=False)
    positions = np.arange(len(labels))
    colours = [_score_colour(v) if limit == 1.0 else ACCENT for v in values]
    axes.barh(positions, values, color=colours)
    axes.set_yticks(positions, [short(label, 30) for label in labels], fontsize=9, parse_math=False)
    axes.invert_yaxis()
    if limit is not None:
        axes.set_xlim(0, limit)
    for position, value in zip(positions, values, strict=True):
        axes.text(value, float(position), f" {value:.3g}", va="center", fontsize=8, parse_math=False)
    axes.spines[["top", "right"]].set_visible(False)
    axes.set_title(title, fontsize=10, parse_math=False)
    return to_data_uri(figure)


def _score_colour(score: float) -> str:
    if score >= 0.95:
        return "#2e8b57"
    if score >= 0.8:
        return "#d4a017"
    return "#c0392b"
