"""The page's verdicts in words: the sentence over every pair, and each heatmap's caption."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hypertune.report.frame import HeatmapInfo
from hypertune.report.interaction import (
    INTERACTS,
    PRODUCT_ONLY,
    TOO_FEW,
    TUKEY_METHOD,
)


def lead_and_summary(
    ranking: pd.DataFrame, wanted: tuple[Any, Any], strengths: dict[str, float]
) -> tuple[tuple[str, str | None], str]:
    """The lead pair and the sentence that says what the ranking found; `strengths`: each
    parameter's main-effect share (`importance.main_effects`), strongest first."""
    pairs = len(ranking)
    tested = int((ranking["verdict"] != TOO_FEW).sum())
    trials = int(ranking["trials"].max())
    found = ranking[ranking["verdict"] == INTERACTS]
    if len(found):
        top = found.iloc[0]
        summary = (
            f"{len(found)} of {count(pairs, 'pair')} interact"
            f"{'s' if len(found) == 1 else ''} beyond noise; the strongest is "
            f"{top['x']} x {top['y']}."
        )
        lead: tuple[str, str | None] = (str(top["x"]), str(top["y"]))
    else:
        first, second = sorted(strengths, key=lambda p: -strengths[p])[:2]
        row = next(r for r in ranking.itertuples() if {r.x, r.y} == {first, second})
        lead = (str(row.x), str(row.y))  # as the ranking orders the pair
        more = f" ({pairs - tested} more with too few trials)" if tested < pairs else ""
        shown = (
            ""  # two parameters: there was no pair to choose
            if pairs == 1
            else f"Shown first: the two strongest main effects, {first} and {second}."
            if strengths[first] > 0
            else f"No main effect stands out either; shown first: {first} and {second}."
        )
        if wanted[0] and wanted[1]:
            shown = f"Shown first: {wanted[0]} x {wanted[1]}, as asked."
        summary = (
            f"No pair interacts beyond noise: {count(tested, 'pair')} tested on "
            f"{count(trials, 'trial')}{more}. {shown}"
        ).strip()
        if tested == 0:
            summary = (
                f"Too few trials to test any interaction: {count(pairs, 'pair')}, "
                f"{count(trials, 'trial')}. {shown}"
            ).strip()
    if wanted[0] and wanted[1]:
        lead = (str(wanted[0]), str(wanted[1]))
        if len(found) and set(lead) != {str(found.iloc[0]["x"]), str(found.iloc[0]["y"])}:
            summary += f" Shown first: {wanted[0]} x {wanted[1]}, as asked."
    if not len(found) and product_only(ranking).any():
        summary += f" {PRODUCT_ONLY[0].upper()}{PRODUCT_ONLY[1:]}."
    return lead, summary


def importance_line(importance: pd.DataFrame) -> str:
    """The study's one main-effect ranking in words, strongest first, with 95% intervals."""
    fitted = importance.dropna(subset=["share"])
    if fitted.empty and importance["low"].isna().all():
        return "Main effects: every searched parameter took one value."
    if fitted.empty:
        trials = count(int(importance["trials"].max()), "trial")
        return f"Main effects: too few trials to fit them ({trials} for every parameter's levels)."
    method = str(fitted["method"].iloc[0]).replace(", permutation p", "")
    effects = ", ".join(
        f"{r.parameter} {r.share:.2f} ({r.low:.2f}–{r.high:.2f})" for r in fitted.itertuples()
    )
    fixed = importance[importance["share"].isna() & importance["low"].isna()]["parameter"]
    unestimated = f" Not estimable (one value): {', '.join(map(str, fixed))}." if len(fixed) else ""
    return (
        f"Main effects from one fit of all trials ({method}; share of the variance beyond "
        f"noise, 95% interval): {effects}.{unestimated}"
    )


def product_only(ranking: pd.DataFrame) -> pd.Series:
    """Pairs that only Tukey's 1-df test could test (no repeats) and that it did not find."""
    methods = ranking["method"] if "method" in ranking else pd.Series("", index=ranking.index)
    tukey = methods.astype(str).str.startswith(TUKEY_METHOD)
    return tukey & (ranking["verdict"] != INTERACTS) & (ranking["verdict"] != TOO_FEW)


def count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def caption(ranking: pd.DataFrame | None, pair: tuple[str, str | None], info: HeatmapInfo) -> str:
    """A heatmap's verdict caption: its interaction with interval and p, and whether the
    whole heatmap is within noise."""
    if ranking is None or pair[1] is None:
        return ""
    x, y = pair
    match = ranking[((ranking["x"] == x) & (ranking["y"] == y))
                    | ((ranking["x"] == y) & (ranking["y"] == x))]  # fmt: skip
    if match.empty:
        return ""
    row = match.iloc[0]
    if row["verdict"] == TOO_FEW:
        return "too few trials to test the interaction"
    if bool(product_only(match).iloc[0]):
        # Its share and interval are those of the product term alone: no interaction of 0.
        return (
            f"no product-shaped interaction (Tukey's 1-df test, p = {row['p_value']:.2g}); "
            "other kinds need repeats (--seeds 2)"
        )
    text = (
        f"{row['verdict']}: interaction {row['interaction']:.2f} "
        f"(95% {row['low']:.2f}–{row['high']:.2f}), p = {row['p_value']:.2g}"
    )
    if within_noise(info, float(row["noise_sd"]), float(row["error_df"])):
        text += "; all cells within noise"
    curves = [name for name in (x, y) if name in info.binned]
    if curves:  # the model took their values, the picture their quantile bins
        text += (
            f"; tested with {' and '.join(curves)} as quadratic (the fitted surface), not binned"
        )
    return text


def within_noise(info: HeatmapInfo, noise_sd: float, error_df: float) -> bool:
    """True when the best and worst cells differ by less than the least significant
    difference of their means (t test at 95%, the model's residual standard deviation)."""
    from scipy import stats

    values = info.values.to_numpy(dtype=float)
    counts = info.counts.to_numpy(dtype=float)
    if np.isnan(values).all() or not (noise_sd > 0 and error_df > 0):
        return False
    low, high = np.nanargmin(values), np.nanargmax(values)
    n_low, n_high = counts.ravel()[low], counts.ravel()[high]
    lsd = stats.t.ppf(0.975, error_df) * noise_sd * np.sqrt(1 / n_low + 1 / n_high)
    return bool(values.ravel()[high] - values.ravel()[low] < lsd)
