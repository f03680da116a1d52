"""How much each searched parameter matters on its own: one ranking for the whole study.

Every main effect comes from one fit of all usable trials, so a parameter has one share
wherever the page names it (fitting each pair alone gave the same parameter a different share
in every pair's row). The model is the richest that leaves MIN_ERROR_DF residual degrees of
freedom: every main effect and every two-factor interaction (``two-way ANOVA``), else the main
effects alone (``additive ANOVA``, whose residual then also holds the interactions). Each share
is the parameter's type II sum of squares beyond what noise alone would put there, over the
metric's total sum of squares, with a 95% interval from the noncentral F distribution and an
F-test p-value (or, for Bayesian and TPE studies, the p-value of 1999 shuffles of the metric),
as `interaction.py` computes them for a pair's interaction.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hypertune.report.anova import Term, permutation_p, two_way_terms, type2
from hypertune.report.frame import searched_params
from hypertune.report.interaction import (
    MIN_ERROR_DF,
    PERMUTATION,
    at_most_one,
    interval,
    model_name,
    study_design,
    term_share,
)

COLUMNS = ["parameter", "share", "low", "high", "p_value", "method", "trials", "error_df"]


def main_effects(
    results: pd.DataFrame,
    metric: str,
    params: Sequence[str] | None = None,
    full_budget_only: bool = False,
    adaptive: bool = False,
) -> pd.DataFrame:
    """Each searched parameter's main effect on `metric`, strongest first, from one fit.

    Returns:
        One row per parameter: parameter; share (of the metric's variance over the trials,
        beyond noise, in [0, 1]; the shares add up to at most 1), low, high (its 95%
        interval); p_value (not adjusted: it ranks, it does not decide); method (the model);
        trials and error_df (the fit's residual degrees of freedom). Where no model leaves an
        error to test on (fewer trials than the main effects need), share and p_value are NaN
        and the interval is 0 to 1. Ties keep the order of `params`.

    Raises:
        ReportError: an unknown column, or no usable trial.
    """
    names = list(params) if params is not None else searched_params(results)
    _, design = study_design(results, metric, names, full_budget_only)
    mains: list[Term] = [(n,) for n in names]
    candidates = [("two-way ANOVA", two_way_terms(names))] if len(names) > 1 else []
    candidates.append(("additive ANOVA", mains))
    rows = [
        {"parameter": n, "share": np.nan, "low": 0.0, "high": 1.0, "p_value": np.nan,
         "method": "", "trials": len(design.response), "error_df": np.nan}
        for n in names
    ]  # fmt: skip
    for method, terms in candidates:
        fit = design.fit(terms)
        if fit.df_resid < MIN_ERROR_DF:
            continue
        mse = fit.rss / fit.df_resid
        tests = {n: type2(design, terms, (n,)) for n in names}
        shares = at_most_one({n: term_share(t, mse, design.total_ss) for n, t in tests.items()})
        name = model_name(method, design) + (f", {PERMUTATION}" if adaptive else "")
        for row in rows:
            parameter = str(row["parameter"])
            test = tests[parameter]
            if not test.df > 0:  # it took one value here (or its levels are confounded)
                row.update(method=name, error_df=fit.df_resid, low=np.nan, high=np.nan)
                continue
            low, high = interval(test, fit.df_resid, mse, design.total_ss)
            p = test.p if np.isfinite(test.p) else 1.0  # a metric that does not vary: p = 1
            if adaptive and np.isfinite(test.p):
                p = permutation_p(design, terms, (parameter,))
            row.update(share=float(np.clip(shares[parameter], low, high)), low=low,
                       high=high, p_value=p, method=name, error_df=fit.df_resid)  # fmt: skip
        break
    table = pd.DataFrame(rows, columns=COLUMNS)
    order = table["share"].fillna(-1.0).rank(method="first", ascending=False)
    return table.iloc[np.argsort(order.to_numpy(), kind="stable")].reset_index(drop=True)
