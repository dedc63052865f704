"""Report plots stay readable: a heatmap's numbers contrast with the cells they are written on."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps

from vigil.analysis.plots import annotation_colour, relative_luminance

WHITE, BLACK = (1.0, 1.0, 1.0, 1.0), (0.0, 0.0, 0.0, 1.0)


def contrast(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    light, dark = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_every_correlation_is_written_in_a_colour_readable_on_its_cell() -> None:
    cmap = colormaps["RdBu_r"]  # the heatmaps' colour map, from -1 (blue) to 1 (red, the diagonal)
    for correlation in np.linspace(-1.0, 1.0, 401):
        cell = cmap((correlation + 1.0) / 2.0)
        text = WHITE if annotation_colour(cell) == "white" else BLACK
        # WCAG AA for normal text; black on the diagonal's dark red was 1.6.
        assert contrast(text, cell) >= 4.5, (correlation, annotation_colour(cell))
