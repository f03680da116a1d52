"""Drawing the model estimate (:mod:`hypertune.report.estimate`): on the page beside the
tested model, and in estimate_<x>__<y>.png with its interval's width beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hypertune.report.estimate import Estimate
from hypertune.report.plot import colour_map, pyplot, scale_axes
from hypertune.report.surface import Axis

LABEL = "model estimate, not measured"


def plot_estimate(
    estimate: Estimate,
    ax: Any,
    direction: str,
    *,
    limits: tuple[float, float] | None = None,
    fontsize: float = 9.0,
    contours: bool = True,
) -> Any:
    """The estimated surface in the heatmaps' colours, the trials as dots in the colour of
    what they measured, and (`contours`) white lines where its 95% interval is ± the value
    they carry. Returns the colour mesh."""
    vmin, vmax = limits if limits is not None else (None, None)
    mesh = ax.pcolormesh(estimate.x.grid, estimate.y.grid, estimate.mean, shading="nearest",
                         cmap=colour_map(direction), vmin=vmin, vmax=vmax)  # fmt: skip
    if contours and np.ptp(estimate.half) > 0:
        lines = ax.contour(estimate.x.grid, estimate.y.grid, estimate.half, levels=3,
                           colors="white", linewidths=0.6)  # fmt: skip
        ax.clabel(lines, fontsize=fontsize * 0.75, fmt=lambda v: f"±{v:.2g}")
    ax.scatter(estimate.x.trials, estimate.y.trials, s=fontsize * 2.5, c=estimate.measured,
               cmap=mesh.cmap, norm=mesh.norm, edgecolors="white", linewidths=0.6,
               zorder=3)  # fmt: skip
    scale_axes(ax, estimate.x, estimate.y, _label, fontsize)
    return mesh


def _label(scale: Axis) -> str:
    return scale.name + (" (log scale)" if scale.log else "")


def estimate_path(folder: Path, x: str, y: str) -> Path:
    return folder / f"estimate_{x}__{y}.png"


def write_estimate(
    estimate: Estimate, path: Path, direction: str, limits: tuple[float, float] | None = None
) -> Path:
    """The estimate and, beside it, the width of its 95% interval, to a PNG."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 4.4), layout="constrained")
    try:
        mesh = plot_estimate(estimate, left, direction, limits=limits)
        better = "higher" if direction == "max" else "lower"
        fig.colorbar(mesh, ax=left, label=f"{estimate.metric} ({better} is better)")
        heading = f"{estimate.metric}: {LABEL}\n(lines: ± of the model's 95% interval)"
        left.set_title(heading, fontsize=10)
        width = right.pcolormesh(estimate.x.grid, estimate.y.grid, 2 * estimate.half,
                                 shading="nearest", cmap="Greys")  # fmt: skip
        right.scatter(estimate.x.trials, estimate.y.trials, s=11, c="white", edgecolors="black",
                      linewidths=0.4)  # fmt: skip
        fig.colorbar(width, ax=right, label="width of the model's 95% interval")
        scale_axes(right, estimate.x, estimate.y, _label, 9.0)
        right.set_title("how sure the estimate is: dark where the trials say little", fontsize=10)
        dots = f"{estimate.trials} trials (dots, each in the colour of what it measured)"
        fig.suptitle(f"{estimate.method}, from {dots}", fontsize=10)
        fig.savefig(path, dpi=110, format="png")
    finally:
        plt.close(fig)
    return path
