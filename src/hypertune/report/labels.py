"""Cell labels that stay readable: each shrinks to fit its heatmap cell, shortened where it must
be, once the figure's layout is known; the layout is then frozen and snapped, so that the same
report is the same bytes."""

from __future__ import annotations

from typing import Any

import numpy as np

CELL_LABEL = "cell-label"  # gid of the texts written inside heatmap cells
MIN_CELL_FONT = 4.5  # points; a cell label that fits only smaller is shortened


def fit_cell_labels(fig: Any) -> None:
    """Fit every cell label inside its cell: shrink it down to MIN_CELL_FONT, and where that is
    not enough drop its spread line (``±sd n=N``) first, then show the value to two digits.

    Call once the figure's layout is final: a cell's size in points is known only then. The
    figure's layout is then frozen, so that saving it does not move a cell under its label, and
    each axes is snapped to a fixed grid, so that the same report is the same bytes.
    """
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        for text in [t for t in ax.texts if t.get_gid() == CELL_LABEL and t.get_text()]:
            x, y = text.get_position()
            corners = ax.transData.transform([(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)])
            width, height = np.abs(corners[1] - corners[0]) * 0.92
            start = text.get_fontsize()
            for label in _shorter_labels(text.get_text()):
                text.set_text(label)
                size = start
                text.set_fontsize(size)
                while not _inside(text, renderer, width, height) and size * 0.9 >= MIN_CELL_FONT:
                    size *= 0.9
                    text.set_fontsize(size)
                if _inside(text, renderer, width, height):
                    break
            else:
                text.set_visible(False)  # a cell under MIN_CELL_FONT's two digits: none seen
    fig.set_layout_engine("none")
    _snap(fig)


def _snap(fig: Any) -> None:
    """Snap every subfigure and axes of `fig` to a millionth of its parent (and -0 to 0).

    Constrained layout's solver places them differently in the last bits from one layout to the
    next; snapped, the same report is drawn as the same bytes.
    """
    for sub in fig.subfigs:
        sub.bbox_relative.set_points(np.round(sub.bbox_relative.get_points(), 6) + 0.0)
        _snap(sub)
    for ax in fig.axes if fig is fig.figure else []:
        ax.set_position(np.round(ax.get_position().bounds, 6) + 0.0, which="both")


def _shorter_labels(label: str) -> list[str]:
    """A cell label, then its value alone, then the value to two significant digits."""
    value = label.split("\n")[0]
    try:
        short = f"{float(value):.2g}"
    except ValueError:
        short = value
    return list(dict.fromkeys([label, value, short]))


def _inside(text: Any, renderer: Any, width: float, height: float) -> bool:
    box = text.get_window_extent(renderer)
    return bool(box.width <= width and box.height <= height)
