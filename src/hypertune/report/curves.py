"""Learning curves of the lead pair (curves.png) and what each of its cells cost to converge.

One panel per level of the pair's x, its y levels as colours; a line is the mean, epoch by
epoch, of the cell's trials (its seeds, and the trials of every other parameter's values that
fell in the cell, as in its heatmap), the band their range (min to max) where the cell has more
than one. The trials are those the heatmap draws; their epochs come from curves.csv
(:mod:`hypertune.study.curves`), the per-cell costs from results.csv. What the curves show is
described, not tested against noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from hypertune.metrics import METRICS
from hypertune.report.frame import ALL_TRIALS, level_series, usable_trials

CURVES_PNG = "curves.png"
# What the convergence table gives per cell (means over its trials), where results.csv has it.
CELL_COSTS = ("parameters", "epochs_to_within_5pct", "seconds_per_epoch")
PANELS_PER_ROW = 4


@dataclass(frozen=True)
class CellCurves:
    """The lead pair's curves: per cell and epoch, the mean and range of its trials' metric."""

    metric: str  # the per-epoch metric drawn (accuracy, valid_loss or train_loss)
    direction: str  # which way it is better: "max" or "min"
    x: str
    y: str | None  # None: a study of one parameter (its levels are the colours, one panel)
    curves: pd.DataFrame  # x, y (levels), epoch, mean, low, high, trials
    costs: pd.DataFrame  # x, y (levels), trials, the final metric and CELL_COSTS (means)

    def levels(self, axis: str) -> list[Any]:
        """The levels of `axis` ("x" or "y"), in the heatmap's order."""
        column = self.curves[axis]
        if isinstance(column.dtype, pd.CategoricalDtype):  # quantile bins
            return list(column.cat.categories)
        return sorted(column.unique())


def curve_metric(metric: str, objective: str) -> str | None:
    """The per-epoch metric whose curves answer a report on `metric`: the metric itself (its
    running best stripped: a curve of bests hides the epochs that got worse); for a cost
    column (parameters, seconds), the study's `objective` metric."""
    for name in (metric.removesuffix("_best"), objective):
        if name in METRICS:
            return name
    return None


def cell_curves(
    results: pd.DataFrame,
    curves: pd.DataFrame,
    lead: tuple[str, str | None],
    metric: str,
    objective: str,
    full_budget_only: bool = False,
) -> CellCurves | None:
    """The curves of the lead pair's cells, over the trials its heatmap draws for `metric`
    (None where the study kept no curves, or none of those trials has one)."""
    name = curve_metric(metric, objective)
    if name is None or curves.empty or "trial_id" not in results.columns:
        return None
    x, y = lead
    frame, _ = usable_trials(results, metric, full_budget_only)
    cells = pd.DataFrame(
        {
            "trial_id": frame["trial_id"].astype(str),
            "x": level_series(frame[x]),
            "y": level_series(frame[y]) if y else ALL_TRIALS,
        }
    )
    epochs = curves[["trial_id", "epoch", name]].merge(cells, on="trial_id")
    epochs = epochs[epochs[name].notna()]
    if epochs.empty:
        return None
    by_epoch = epochs.groupby(["x", "y", "epoch"], observed=True, sort=True)[name]
    table = by_epoch.agg(mean="mean", low="min", high="max", trials="count").reset_index()
    costs = cells.join(
        frame[[c for c in (metric, *CELL_COSTS) if c in frame.columns]].apply(
            pd.to_numeric, errors="coerce"
        )
    )
    grouped = costs.groupby(["x", "y"], observed=True, sort=True)
    summary = grouped.mean(numeric_only=True)
    summary.insert(0, "trials", grouped.size())
    direction = METRICS[name]
    return CellCurves(name, direction, x, y, table, summary.reset_index())


def level_text(value: Any) -> str:
    """A level as a panel title or legend entry names it (a bin as its interval)."""
    from hypertune.report.page import value_text

    if isinstance(value, pd.Interval):
        return f"{value_text(value.left)}–{value_text(value.right)}"
    return value_text(value)


def write_cell_curves(view: CellCurves, path: Path) -> Path:
    """Draw the curves, one panel per x level (y levels as colours; one panel of x levels for a
    study of one parameter), the panels sharing their metric axis, to a PNG."""
    import seaborn as sns

    from hypertune.report.plot import pyplot

    plt = pyplot()
    one = view.y is None
    panels = [None] if one else view.levels("x")
    colours = view.levels("x" if one else "y")
    palette = sns.color_palette("viridis", len(colours))
    columns = min(len(panels), PANELS_PER_ROW)
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(1.2 + 2.8 * columns, 0.6 + 2.4 * rows),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    try:
        for ax, panel in zip(axes.flat, panels, strict=False):
            shown = view.curves if one else view.curves[view.curves["x"] == panel]
            for level, colour in zip(colours, palette, strict=True):
                cell = shown[shown["x" if one else "y"] == level]
                if cell.empty:
                    continue
                ax.plot(cell["epoch"], cell["mean"], color=colour, linewidth=1.4,
                        label=level_text(level))  # fmt: skip
                if (cell["trials"] > 1).any():
                    ax.fill_between(cell["epoch"], cell["low"], cell["high"], color=colour,
                                    alpha=0.2, linewidth=0)  # fmt: skip
            ax.set_title(view.x if one else f"{view.x} = {level_text(panel)}", fontsize=9)
            ax.set_xlabel("epoch", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
        for ax in axes.flat[len(panels) :]:
            ax.set_visible(False)
        better = "higher" if view.direction == "max" else "lower"
        for ax in axes[:, 0]:
            ax.set_ylabel(f"{view.metric} ({better} is better)", fontsize=8)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, title=view.x if one else view.y, fontsize=7,
                   title_fontsize=8, loc="outside right upper")  # fmt: skip
        fig.suptitle(
            f"{view.metric} epoch by epoch: each cell's mean over its trials, band min–max",
            fontsize=10,
        )
        fig.savefig(path, dpi=110, format="png")
    finally:
        plt.close(fig)
    return path
