"""Which pairs of hyperparameters interact? A two-way decomposition of each pair's cell means.

For a pair (x, y) the metric is pivoted into cell means m[i, j] (one cell per level of y and x,
continuous values in quantile bins, exactly as the heatmap draws it). The additive model
m[i, j] ~ mu + a[i] + b[j] is fitted to the observed cells by least squares; what it cannot
explain, the residual r[i, j], is the interaction. With SS_total the sum of squares of the cell
means about their mean:

    interaction share = sum r^2 / SS_total
    main-effect share of x = sum over cells of b[j]^2 / SS_total   (effects centred on zero)

On a complete grid these three shares add up to 1 (the classical two-way ANOVA without
replication); on an incomplete grid they are approximate. Noise is stated beside them: when
cells hold several trials (seeds, repeats), `noise` is the share the interaction would have
from trial-to-trial spread alone, (I - 1)(J - 1) * s^2 / n / SS_total with s^2 the pooled
within-cell variance and n the mean trials per cell. An interaction share not well above `noise`
is not evidence of interaction. A pair's cells pool the trials of every other parameter's
levels, so with three or more parameters their spread includes those parameters' effects, and
`noise` is then an upper estimate.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from hypertune.errors import ReportError
from hypertune.report.frame import heatmap_info, searched_params

COLUMNS = ["x", "y", "interaction", "main_x", "main_y", "noise", "cells"]


def interaction_scores(
    results: pd.DataFrame,
    metric: str,
    params: Sequence[str] | None = None,
    full_budget_only: bool = False,
) -> pd.DataFrame:
    """Rank every pair of searched parameters by the share of interaction in its cell means.

    Args:
        results: a results table (one row per trial), as in results.csv.
        metric: the column to decompose.
        params: the searched parameters; default: every column that is not bookkeeping or a
            metric.
        full_budget_only: keep only the full-budget trials instead of refusing mixed budgets.

    Returns:
        One row per pair, strongest interaction first, with columns x, y, interaction (share of
        the cell means' variance that is interaction), main_x, main_y (main-effect shares),
        noise (interaction share expected from noise alone; NaN without repeats) and cells
        (observed cells). Shares are NaN where the cell means do not vary at all.

    Raises:
        ReportError: fewer than two parameters, an unknown column, or no usable trial.
    """
    names = list(params) if params is not None else searched_params(results)
    if len(names) < 2:
        raise ReportError(
            f"interaction needs two searched parameters; got {len(names)} ({', '.join(names)})"
        )
    rows = []
    for x, y in itertools.combinations(names, 2):
        info = heatmap_info(results, x, y, metric, "mean", full_budget_only)
        shares = decompose(
            info.values.to_numpy(dtype=float),
            info.std.to_numpy(dtype=float),
            info.counts.to_numpy(dtype=int),
        )
        rows.append({"x": x, "y": y, **shares})
    table = pd.DataFrame(rows, columns=COLUMNS)
    table = table.sort_values("interaction", ascending=False, na_position="last", kind="stable")
    return table.reset_index(drop=True)


def decompose(means: np.ndarray, std: np.ndarray, counts: np.ndarray) -> dict[str, float]:
    """Shares of the cell means' variance: interaction, main_x (columns), main_y (rows), noise.

    `means` has rows for y levels and columns for x levels, NaN where no trial ran.
    """
    observed = ~np.isnan(means)
    rows, cols = np.nonzero(observed)
    values = means[observed]
    result = {"interaction": np.nan, "main_x": np.nan, "main_y": np.nan, "noise": np.nan}
    result["cells"] = float(len(values))
    total = float(np.sum((values - values.mean()) ** 2)) if len(values) else 0.0
    if total <= 0.0 or not np.isfinite(total):
        return result
    # Additive model by least squares: intercept, row dummies and column dummies.
    n_rows, n_cols = means.shape
    design = np.zeros((len(values), 1 + n_rows + n_cols))
    design[:, 0] = 1.0
    design[np.arange(len(values)), 1 + rows] = 1.0
    design[np.arange(len(values)), 1 + n_rows + cols] = 1.0
    coef, *_ = np.linalg.lstsq(design, values, rcond=None)
    fitted = design @ coef
    row_effect = coef[1 + rows]
    col_effect = coef[1 + n_rows + cols]
    # Centre the effects over the observed cells so the intercept carries the mean.
    row_effect = row_effect - row_effect.mean()
    col_effect = col_effect - col_effect.mean()
    result["interaction"] = float(np.sum((values - fitted) ** 2)) / total
    result["main_x"] = float(np.sum(col_effect**2)) / total
    result["main_y"] = float(np.sum(row_effect**2)) / total
    result["noise"] = _noise_share(std, counts, observed, total)
    return result


def _noise_share(std: np.ndarray, counts: np.ndarray, observed: np.ndarray, total: float) -> float:
    repeated = observed & (counts > 1) & ~np.isnan(std)
    if not repeated.any():
        return float("nan")
    dof = counts[repeated] - 1
    pooled = float(np.sum(dof * std[repeated] ** 2) / np.sum(dof))
    levels_y = int(np.sum(observed.any(axis=1)))
    levels_x = int(np.sum(observed.any(axis=0)))
    mean_n = float(np.mean(counts[observed]))
    return (levels_y - 1) * (levels_x - 1) * pooled / mean_n / total
