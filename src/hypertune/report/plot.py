"""Rendering only: a HeatmapInfo onto matplotlib axes, one PNG per pair, and the pair grid."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hypertune.report.frame import ALL_TRIALS, HeatmapInfo, describe


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
) -> Any:
    """Draw `info` on the matplotlib axes `ax`.

    Better cells are always the bright end of viridis, whichever way the metric improves; the
    best cell is outlined in red; cells read the aggregate and, where several trials share a
    cell, `±std n=N`. Log-spaced and binned axes say so in their label; the caption below the
    x label counts the trials used and excluded.
    """
    from matplotlib.patches import Rectangle

    values = info.values.to_numpy(dtype=float)
    vmin, vmax = limits if limits is not None else (None, None)
    mesh = ax.pcolormesh(
        np.ma.masked_invalid(values),
        cmap="viridis_r" if direction == "min" else "viridis",
        vmin=vmin,
        vmax=vmax,
        edgecolors="white",
        linewidth=0.5,
    )
    rows, cols = values.shape
    ax.set_xlim(0, cols)
    ax.set_ylim(0, rows)  # row 0 (the smallest value) at the bottom, as on a plot's y axis
    ax.set_xticks(np.arange(cols) + 0.5, [_tick(v) for v in info.values.columns])
    ax.set_yticks(np.arange(rows) + 0.5, [_tick(v) for v in info.values.index])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if annotate:
        _annotate(ax, mesh, _annotations(info), values, fontsize)
    if colorbar:
        bar = ax.figure.colorbar(
            mesh, ax=ax, label=f"{info.metric} ({info.agg}; {_better(direction)})"
        )
        bar.outline.set_linewidth(0)
    best = best_cell(info.values, direction)
    if best is not None:
        ax.add_patch(Rectangle((best[1], best[0]), 1, 1, fill=False, edgecolor="red", lw=2.5))
    x, y = str(info.values.columns.name), str(info.values.index.name)
    ax.set_xlabel(axis_label(info, x) + (f"\n{caption_text(info)}" if caption else ""))
    ax.set_ylabel("" if y == ALL_TRIALS else axis_label(info, y))
    ax.tick_params(axis="both", labelsize=fontsize)
    ax.tick_params(axis="y", rotation=0)
    ax.tick_params(axis="x", rotation=30 if x in info.binned else 0)
    return ax


def _annotate(ax: Any, mesh: Any, labels: np.ndarray, values: np.ndarray, fontsize: float) -> None:
    """Write each cell's label in the middle of the cell, dark on light colours, white on dark."""
    for (row, col), text in np.ndenumerate(labels):
        if not text:
            continue
        red, green, blue, _ = mesh.cmap(mesh.norm(values[row, col]))
        ax.text(
            col + 0.5,
            row + 0.5,
            text,
            ha="center",
            va="center",
            fontsize=fontsize,
            color="#262626" if _luminance(red, green, blue) > 0.408 else "white",
        )


def _luminance(*rgb: float) -> float:
    """Relative luminance of an sRGB colour (WCAG), 0 for black to 1 for white."""
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def plot_main_effect(info: HeatmapInfo, ax: Any, direction: str, fontsize: float = 7.0) -> Any:
    """Draw a one-row `info` (one parameter, all other parameters pooled) as a line with ±std."""
    values = info.values.iloc[0].to_numpy(dtype=float)
    std = np.nan_to_num(info.std.iloc[0].to_numpy(dtype=float))
    positions = np.arange(len(values))
    ax.errorbar(positions, values, yerr=std, marker="o", capsize=3, color="#3b528b")
    best = best_cell(info.values, direction)
    if best is not None:
        ax.plot(positions[best[1]], values[best[1]], "o", ms=10, mfc="none", mec="red", mew=2)
    ax.set_xticks(positions, [_tick(v) for v in info.values.columns], fontsize=fontsize)
    if info.binned:
        ax.tick_params(axis="x", rotation=30)
    ax.tick_params(axis="y", labelsize=fontsize)
    ax.set_xlabel(axis_label(info, str(info.values.columns.name)), fontsize=fontsize)
    ax.set_ylabel(f"{info.metric} ({info.agg})", fontsize=fontsize)
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


def write_heatmap(info: HeatmapInfo, path: Path, direction: str) -> Path:
    """Render `info` to a PNG file."""
    plt = _pyplot()
    width = max(6.0, 1.1 * info.values.shape[1] + 2.5)
    height = max(3.0 if info.values.shape[0] == 1 else 4.5, 0.8 * info.values.shape[0] + 2.0)
    fig, ax = plt.subplots(figsize=(width, height))
    try:
        plot_heatmap(info, ax, direction)
        ax.set_title(title(info))
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path


def write_pairs(
    infos: dict[tuple[str, str], HeatmapInfo], params: Sequence[str], path: Path, direction: str
) -> Path:
    """All pairs in one image: the lower triangle of a grid, y down the side, x along the foot.

    Every panel shares one colour scale, so a colour means the same value everywhere.
    """
    plt = _pyplot()
    size = max(len(params) - 1, 1)
    values = np.concatenate([i.values.to_numpy(dtype=float).ravel() for i in infos.values()])
    limits = (float(np.nanmin(values)), float(np.nanmax(values)))
    fig, axes = plt.subplots(size, size, figsize=(3.6 * size + 1, 3.2 * size + 0.6), squeeze=False)
    try:
        for row, col in itertools.product(range(size), range(size)):
            ax = axes[row][col]
            x, y = params[col], params[row + 1]
            info = infos.get((x, y))
            if col > row or info is None:
                ax.set_axis_off()
                continue
            plot_heatmap(
                info, ax, direction, annotate=size <= 3, colorbar=False, limits=limits,
                fontsize=7, caption=False,
            )  # fmt: skip
        some = next(iter(infos.values()))
        mappable = plt.cm.ScalarMappable(
            cmap="viridis_r" if direction == "min" else "viridis",
            norm=plt.Normalize(*limits),
        )
        label = f"{some.metric} ({some.agg}; {_better(direction)})"
        fig.colorbar(mappable, ax=axes, label=label, shrink=0.8)
        fig.suptitle(f"{some.metric} over every pair of parameters\n{caption_text(some)}")
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path


def heatmap_path(folder: Path, x: str, y: str) -> Path:
    """reports/<study>/heatmap_<x>__<y>.png"""
    return folder / f"heatmap_{x}__{y}.png"


def title(info: HeatmapInfo) -> str:
    """'accuracy by num_layers x hidden_size' (or 'accuracy by lr' for one parameter)."""
    x, y = info.values.columns.name, info.values.index.name
    return f"{info.metric} by {x}" + ("" if y == ALL_TRIALS else f" x {y}")


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


def _tick(value: Any) -> str:
    if isinstance(value, pd.Interval):
        return f"{_edge(value.left)}–{_edge(value.right)}"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _edge(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.2g}"


def _better(direction: str) -> str:
    return "lower is better" if direction == "min" else "higher is better"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
