"""Which pairs of hyperparameters interact, how much, and how sure we can be.

Every searched parameter with at most MAX_LEVELS values is a factor with the levels the
heatmaps draw. One with more distinct numbers (random, Bayesian or TPE search) enters as a
quadratic of its value (on the log scale where log-spaced): the heatmaps draw it in quantile
bins, but a factor of those bins costs four degrees of freedom per parameter and sixteen per
pair, which a random study of a few dozen trials cannot spare (a planted interaction of 60
trials went unseen that way). The method column then names those parameters (``pair ANOVA,
dropout, lr as quadratic``), the heatmap's caption says that the test did not use its bins, and
the report draws the fitted surface beside them (`surface.py`).
The trials are fitted by least squares (statsmodels OLS) with one of these models, the first
whose residual has at least MIN_ERROR_DF degrees of freedom:

1. ``two-way ANOVA``: every main effect and every two-factor interaction. The residual is
   trial-to-trial noise (seeds, repeats) plus the unmodelled higher-order interactions, which
   serve as the error where there are no replicates (a complete grid of three or more
   parameters).
2. ``pair ANOVA``: every main effect and this pair's interaction only (too few trials for all
   pairs at once: incomplete grids, random search over many parameters); the other pairs'
   interactions then count as error, which makes the test conservative.
3. ``Tukey 1-df``: every main effect and Tukey's one-degree-of-freedom non-additivity term
   a(x) * b(y). A two-parameter grid without replicates has no residual left once the full
   interaction is in the model; Tukey's test is the classical test for that design. It sees
   interactions of the product kind (the effect of x grows or shrinks with y) and not others.

A pair whose model has no such residual, or whose interaction the observed cells cannot
estimate (a sparse Bayesian study filling a few cells), gets the verdict ``too few trials`` and
no estimate: an exact fit of a few cells says nothing, it is not an interaction of 0.

The shares are fractions of the variance of the metric over the trials (the total sum of
squares): a term's type II sum of squares less what noise alone would put there (its degrees
of freedom times the mean square error), floored at 0, over the total; so each lies in [0, 1]
and on a complete grid they add up to at most 1. `low` and `high` are a 95% interval for the
interaction share from the noncentral F distribution (the interval of its noncentrality, times
the mean square error, over the total). `p_value` is the interaction's F test, Holm-adjusted
for the pairs tested; a pair ``interacts`` when it is below ALPHA.

Main effects are not ranked here, pair by pair, but once for the study (`importance.py`).

A forest surrogate in the fANOVA style was weighed for random and Bayesian studies and not
taken: forests find interaction in pure noise, so its shares need a permutation null (hundreds
of refits) before they mean anything. Nothing here is random: the same study gives the same
table.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from hypertune.errors import ReportError
from hypertune.report.anova import (
    TUKEY,
    Design,
    Term,
    TermTest,
    noncentrality_interval,
    permutation_p,
    two_way_terms,
    type2,
)
from hypertune.report.frame import (
    MAX_LEVELS,
    check_columns,
    is_log_spaced,
    level_series,
    searched_params,
    usable_trials,
)

# Family-wise error rate over the pairs tested (Holm). Strict, because the page leads with what
# passes it: a pure-noise study is called an interaction in 1 of 100 cases, not 1 in 20.
ALPHA = 0.01
CONFIDENCE = 0.95
MIN_ERROR_DF = 3  # residual degrees of freedom a test needs to mean anything
INTERACTS, NOISE, TOO_FEW = "interacts", "not above noise", "too few trials"
VERDICTS = (INTERACTS, NOISE, TOO_FEW)
# How an adaptive study's p-values were reached (the method column says it).
PERMUTATION, UNTESTED = "permutation p", "not testable by permutation"
# Without repeats a two-parameter grid can only be tested for a product-shaped interaction.
TUKEY_METHOD = "Tukey 1-df"
PRODUCT_ONLY = (
    "without repeats only a product-shaped interaction can be tested (Tukey's 1-df test); "
    "run with --seeds 2 or more to test any kind"
)
COLUMNS = [
    "x", "y", "interaction", "low", "high", "p_value", "verdict", "method", "trials", "cells",
    "error_df", "noise_sd",
]  # fmt: skip


def interaction_scores(
    results: pd.DataFrame,
    metric: str,
    params: Sequence[str] | None = None,
    full_budget_only: bool = False,
    adaptive: bool = False,
) -> pd.DataFrame:
    """For every pair of searched parameters: does it interact, how much, how sure are we.

    Args:
        results: a results table (one row per trial), as in results.csv.
        metric: the column to explain.
        params: the searched parameters; default: every column that is not bookkeeping or a
            metric.
        full_budget_only: keep only the full-budget trials instead of refusing mixed budgets.
        adaptive: the trials were placed by a model-based searcher (Bayesian, TPE): each p-value
            comes from shuffles of the metric over the trials (:func:`permutation_p`), not the
            F distribution, and the method says so.

    Returns:
        One row per pair: x, y; interaction (its share of the metric's variance, in [0, 1];
        NaN where the trials cannot estimate it; main effects: `importance.main_effects`);
        low, high (95% interval of the
        interaction share); p_value (Holm-adjusted over the pairs tested); verdict
        ("interacts", "not above noise" or "too few trials"); method (the model, see the
        module's docstring); trials, cells (observed cells of the pair), error_df and
        noise_sd (residual degrees of freedom and standard deviation). Pairs that interact
        come first, strongest first, then the others by strength, then those with too few
        trials.

    Raises:
        ReportError: fewer than two parameters, an unknown column, or no usable trial.
    """
    names = list(params) if params is not None else searched_params(results)
    if len(names) < 2:
        raise ReportError(
            f"interaction needs two searched parameters; got {len(names)} ({', '.join(names)})"
        )
    frame, design = study_design(results, metric, names, full_budget_only)
    full = two_way_terms(names)
    everything = design.fit(full).df_resid >= MIN_ERROR_DF
    rows = [
        {
            **_pair(design, names, x, y, full if everything else None, adaptive),
            "cells": _cells(frame, x, y),
        }
        for x, y in itertools.combinations(names, 2)
    ]
    table = pd.DataFrame(rows, columns=COLUMNS)
    return _adjust_and_sort(table)


def study_design(
    results: pd.DataFrame, metric: str, names: Sequence[str], full_budget_only: bool = False
) -> tuple[pd.DataFrame, Design]:
    """The usable trials and their design: each of `names` a factor of its heatmap levels, or
    (more than MAX_LEVELS distinct numbers) a quadratic of its value.

    Raises:
        ReportError: an unknown column, or no usable trial.
    """
    check_columns(results, [*names, metric])
    frame, _ = usable_trials(results[[*names, metric, *_bookkeeping(results)]], metric,
                             full_budget_only)  # fmt: skip
    numbers = {n: _numbers(frame[n]) for n in names if is_continuous(frame[n])}
    codes = {n: _codes(frame[n]) for n in names if n not in numbers}
    return frame, Design(codes, numbers, frame[metric].to_numpy())


def _pair(
    design: Design,
    names: list[str],
    x: str,
    y: str,
    full: list[Term] | None,
    adaptive: bool = False,
) -> dict[str, Any]:
    """The interaction test of (x, y) with the first model that leaves an error to test on."""
    row: dict[str, Any] = {"x": x, "y": y, "trials": len(design.response)}
    chosen = pair_model(design, names, x, y, full)
    if chosen is not None:
        method, terms, term = chosen
        fit, test = design.fit(terms), type2(design, terms, term)
        mse = fit.rss / fit.df_resid
        low, high = interval(test, fit.df_resid, mse, design.total_ss)
        share = float(np.clip(term_share(test, mse, design.total_ss), low, high))
        method = model_name(method, design)
        row.update(interaction=share, low=low, high=high, verdict=NOISE, method=method)
        # A metric that does not vary at all has nothing to explain: p = 1.
        p = test.p if np.isfinite(test.p) else 1.0
        if adaptive and np.isfinite(test.p):
            p = permutation_p(design, terms, term)
            if not np.isfinite(p):  # Tukey's term: no shuffle null; not tested
                row.update(verdict=TOO_FEW, method=f"{method}, {UNTESTED}")
                p = np.nan
            else:
                row["method"] = f"{method}, {PERMUTATION}"
        row.update(p_value=p, error_df=fit.df_resid)
        row["noise_sd"] = float(np.sqrt(mse))
        return row
    row.update(interaction=np.nan, low=0.0, high=1.0, p_value=np.nan, verdict=TOO_FEW)
    row.update(method="", error_df=np.nan, noise_sd=np.nan)
    return row


def pair_model(
    design: Design, names: list[str], x: str, y: str, full: list[Term] | None
) -> tuple[str, list[Term], Term] | None:
    """The model (method, terms, the interaction's term) that tests (x, y): the first of the
    two-way model (`full`, where the study's trials allow it), the pair's and Tukey's that
    leaves MIN_ERROR_DF residual degrees of freedom and can estimate the interaction; None
    where none does."""
    mains: list[Term] = [(n,) for n in names]
    candidates: list[tuple[str, list[Term], Term]] = (
        [("two-way ANOVA", full, (x, y))] if full else []
    )
    candidates += [
        ("pair ANOVA", [*mains, (x, y)], (x, y)),
        (TUKEY_METHOD, [*mains, (TUKEY, x, y)], (TUKEY, x, y)),
    ]
    for method, terms, term in candidates:
        if design.fit(terms).df_resid < MIN_ERROR_DF:
            continue
        if not type2(design, terms, term).df > 0:
            return None  # the observed cells cannot estimate this pair's interaction
        return method, terms, term
    return None


def model_name(method: str, design: Design) -> str:
    """The method as the page names it: which parameters entered as quadratics of their value
    (more than MAX_LEVELS distinct values, which the heatmaps draw in quantile bins)."""
    curves = sorted(design.numbers)
    return f"{method}, {', '.join(curves)} as quadratic" if curves else method


def term_share(test: TermTest, mse: float, total: float) -> float:
    """The term's sum of squares beyond noise, as a share of the total (0 when nothing varies)."""
    if total <= 0 or not test.df > 0:
        return 0.0
    return float(np.clip((test.ss - test.df * mse) / total, 0.0, 1.0))


def interval(test: TermTest, df2: float, mse: float, total: float) -> tuple[float, float]:
    if total <= 0 or not np.isfinite(test.f):
        return 0.0, 0.0
    low, high = noncentrality_interval(test.f, test.df, df2, total / mse, CONFIDENCE)
    return float(min(low * mse / total, 1.0)), float(min(high * mse / total, 1.0))


def at_most_one(shares: dict[str, float]) -> dict[str, float]:
    """Type II sums of squares overlap where the design is not orthogonal: scale to sum <= 1."""
    total = sum(shares.values())
    return {k: v / total for k, v in shares.items()} if total > 1 else shares


def _adjust_and_sort(table: pd.DataFrame) -> pd.DataFrame:
    from statsmodels.stats.multitest import multipletests

    tested = table["verdict"] != TOO_FEW
    if tested.any():
        _, adjusted, _, _ = multipletests(table.loc[tested, "p_value"], method="holm")
        table.loc[tested, "p_value"] = adjusted
        table.loc[tested & (table["p_value"] < ALPHA), "verdict"] = INTERACTS
    order = table["verdict"].map({v: i for i, v in enumerate(VERDICTS)})
    table = table.assign(_order=order, _strength=-table["interaction"].fillna(-1.0))
    table = table.sort_values(["_order", "_strength", "p_value"], kind="stable")
    return table.drop(columns=["_order", "_strength"]).reset_index(drop=True)


def is_continuous(column: pd.Series) -> bool:
    """More distinct numbers than a heatmap axis shows as levels (they are binned there)."""
    numeric = pd.to_numeric(column, errors="coerce")
    return bool(numeric.notna().all() and numeric.nunique() > MAX_LEVELS)


def _numbers(column: pd.Series) -> np.ndarray:
    values = pd.to_numeric(column).to_numpy(dtype=float)
    return np.log10(values) if is_log_spaced(column) else values


def _codes(column: pd.Series) -> np.ndarray:
    """Level numbers of a parameter's values, sorted as the heatmap sorts them."""
    return np.asarray(pd.Categorical(level_series(column)).codes, dtype=int)


def _cells(frame: pd.DataFrame, x: str, y: str) -> int:
    """Observed cells of the pair's heatmap (continuous values in their quantile bins)."""
    levels = pd.DataFrame({x: level_series(frame[x]), y: level_series(frame[y])})
    return len(levels.drop_duplicates())


def _bookkeeping(results: pd.DataFrame) -> list[str]:
    return [c for c in ("status", "epochs") if c in results.columns]
