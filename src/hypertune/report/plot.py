"""Rendering only: a HeatmapInfo onto matplotlib axes (cells drawn by seaborn), main-effect
plots, one PNG per pair, and the pair grid.

Every text a plot writes must stay readable: cell labels shrink to fit their cell, shortened
where they must be (`labels.fit_cell_labels`, once the layout is known), and the pair grid
labels only its outer axes, where the labels have room.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hypertune.report.frame import ALL_TRIALS, ColourScale, HeatmapInfo, colour_scale, describe
from hypertune.report.labels import CELL_LABEL, fit_cell_labels
from hypertune.report.surface import Axis, Surface

BEST_COLOUR = "red"


def plot_heatmap(
    info: HeatmapInfo,
    ax: Any,
    direction: str = "min",
    *,
    annotate: bool = True,
    colorbar: bool = True,
    limits: tuple[float, float] | None = None,
    fontsize: float = 9.0,
    caption: bool = True,
    best_trial: tuple[Any, Any] | None = None,
) -> Any:
    """Draw `info` on the matplotlib axes `ax` with `seaborn.heatmap`.

    Better cells are always the bright end of viridis, whichever way the metric improves; the
    cell with the best value of `info.metric` (its `agg` over the trials in the cell) is
    outlined in red; `best_trial`, an (x, y) pair of axis levels, marks the cell of the study's
    best trial with a star. Cells read the aggregate and, where several trials share a cell,
    `±std n=N`. Log-spaced and binned axes say so in their label; the caption below the x label
    counts the trials used and excluded.
    """
    import seaborn as sns
    from matplotlib.patches import Rectangle

    vmin, vmax = limits if limits is not None else (None, None)
    sns.heatmap(
        info.values.astype(float),
        ax=ax,
        cmap=colour_map(direction),
        vmin=vmin,
        vmax=vmax,
        annot=_annotations(info) if annotate else False,
        fmt="",
        annot_kws={"fontsize": fontsize, "gid": CELL_LABEL},
        linewidths=0.5,
        linecolor="white",
        cbar=colorbar,
        cbar_kws={"label": bar_label(info, direction)} if colorbar else None,
        xticklabels=ticks(list(info.values.columns)),
        yticklabels=ticks(list(info.values.index)),
        square=False,
    )
    for text in ax.texts:
        text.set_gid(CELL_LABEL)
    if limits is not None:  # cells beyond a cut colour scale: hatched, at the scale's end
        array = info.values.to_numpy(dtype=float)
        for row, col in zip(*np.nonzero((array < vmin) | (array > vmax)), strict=True):
            ax.add_patch(Rectangle((col, row), 1, 1, fill=False, hatch="///", lw=0,
                                   edgecolor="white"))  # fmt: skip
    ax.invert_yaxis()  # row 0 (the smallest value) at the bottom, as on a plot's y axis
    ax.tick_params(length=0)
    best = best_cell(info.values, direction)
    if best is not None:
        ax.add_patch(Rectangle((best[1], best[0]), 1, 1, fill=False, edgecolor=BEST_COLOUR, lw=2))
    marked = _position(info, best_trial)
    if marked is not None:
        ax.plot(marked[1] + 0.12, marked[0] + 0.82, marker="*", ms=fontsize * 0.9, mfc="white",
                mec="black", mew=0.6, ls="none")  # fmt: skip
    x, y = str(info.values.columns.name), str(info.values.index.name)
    ax.set_xlabel(axis_label(info, x) + (f"\n{caption_text(info)}" if caption else ""))
    ax.set_ylabel("" if y == ALL_TRIALS else axis_label(info, y))
    ax.tick_params(axis="both", labelsize=fontsize)
    ax.tick_params(axis="y", rotation=0)
    # A bin's two edges need room: at 30° on a full-size heatmap, upright in a small panel.
    ax.tick_params(axis="x", rotation=(30 if fontsize >= 9 else 90) if x in info.binned else 0)
    return ax


def plot_main_effect(
    effect: pd.DataFrame,
    ax: Any,
    direction: str,
    *,
    label: str,
    metric: str,
    fontsize: float = 7.0,
) -> Any:
    """Draw a main effect (`frame.main_effect`): the mean per level with its 95% interval.

    The level with the best mean is circled in red.
    """
    means = effect["mean"].to_numpy(dtype=float)
    positions = np.arange(len(means))
    below = np.nan_to_num(means - effect["low"].to_numpy(dtype=float))
    above = np.nan_to_num(effect["high"].to_numpy(dtype=float) - means)
    ax.errorbar(positions, means, yerr=[below, above], marker="o", capsize=3, color="#3b528b")
    if len(means) and not np.isnan(means).all():
        best = int(np.nanargmin(means) if direction == "min" else np.nanargmax(means))
        ax.plot(positions[best], means[best], "o", ms=10, mfc="none", mec=BEST_COLOUR, mew=2)
    labels = ticks(list(effect.index))
    ax.set_xticks(positions, labels, fontsize=fontsize)
    crowded = len(labels) > 4 or sum(len(t) for t in labels) > 24
    if (
        crowded
        or isinstance(effect.index, pd.CategoricalIndex | pd.IntervalIndex)
        or any(isinstance(v, pd.Interval) for v in effect.index)
    ):
        # Slanted, so that neighbouring labels of many or long levels never run into each other.
        for tick in ax.get_xticklabels():
            tick.set(rotation=40 if crowded else 30, ha="right", rotation_mode="anchor")
    ax.tick_params(axis="y", labelsize=fontsize)
    ax.set_xlabel(label, fontsize=fontsize)
    ax.set_ylabel(f"{metric} (mean)", fontsize=fontsize)
    ax.grid(alpha=0.3)
    return ax


def axis_label(info: HeatmapInfo, name: str) -> str:
    """The parameter's name, saying when its levels are log-spaced or quantile bins."""
    notes = []
    if name in info.log_axes:
        notes.append("log scale")
    if name in info.binned:
        notes.append("quantile bins")
    return f"{name} ({', '.join(notes)})" if notes else name


def caption_text(info: HeatmapInfo) -> str:
    """'12 trials used, mean per cell; excluded: 1 error' (the heatmap's honesty line)."""
    text = f"{info.used} trials used, {info.agg} per cell"
    return text + (f"; excluded: {describe(info.excluded)}" if info.excluded else "")


def best_cell(values: pd.DataFrame, direction: str) -> tuple[int, int] | None:
    """(row, column) position of the best cell, or None when every cell is empty."""
    array = values.to_numpy(dtype=float)
    if np.isnan(array).all():
        return None
    flat = np.nanargmin(array) if direction == "min" else np.nanargmax(array)
    row, col = np.unravel_index(flat, array.shape)
    return int(row), int(col)


def plot_surface(
    surface: Surface,
    ax: Any,
    direction: str,
    *,
    limits: tuple[float, float] | None = None,
    fontsize: float = 9.0,
) -> Any:
    """Draw a pair's fitted surface (`surface.Surface`) in the heatmaps' colours, with its
    trials as dots, on the parameters' own scales (log10 where log-spaced)."""
    vmin, vmax = limits if limits is not None else (None, None)
    ax.pcolormesh(surface.x.grid, surface.y.grid, surface.values, shading="nearest",
                  cmap=colour_map(direction), vmin=vmin, vmax=vmax)  # fmt: skip
    ax.scatter(surface.x.trials, surface.y.trials, s=fontsize * 1.2, c="white",
               edgecolors="black", linewidths=0.4)  # fmt: skip

    def label(scale: Axis) -> str:
        fitted = "levels" if scale.levels else "quadratic" + (", log scale" if scale.log else "")
        return f"{scale.name} ({fitted})"

    scale_axes(ax, surface.x, surface.y, label, fontsize)
    return ax


def scale_axes(
    ax: Any, x: Axis, y: Axis, label: Callable[[Axis], str], fontsize: float = 9.0
) -> None:
    """Axes drawn on grids of `x` and `y` show the parameters' own values: their levels, or
    10**v where an axis is log10; each labelled by `label`."""
    from matplotlib.ticker import FuncFormatter

    for axis, scale, setter in ((ax.xaxis, x, ax.set_xlabel),
                                (ax.yaxis, y, ax.set_ylabel)):  # fmt: skip
        if scale.levels:
            axis.set_ticks(scale.grid, labels=list(scale.levels))
        elif scale.log:
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{10**v:.2g}"))
        setter(label(scale), fontsize=fontsize)
    ax.tick_params(axis="both", labelsize=fontsize)


def write_heatmap(
    info: HeatmapInfo,
    path: Path,
    direction: str,
    *,
    note: str = "",
    limits: tuple[float, float] | None = None,
    best_trial: tuple[Any, Any] | None = None,
    surface: Surface | None = None,
) -> Path:
    """Render `info` to a PNG file; `note` (the pair's verdict) goes under the title. A pair
    tested on a fitted surface (a quadratic axis) gets that surface beside its cells."""
    plt = pyplot()
    width = max(6.0, 1.1 * info.values.shape[1] + 2.5)
    height = max(3.2 if info.values.shape[0] == 1 else 4.8, 0.8 * info.values.shape[0] + 2.2)
    if surface is not None:
        fig, (ax, right) = plt.subplots(
            1, 2, figsize=(width + height, height), layout="constrained",
            width_ratios=[width, height],
        )  # fmt: skip
        plot_surface(surface, right, direction, limits=limits)
        right.set_title(f"the fitted model the verdict was tested on\n({surface.method})",
                        fontsize=9)  # fmt: skip
    else:
        fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    try:
        plot_heatmap(info, ax, direction, limits=limits, best_trial=best_trial)
        ax.set_title(title(info) + (f"\n{note}" if note else ""), fontsize=10)
        fit_cell_labels(fig)
        fig.savefig(path, dpi=120, format="png")
    finally:
        plt.close(fig)
    return path


def draw_pairs(
    infos: dict[tuple[str, str], HeatmapInfo], params: Sequence[str], direction: str
) -> Any:
    """All pairs in one figure: the lower triangle of a grid, y down the side, x along the foot.

    Every panel shares one colour scale, shown once; only the outer panels carry tick labels
    and axis names (a row shares its y parameter, a column its x parameter).
    """
    plt = pyplot()
    size = max(len(params) - 1, 1)
    scale = shared_scale(infos.values(), direction)
    limits = scale.limits
    fig, axes = plt.subplots(
        size, size, figsize=(2.6 * size + 2.2, 2.4 * size + 1.4), squeeze=False,
        layout="constrained",
    )  # fmt: skip
    for row, col in itertools.product(range(size), range(size)):
        ax = axes[row][col]
        info = infos.get((params[col], params[row + 1]))
        if col > row or info is None:
            ax.set_axis_off()
            continue
        plot_heatmap(info, ax, direction, annotate=True, colorbar=False, limits=limits,
                     fontsize=7, caption=False)  # fmt: skip
        if col > 0:
            ax.set_ylabel("")
            ax.set_yticklabels([])
        if row < size - 1:
            ax.set_xlabel("")
            ax.set_xticklabels([])
    some = next(iter(infos.values()))
    mappable = plt.cm.ScalarMappable(cmap=colour_map(direction), norm=plt.Normalize(*limits))
    fig.colorbar(mappable, ax=axes, label=bar_label(some, direction), shrink=0.8)
    text = (
        f"{some.metric} over every pair of parameters (one colour scale). {caption_text(some)}; "
        f"red outline: the pair's best cell ({some.agg} over the other parameters)"
    )
    if scale.note(direction):
        text += f"; {scale.note(direction)}"
    chars = int(fig.get_figwidth() * 72 / (9 * 0.6))  # what fits across at 9 points
    fig.suptitle("\n".join(textwrap.wrap(text, chars)), fontsize=9)
    return fig


def write_pairs(
    infos: dict[tuple[str, str], HeatmapInfo], params: Sequence[str], path: Path, direction: str
) -> Path:
    """Render `draw_pairs` to a PNG file."""
    plt = pyplot()
    fig = draw_pairs(infos, params, direction)
    try:
        fit_cell_labels(fig)
        fig.savefig(path, dpi=110, format="png")
    finally:
        plt.close(fig)
    return path


def shared_scale(infos: Any, direction: str) -> ColourScale:
    """The one colour scale of every cell of `infos` (cut past outliers: `colour_scale`)."""
    values = np.concatenate([i.values.to_numpy(dtype=float).ravel() for i in infos])
    return colour_scale(values.tolist(), direction)


def heatmap_path(folder: Path, x: str, y: str) -> Path:
    """reports/<study>/heatmap_<x>__<y>.png"""
    return folder / f"heatmap_{x}__{y}.png"


def title(info: HeatmapInfo) -> str:
    """'accuracy by num_layers x hidden_size' (or 'accuracy by lr' for one parameter)."""
    x, y = info.values.columns.name, info.values.index.name
    return f"{info.metric} by {x}" + ("" if y == ALL_TRIALS else f" x {y}")


def colour_map(direction: str) -> str:
    return "viridis_r" if direction == "min" else "viridis"


def bar_label(info: HeatmapInfo, direction: str) -> str:
    better = "lower is better" if direction == "min" else "higher is better"
    return f"{info.metric} ({info.agg}; {better})"


def _position(info: HeatmapInfo, levels: tuple[Any, Any] | None) -> tuple[int, int] | None:
    """(row, column) of the cell holding the axis levels (x, y), or None."""
    if levels is None:
        return None
    x, y = levels
    columns = [i for i, c in enumerate(info.values.columns) if _holds(c, x)]
    rows = [i for i, r in enumerate(info.values.index) if _holds(r, y)]
    return (rows[0], columns[0]) if rows and columns else None


def _holds(level: Any, value: Any) -> bool:
    if isinstance(level, pd.Interval):
        try:
            return float(level.left) <= float(value) <= float(level.right)
        except (TypeError, ValueError):
            return False
    return bool(level == value) or str(level) == str(value)


def _annotations(info: HeatmapInfo) -> np.ndarray:
    values = info.values.to_numpy(dtype=float)
    std = info.std.to_numpy(dtype=float)
    counts = info.counts.to_numpy(dtype=int)
    labels = np.full(values.shape, "", dtype=object)
    for (i, j), value in np.ndenumerate(values):
        if np.isnan(value):
            continue
        text = f"{value:.3g}"
        if counts[i, j] > 1:
            text += f"\n±{std[i, j]:.2g} n={counts[i, j]}"
        labels[i, j] = text
    return labels


def ticks(levels: Sequence[Any]) -> list[str]:
    """Tick labels of an axis's levels; quantile bins say which bin holds each edge: the first
    holds both of its ends (`[8, 16]`), every other its right end only (`(16, 32]`)."""
    labels = [_tick(v) for v in levels]
    if len(levels) and isinstance(levels[0], pd.Interval) and labels[0].startswith("("):
        labels[0] = "[" + labels[0][1:]
    return labels


def _tick(value: Any) -> str:
    if isinstance(value, pd.Interval):
        left = "[" if value.closed in ("left", "both") else "("
        right = "]" if value.closed in ("right", "both") else ")"
        return f"{left}{_edge(value.left)}, {_edge(value.right)}{right}"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _edge(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.2g}"


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
