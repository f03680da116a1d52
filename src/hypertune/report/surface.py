"""The fitted surface a pair's verdict was tested on, where the heatmap cannot show it.

A parameter with more than MAX_LEVELS values is drawn in quantile bins but fitted as a
quadratic of its value (`interaction.py`). For such a pair the report draws the model itself
beside the bins: the pair's fitted metric over its two parameters, the other parameters
averaged over the trials (partial dependence, exact for a model linear in their columns), with
the trials as dots. Nothing here draws; `plot.plot_surface` does.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from hypertune.report.anova import TUKEY, two_way_terms
from hypertune.report.frame import is_log_spaced, level_series
from hypertune.report.interaction import MIN_ERROR_DF, model_name, pair_model, study_design

POINTS = 41  # grid points along a continuous axis


class Axis(NamedTuple):
    name: str
    grid: np.ndarray  # where the surface is evaluated: values (log10 where log) or level codes
    trials: np.ndarray  # each trial's place on the same scale
    levels: tuple[str, ...]  # a factor's level names; () on a continuous axis
    log: bool


class Surface(NamedTuple):
    x: Axis
    y: Axis
    values: np.ndarray  # fitted metric, rows along y.grid, columns along x.grid
    method: str  # the model, as the method column names it


def fitted_surface(
    results: pd.DataFrame,
    metric: str,
    params: Sequence[str],
    x: str,
    y: str,
    full_budget_only: bool = False,
) -> Surface | None:
    """The surface of the model that tested (x, y), or None where the heatmap shows what was
    tested (neither is fitted as a quadratic) or no surface exists (too few trials, Tukey's
    one-degree-of-freedom term)."""
    names = list(params)
    frame, design = study_design(results, metric, names, full_budget_only)
    if x not in design.numbers and y not in design.numbers:
        return None
    full = two_way_terms(names)
    chosen = pair_model(design, names, x, y, full if design.fit(full).df_resid >= MIN_ERROR_DF
                        else None)  # fmt: skip
    if chosen is None or chosen[2][0] == TUKEY:
        return None
    method, terms, _ = chosen

    def axis(name: str) -> Axis:
        log = bool(is_log_spaced(frame[name]))
        if name in design.numbers:
            values = design.numbers[name]
            grid = np.linspace(values.min(), values.max(), POINTS)
            return Axis(name, grid, values, (), log)
        levels = pd.Categorical(level_series(frame[name]))
        codes = np.asarray(levels.codes, dtype=float)
        names = tuple(str(c) for c in levels.categories)
        return Axis(name, np.arange(len(names), dtype=float), codes, names, log)

    ax, ay = axis(x), axis(y)
    values = design.surface(terms, x, y, ax.grid, ay.grid)
    return Surface(ax, ay, values, model_name(method, design))


def surfaces(
    results: pd.DataFrame,
    metric: str,
    params: Sequence[str],
    full_budget_only: bool = False,
) -> dict[tuple[str, str], Surface]:
    """Every pair's fitted surface where it has one (see `fitted_surface`), keyed both ways."""
    found: dict[tuple[str, str], Surface] = {}
    for x, y in itertools.combinations(params, 2):
        surface = fitted_surface(results, metric, params, x, y, full_budget_only)
        if surface is not None:
            found[(x, y)] = surface
            found[(y, x)] = Surface(surface.y, surface.x, surface.values.T, surface.method)
    return found
