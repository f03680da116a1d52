"""A model estimate of the lead pair's surface, where a random, Bayesian or TPE study is too
sparse for its binned heatmap (fewer than half of the bins' cells hold a trial, or fewer
trials than cells).

scikit-learn's Gaussian process (a Matérn 5/2 kernel with one length scale per parameter, no
shorter than SHORTEST, plus a noise term of at least NOISE_FLOOR, fitted by maximum likelihood)
is fitted to every usable trial over all searched
parameters (numbers on [0, 1], log-spaced ones as log10; categories one-hot). The surface over
the pair is its partial dependence: at each point of the pair, the prediction averaged over
the trials' values of the other parameters, with a 95% interval for that average of the
noise-free function (the trial-to-trial noise the model found is not part of it). It is an
estimate, drawn as one and never as measured cells; the binned heatmap stays in its PNG.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hypertune.report.frame import HeatmapInfo, is_log_spaced, metric_bounds, usable_trials
from hypertune.report.surface import Axis

MIN_FILL = 0.5  # below this share of filled cells, a sparse study gets the estimate
MIN_TRIALS = 10  # fewer trials than this give no estimate worth drawing ...
PER_FEATURE = 3  # ... nor fewer than this many per fitted feature (a one-hot level counts)
MAX_TRIALS = 500  # more than this is not a sparse study (and would take minutes to fit)
MIN_LEVELS = 3  # an axis needs this many distinct values to be estimated between them
POINTS = 25  # grid points along each axis of the pair
NOISE_FLOOR = 0.03  # the least trial-to-trial noise (as a share of the metric's variance):
# fitted freely, it fell to nothing and the interval missed the truth at a fifth of the points
SHORTEST = 0.3  # the shortest length scale, as a share of a parameter's range: a sparse
# study's few trials cannot tell finer features from noise (shorter ones drew stripes)
Z95 = 1.959963984540054
METHOD = "Gaussian process (Matérn 5/2 + noise), other parameters averaged over the trials"


@dataclass(frozen=True)
class Estimate:
    """The estimated surface: rows along y.grid, columns along x.grid (log10 where log)."""

    x: Axis
    y: Axis
    mean: np.ndarray
    half: np.ndarray  # half-width of each point's 95% interval
    metric: str
    measured: np.ndarray  # each trial's metric, in the order of x.trials and y.trials
    method: str = METHOD

    @property
    def trials(self) -> int:
        return len(self.measured)

    @property
    def low(self) -> np.ndarray:
        """The interval's lower end, never below what the metric can take."""
        return np.maximum(self.mean - self.half, metric_bounds(self.metric)[0])

    @property
    def high(self) -> np.ndarray:
        """The interval's upper end, never above what the metric can take (accuracy 1)."""
        return np.minimum(self.mean + self.half, metric_bounds(self.metric)[1])


def is_sparse(info: HeatmapInfo) -> bool:
    """Whether fewer than MIN_FILL of the heatmap's cells hold a trial, or the study has fewer
    trials than cells (most of them then empty or a single noisy trial, wherever they fell)."""
    counts = info.counts.to_numpy()
    return bool((counts > 0).sum() < MIN_FILL * counts.size or counts.sum() < counts.size)


def gp_estimate(
    results: pd.DataFrame,
    metric: str,
    params: Sequence[str],
    x: str,
    y: str,
    full_budget_only: bool = False,
) -> Estimate | None:
    """The pair's surface as a Gaussian process estimates it (None where `x` or `y` is not a
    number of at least MIN_LEVELS values, the usable trials are fewer than MIN_TRIALS or
    PER_FEATURE per fitted feature or more than MAX_TRIALS, or they all measured the same)."""
    frame, _ = usable_trials(results, metric, full_budget_only)
    if not MIN_TRIALS <= len(frame) <= MAX_TRIALS:
        return None
    columns, scales = _features(frame, list(params))
    if len(frame) < PER_FEATURE * columns.shape[1]:
        return None
    if any(name not in scales or frame[name].nunique() < MIN_LEVELS for name in (x, y)):
        return None  # a category, a flag or two levels: nothing lies between the trials
    target = frame[metric].to_numpy(float)
    centre, spread = float(target.mean()), float(target.std())
    if spread == 0.0:
        return None  # every trial measured the same: nothing to estimate between them
    model = _fit(columns.to_numpy(float), (target - centre) / spread)
    axes = {name: _axis(frame, name, scales[name]) for name in (x, y)}
    at = list(columns.columns)
    ix, iy = at.index(x), at.index(y)
    unit = np.linspace(0.0, 1.0, POINTS)
    mean = np.empty((POINTS, POINTS))
    var = np.empty((POINTS, POINTS))
    rows = columns.to_numpy(float)
    for i, vy in enumerate(unit):
        for j, vx in enumerate(unit):
            block = rows.copy()
            block[:, ix], block[:, iy] = vx, vy
            mean[i, j], var[i, j] = _averaged(model, block)
    return Estimate(
        x=axes[x],
        y=axes[y],
        mean=centre + spread * mean,
        half=Z95 * spread * np.sqrt(np.clip(var, 0.0, None)),
        metric=metric,
        measured=target,
    )


def _features(frame: pd.DataFrame, params: list[str]) -> tuple[pd.DataFrame, dict[str, tuple]]:
    """Each parameter on [0, 1] (numbers; log10 where log-spaced) or one-hot (categories), and
    each number's (low, high, log) to map the grid back to its values."""
    columns: dict[str, np.ndarray] = {}
    scales: dict[str, tuple] = {}
    for name in params:
        values = pd.to_numeric(frame[name], errors="coerce")
        if values.notna().all() and frame[name].dtype != object:
            log = bool(is_log_spaced(frame[name])) and (values > 0).all()
            numbers = np.log10(values.to_numpy(float)) if log else values.to_numpy(float)
            low, high = float(numbers.min()), float(numbers.max())
            width = high - low or 1.0
            columns[name] = (numbers - low) / width
            scales[name] = (low, high, log)
        else:
            for level in sorted(frame[name].astype(str).unique()):
                columns[f"{name}={level}"] = (frame[name].astype(str) == level).to_numpy(float)
    return pd.DataFrame(columns), scales


def _axis(frame: pd.DataFrame, name: str, scale: tuple) -> Axis:
    low, high, log = scale
    values = pd.to_numeric(frame[name]).to_numpy(float)
    trials = np.log10(values) if log else values
    return Axis(name, np.linspace(low, high, POINTS), trials, (), bool(log))


def _fit(features: np.ndarray, target: np.ndarray) -> Any:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    dims = features.shape[1]
    kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(
        length_scale=np.full(dims, 0.5), length_scale_bounds=(SHORTEST, 1e2), nu=2.5
    ) + WhiteKernel(0.1, (NOISE_FLOOR, 1e1))
    model = GaussianProcessRegressor(kernel, n_restarts_optimizer=4, random_state=0)
    with warnings.catch_warnings():  # a length scale at its bound: that parameter is flat
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(features, target)
    return model


def _averaged(model: Any, block: np.ndarray) -> tuple[float, float]:
    """The mean over `block`'s rows of the noise-free prediction, and that mean's variance."""
    from scipy.linalg import cho_solve

    signal = model.kernel_.k1  # the kernel less its noise term
    train = model.X_train_
    cross = signal(block, train)
    mean = float((cross @ model.alpha_).mean())
    total = cross.sum(axis=0)
    solved = cho_solve((model.L_, True), total)
    n = len(block)
    return mean, float((signal(block).sum() - total @ solved) / n**2)
