"""Heatmaps of one metric over two hyperparameters, from stored results only (no Ray).

`heatmap_info` is the pure data layer (a pivot plus its counts and spread), `heatmap_frame` its
public face, `plot_heatmap` only draws, and `write_heatmaps` composes them into files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from hypertune.errors import ReportError

AGGREGATES = ("mean", "median", "min", "max")
USABLE_STATUS = "TERMINATED"
MAX_LEVELS = 8  # more distinct numeric values than this on an axis are binned
QUANTILE_BINS = 5


class HeatmapInfo(NamedTuple):
    """Everything a heatmap shows; frames share index (y values) and columns (x values)."""

    values: pd.DataFrame  # the aggregate per cell; NaN where no trial ran
    std: pd.DataFrame  # spread of the trials in a cell (NaN where n < 2)
    counts: pd.DataFrame  # trials per cell (0 where none)
    used: int  # trials drawn
    excluded: dict[str, int]  # trials left out, by reason
    binned: tuple[str, ...]  # axes whose continuous values were put into quantile bins
    metric: str
    agg: str


def heatmap_info(
    results: pd.DataFrame,
    x: str,
    y: str,
    metric: str,
    agg: str = "mean",
    full_budget_only: bool = False,
) -> HeatmapInfo:
    """Pivot `metric` over `x` (columns) and `y` (rows), following DESIGN.md's heatmap rules.

    Only finished trials with a finite metric are used; the others are counted in `excluded`.
    Trials with unequal training budgets (the `epochs` column) are refused, or, with
    `full_budget_only`, only those with the largest budget are kept. Several trials in one cell
    are combined with `agg`; a combination no trial ran is NaN. Numeric axes are sorted
    ascending, categories alphabetically; an axis with more than MAX_LEVELS numeric values is
    cut into QUANTILE_BINS quantile bins.

    Raises:
        ReportError: unknown column, unknown aggregate, mixed budgets, or no usable trial.
    """
    _check_columns(results, [x, y, metric])
    if x == y:
        raise ReportError(f"--x and --y are both '{x}'; pick two different parameters")
    if agg not in AGGREGATES:
        raise ReportError(f"--agg: '{agg}' is unknown; choose one of {', '.join(AGGREGATES)}")
    frame, excluded = usable_trials(results, metric, full_budget_only)
    if frame.empty:
        raise ReportError(f"no usable trials for {metric} (excluded: {_describe(excluded)})")
    binned = []
    for axis in (x, y):
        frame[axis], was_binned = _levels(frame[axis])
        if was_binned:
            binned.append(axis)
    grouped = frame.groupby([y, x], observed=False, sort=True)[metric]
    values = grouped.agg(agg).unstack(x)
    std = grouped.std(ddof=1).unstack(x)
    count = grouped.count().unstack(x).fillna(0).astype(int)
    values = _sorted_axes(values)
    return HeatmapInfo(
        values=values,
        std=std.reindex_like(values),
        counts=count.reindex_like(values).fillna(0).astype(int),
        used=len(frame),
        excluded=excluded,
        binned=tuple(binned),
        metric=metric,
        agg=agg,
    )


def heatmap_frame(
    results: pd.DataFrame, x: str, y: str, metric: str, agg: str = "mean", **options: Any
) -> pd.DataFrame:
    """The heatmap's cell values: rows are `y` values, columns `x` values (see heatmap_info)."""
    return heatmap_info(results, x, y, metric, agg, **options).values


def usable_trials(
    results: pd.DataFrame, metric: str, full_budget_only: bool = False
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Trials that may share a heatmap, and counts of those left out by reason."""
    frame = results.copy()
    excluded: dict[str, int] = {}
    if "status" in frame:
        bad = frame["status"] != USABLE_STATUS
        for status, n in frame.loc[bad, "status"].value_counts().items():
            excluded[str(status).lower()] = int(n)
        frame = frame[~bad]
    values = pd.to_numeric(frame[metric], errors="coerce")
    nonfinite = ~np.isfinite(values.to_numpy(dtype=float))
    if nonfinite.any():
        excluded["non-finite"] = int(nonfinite.sum())
        frame = frame[~nonfinite]
    frame = frame.assign(**{metric: pd.to_numeric(frame[metric])})
    if "epochs" in frame and frame["epochs"].nunique() > 1:
        budgets = frame["epochs"].value_counts().sort_index()
        if not full_budget_only:
            counts = ", ".join(f"{n} trial(s) with {e} epochs" for e, n in budgets.items())
            raise ReportError(
                f"trials have unequal budgets ({counts}); they cannot share a heatmap. "
                "Ask for the full-budget trials only (--full-budget)"
            )
        full = frame["epochs"].max()
        excluded["short budget"] = int((frame["epochs"] != full).sum())
        frame = frame[frame["epochs"] == full]
    return frame, excluded


def _levels(column: pd.Series) -> tuple[pd.Series, bool]:
    numeric = pd.to_numeric(column, errors="coerce")
    if numeric.notna().all() and numeric.nunique() > MAX_LEVELS:
        bins = pd.qcut(numeric, q=QUANTILE_BINS, duplicates="drop")
        return bins, True
    return (numeric if numeric.notna().all() else column.astype(str)), False


def _sorted_axes(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_index(axis=0).sort_index(axis=1)


def _check_columns(results: pd.DataFrame, names: Sequence[str]) -> None:
    missing = [name for name in names if name not in results.columns]
    if missing:
        raise ReportError(
            f"unknown column(s) {', '.join(missing)}; "
            f"available: {', '.join(map(str, results.columns))}"
        )


def _describe(excluded: dict[str, int]) -> str:
    return ", ".join(f"{n} {why}" for why, n in excluded.items()) or "none"


def plot_heatmap(info: HeatmapInfo, ax: Any, direction: str = "min") -> Any:
    """Draw `info` on the matplotlib axes `ax`; better cells are always the bright end."""
    import seaborn as sns

    cmap = "viridis_r" if direction == "min" else "viridis"
    labels = _annotations(info)
    sns.heatmap(
        info.values,
        ax=ax,
        cmap=cmap,
        annot=labels,
        fmt="",
        cbar_kws={"label": f"{info.metric} ({info.agg})"},
        linewidths=0.5,
        linecolor="white",
    )
    best = _best_cell(info.values, direction)
    if best is not None:
        from matplotlib.patches import Rectangle

        ax.add_patch(Rectangle((best[1], best[0]), 1, 1, fill=False, edgecolor="red", lw=2.5))
    excluded = f", excluded: {_describe(info.excluded)}" if info.excluded else ""
    ax.set_title(f"{info.metric} by {info.values.columns.name} x {info.values.index.name}")
    ax.set_xlabel(f"{info.values.columns.name}\n{info.used} trials used{excluded}")
    ax.invert_yaxis()  # small values at the bottom, as on a plot's y axis
    return ax


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


def _best_cell(values: pd.DataFrame, direction: str) -> tuple[int, int] | None:
    array = values.to_numpy(dtype=float)
    if np.isnan(array).all():
        return None
    flat = np.nanargmin(array) if direction == "min" else np.nanargmax(array)
    row, col = np.unravel_index(flat, array.shape)
    return int(row), int(col)


def write_heatmap(info: HeatmapInfo, path: Path, direction: str) -> Path:
    """Render `info` to a PNG file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = max(6.0, 1.1 * info.values.shape[1] + 2.5)
    height = max(4.5, 0.8 * info.values.shape[0] + 2.0)
    fig, ax = plt.subplots(figsize=(width, height))
    try:
        plot_heatmap(info, ax, direction)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path


def heatmap_path(folder: Path, x: str, y: str) -> Path:
    """reports/<study>/heatmap_<x>__<y>.png"""
    return folder / f"heatmap_{x}__{y}.png"
