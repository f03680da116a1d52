"""The trade-off view: the report's metric against what each trial cost (its model's weights,
its training seconds), every finished trial a point, the Pareto front marked (tradeoff.png).

A trial is on the front when no other trial cost as little or less and did better: past the
front, paying more bought nothing. The front says what the trials show, not what more trials
would: it names trials, it does not test them against noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hypertune.study.record import TrialStatus

TRADEOFF_FILE = "tradeoff.png"
# The costs drawn, each against the metric: the column and how the view names it.
COSTS = {"parameters": "parameters (the model's weights)", "seconds": "training seconds"}


@dataclass(frozen=True)
class Tradeoff:
    """One cost against the metric: the trials' points and which of them form the front."""

    cost: str
    metric: str
    direction: str
    points: pd.DataFrame  # trial_id, the searched parameters, cost, metric, front (bool)
    params: tuple[str, ...] = ()

    @property
    def front(self) -> pd.DataFrame:
        return self.points[self.points["front"]]


def pareto_front(costs: np.ndarray, values: np.ndarray, direction: str) -> np.ndarray:
    """Which points no other point beats on both (`direction`: which way `values` are better):
    a point is on the front unless another costs no more and does strictly better, or costs
    strictly less and does as well."""
    better = values if direction == "max" else -values
    front = np.ones(len(costs), dtype=bool)
    for k in range(len(costs)):
        cheaper_or_same = costs <= costs[k]
        dominated = cheaper_or_same & (better > better[k])
        dominated |= (costs < costs[k]) & (better >= better[k])
        front[k] = not dominated.any()
    return front


def tradeoffs(
    results: pd.DataFrame, metric: str, direction: str, params: tuple[str, ...] = ()
) -> list[Tradeoff]:
    """The metric against each cost the results hold, over the finished trials with finite
    values of both (none where a study's rows have no cost columns, or fewer than 2 trials);
    each point keeps its trial's searched `params`."""
    finished = results[results["status"] == TrialStatus.FINISHED]
    views = []
    for cost in COSTS:
        if cost == metric or cost not in finished.columns or metric not in finished.columns:
            continue
        table = pd.DataFrame(
            {
                "trial_id": finished["trial_id"].astype(str),
                **{name: finished[name] for name in params if name in finished.columns},
                "cost": pd.to_numeric(finished[cost], errors="coerce"),
                "metric": pd.to_numeric(finished[metric], errors="coerce"),
            }
        )
        table = table[np.isfinite(table["cost"]) & np.isfinite(table["metric"])]
        if len(table) < 2:
            continue
        table = table.sort_values(["cost", "trial_id"], kind="stable").reset_index(drop=True)
        table["front"] = pareto_front(
            table["cost"].to_numpy(float), table["metric"].to_numpy(float), direction
        )
        views.append(Tradeoff(cost, metric, direction, table, tuple(params)))
    return views


def write_tradeoffs(views: list[Tradeoff], path: Path) -> Path:
    """Draw each view side by side (a cost axis spanning a decade or more on a log scale), the
    front as a step line, to a PNG."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    from hypertune.report.plot import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(
        1, len(views), figsize=(4.2 * len(views), 3.6), layout="constrained", squeeze=False
    )
    try:
        for ax, view in zip(axes[0], views, strict=True):
            points, front = view.points, view.front
            ax.scatter(points["cost"], points["metric"], s=18, color="0.55", label="trial")
            ax.step(front["cost"], front["metric"], where="post", color="red", linewidth=1.2)
            ax.scatter(front["cost"], front["metric"], s=26, color="red", label="Pareto front")
            low, high = float(points["cost"].min()), float(points["cost"].max())
            if low > 0 and high / low >= 10:  # a decade or more: log-spaced, major ticks named
                ax.set_xscale("log")
                ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel(COSTS[view.cost], fontsize=9)
            better = "higher" if view.direction == "max" else "lower"
            ax.set_ylabel(f"{view.metric} ({better} is better)", fontsize=9)
            ax.tick_params(labelsize=8)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="best")
        fig.suptitle(f"{views[0].metric} against what each trial cost", fontsize=10)
        fig.savefig(path, dpi=110, format="png")
    finally:
        plt.close(fig)
    return path
