"""The pure data layer of a heatmap: which trials may be drawn, and their pivot.

Nothing here draws; `plot.py` renders a `HeatmapInfo`, and tests assert it as exact frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from hypertune.config import AGGREGATES
from hypertune.errors import ReportError
from hypertune.metrics import METRIC_BOUNDS, RESULT_COLUMNS
from hypertune.study.record import TrialStatus
from hypertune.study.store import LEADING, TRAILING

MAX_LEVELS = 8  # more distinct numeric values than this on an axis are binned
QUANTILE_BINS = 5
ALL_TRIALS = "all trials"  # the single row of a one-parameter heatmap
# Consecutive ratios of log-spaced levels may differ by this much (rounding: 8, 16, 32, 64).
LOG_RATIO_TOLERANCE = 0.05


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
    log_axes: tuple[str, ...] = ()  # axes whose levels are log-spaced (geometric)


def heatmap_info(
    results: pd.DataFrame,
    x: str,
    y: str | None,
    metric: str,
    agg: str = "mean",
    full_budget_only: bool = False,
) -> HeatmapInfo:
    """Pivot `metric` over `x` (columns) and `y` (rows) by the README's heatmap rules.

    Only finished trials with a finite metric are used; the others are counted in `excluded`.
    Trials with unequal training budgets (the `epochs` column) are refused, or, with
    `full_budget_only`, only those with the largest budget are kept. Several trials in one cell
    are combined with `agg`; a combination no trial ran is NaN. Numeric axes are sorted
    ascending, categories alphabetically; an axis with more than MAX_LEVELS numeric values is
    cut into QUANTILE_BINS quantile bins. With `y=None` the heatmap has one row (`ALL_TRIALS`),
    for a study that searched a single parameter.

    Raises:
        ReportError: unknown column, unknown aggregate, mixed budgets, or no usable trial.
    """
    _check_columns(results, [x, metric] if y is None else [x, y, metric])
    if x == y:
        raise ReportError(f"--x and --y are both '{x}'; pick two different parameters")
    if agg not in AGGREGATES:
        raise ReportError(f"--agg: '{agg}' is unknown; choose one of {', '.join(AGGREGATES)}")
    frame, excluded = usable_trials(results, metric, full_budget_only, [x] if y is None else [x, y])
    if y is None:
        y = ALL_TRIALS
        frame = frame.assign(**{y: ALL_TRIALS})
    binned, log_axes = [], []
    for axis in (x, y):
        if is_log_spaced(frame[axis]):
            log_axes.append(axis)
        frame[axis], was_binned = _levels(frame[axis])
        if was_binned:
            binned.append(axis)
    grouped = frame.groupby([y, x], observed=False, sort=True)[metric]
    values = _sorted_axes(grouped.agg(agg).unstack(x))
    std = grouped.std(ddof=1).unstack(x)
    count = grouped.count().unstack(x).fillna(0).astype(int)
    return HeatmapInfo(
        values=values,
        std=std.reindex_like(values),
        counts=count.reindex_like(values).fillna(0).astype(int),
        used=len(frame),
        excluded=excluded,
        binned=tuple(binned),
        metric=metric,
        agg=agg,
        log_axes=tuple(log_axes),
    )


def heatmap_frame(
    results: pd.DataFrame, x: str, y: str, metric: str, agg: str = "mean", **options: Any
) -> pd.DataFrame:
    """The heatmap's cell values: rows are `y` values, columns `x` values (see heatmap_info)."""
    return heatmap_info(results, x, y, metric, agg, **options).values


def usable_trials(
    results: pd.DataFrame,
    metric: str,
    full_budget_only: bool = False,
    params: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Trials that may share a heatmap, and counts of those left out by reason; with
    `params`, only those columns, the metric and the bookkeeping are kept (a large table is
    not copied whole for every pair).

    Raises:
        ReportError: unequal budgets (without `full_budget_only`), or no trial left.
    """
    if params is not None:
        keep = [*params, metric, *(c for c in ("status", "epochs") if c in results.columns)]
        frame = results[list(dict.fromkeys(keep))]
    else:
        frame = results.copy()
    excluded: dict[str, int] = {}
    if "status" in frame:
        bad = frame["status"] != TrialStatus.FINISHED
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
    if frame.empty:
        raise ReportError(f"no usable trials for {metric} (excluded: {describe(excluded)})")
    return frame, excluded


def searched_params(results: pd.DataFrame) -> list[str]:
    """Parameter columns of a results table: everything that is not bookkeeping or a metric."""
    fixed = set(LEADING) | set(TRAILING) | RESULT_COLUMNS
    return [str(c) for c in results.columns if c not in fixed]


def is_log_spaced(column: pd.Series) -> bool:
    """True when an axis's values are positive and log-spaced.

    A few levels (MAX_LEVELS or fewer) are log-spaced when there are 3 or more with a constant
    ratio above 1.2 (8, 16, 32, 64). Many values (which get binned) count as log-spaced when they
    span two decades or more, since such a range was almost certainly sampled log-uniformly.
    """
    numeric = pd.to_numeric(column, errors="coerce")
    if numeric.isna().any() or not len(numeric):
        return False
    levels = np.unique(numeric.to_numpy(dtype=float))
    if levels[0] <= 0:
        return False
    if len(levels) > MAX_LEVELS:
        return bool(levels[-1] / levels[0] >= 100)
    if len(levels) < 3:
        return False
    logs = np.log(levels[1:] / levels[:-1])
    return bool(logs.min() > np.log(1.2) and np.ptp(logs) <= 2 * LOG_RATIO_TOLERANCE * logs.mean())


def level_series(column: pd.Series) -> pd.Series:
    """A parameter's values as a heatmap's axis groups them (quantile bins where many)."""
    return _levels(column)[0]


def check_columns(results: pd.DataFrame, names: Sequence[str]) -> None:
    """Raise a ReportError naming the known parameters and metrics if a column is unknown."""
    _check_columns(results, names)


def _levels(column: pd.Series) -> tuple[pd.Series, bool]:
    numeric = pd.to_numeric(column, errors="coerce")
    if numeric.notna().all() and numeric.nunique() > MAX_LEVELS:
        bins, edges = pd.qcut(numeric, q=QUANTILE_BINS, duplicates="drop", retbins=True)
        # qcut moves the first edge below the data (even below zero); label it by the minimum.
        lefts = [float(numeric.min()), *map(float, edges[1:-1])]
        rights = [float(edge) for edge in edges[1:]]
        labels = pd.IntervalIndex.from_arrays(lefts, rights, closed="right")
        return bins.cat.rename_categories(labels), True
    return (numeric if numeric.notna().all() else column.astype(str)), False


def _sorted_axes(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_index(axis=0).sort_index(axis=1)


def _check_columns(results: pd.DataFrame, names: Sequence[str]) -> None:
    missing = [name for name in names if name not in results.columns]
    if missing:
        params = searched_params(results)
        metrics = [c for c in results.columns if c not in params and c not in LEADING + TRAILING]
        raise ReportError(
            f"unknown column(s) {', '.join(missing)}; available: "
            f"parameters {', '.join(params) or 'none'}; metrics {', '.join(metrics) or 'none'}"
        )


# A cell is an outlier of the colour scale beyond this many interquartile ranges past the
# quartile on the worse side (Tukey's outer fence), judged only where there are enough cells.
OUTLIER_IQR = 3.0
MIN_CELLS_FOR_OUTLIERS = 8


@dataclass(frozen=True)
class ColourScale:
    """A page's one colour scale: from `low` to `high`. Where a few cells lie far beyond the
    rest on the worse side (a failed configuration), the scale ends at the worst of the
    others, so that the differences among the good cells stay visible; `clipped` cells lie
    beyond it (drawn at its end, hatched) and `edge` is where it was cut."""

    low: float
    high: float
    clipped: int = 0
    edge: float | None = None

    @property
    def limits(self) -> tuple[float, float]:
        return self.low, self.high

    def note(self, direction: str) -> str:
        """The caption's words for a cut scale ('' where nothing was cut)."""
        if not self.clipped or self.edge is None:
            return ""
        side = "below" if direction == "max" else "above"
        cells = "cell lies" if self.clipped == 1 else "cells lie"
        return (
            f"colour scale cut at {self.edge:.4g}: {self.clipped} {cells} {side} it, beyond "
            f"{OUTLIER_IQR:g} IQR of the other cells (hatched, drawn at the scale's end)"
        )


def colour_scale(values: Sequence[float], direction: str) -> ColourScale:
    """The colour scale over cell `values` (NaN: empty cells), cut past outliers on the worse
    side (lower where `direction` is max, higher where min)."""
    cells = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if not len(cells):
        return ColourScale(0.0, 1.0)
    low, high = float(cells.min()), float(cells.max())
    if high <= low:
        return ColourScale(low - 0.5, high + 0.5)
    if len(cells) < MIN_CELLS_FOR_OUTLIERS:
        return ColourScale(low, high)
    q1, q3 = np.quantile(cells, [0.25, 0.75])
    spread = OUTLIER_IQR * (q3 - q1)
    if direction == "max":
        inside = cells[cells >= q1 - spread]
        edge = float(inside.min())
        clipped = int((cells < edge).sum())
        scale = ColourScale(edge, high, clipped, edge)
    else:
        inside = cells[cells <= q3 + spread]
        edge = float(inside.max())
        clipped = int((cells > edge).sum())
        scale = ColourScale(low, edge, clipped, edge)
    if not clipped or scale.high <= scale.low:
        return ColourScale(low, high)
    return scale


def describe(excluded: dict[str, int]) -> str:
    """'2 error, 1 non-finite' (or 'none')."""
    return ", ".join(f"{n} {why}" for why, n in excluded.items()) or "none"


def metric_bounds(metric: str) -> tuple[float, float]:
    """The range a metric can take (:data:`hypertune.config.METRIC_BOUNDS`: accuracy in
    [0, 1]; losses, seconds and epochs >= 0); any other loss >= 0, the rest unbounded."""
    base = metric.removesuffix("_best")
    if base in METRIC_BOUNDS:
        return METRIC_BOUNDS[base]
    if base.endswith("loss"):
        return 0.0, float("inf")
    return float("-inf"), float("inf")


def main_effect(
    results: pd.DataFrame, param: str, metric: str, full_budget_only: bool = False
) -> pd.DataFrame:
    """The mean of `metric` at each level of `param` (the other parameters pooled), with a 95%
    t interval of the mean clipped to the metric's range (NaN where a level has one trial).

    Returns:
        One row per level (binned like a heatmap axis), columns mean, low, high, n.
    """
    from scipy import stats

    _check_columns(results, [param, metric])
    frame, _ = usable_trials(results, metric, full_budget_only, [param])
    levels = _levels(frame[param])[0]
    grouped = frame[metric].groupby(levels, observed=True, sort=True)
    table = pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=1), "n": grouped.size()})
    dof = (table["n"] - 1).where(table["n"] > 1)
    half = stats.t.ppf(0.975, dof) * table["std"] / np.sqrt(table["n"])
    lowest, highest = metric_bounds(metric)
    table["low"] = (table["mean"] - half).clip(lower=lowest)
    table["high"] = (table["mean"] + half).clip(upper=highest)
    table.index.name = param
    return table[["mean", "low", "high", "n"]]
