"""Two studies over the same pair, side by side: did a change (another dataset, dropout on,
another optimizer) change the picture?

`comparison` puts both studies' usable trials on one grid of the pair's levels (quantile bins,
where an axis has many values, cut over both studies' values together so that a bin means the
same in each) and gives, per cell, B's mean minus A's with a 95% Welch interval from the
trials that share the cell (its seeds: none where either study has a single trial there), the
mean of those differences over the cells both ran with its t interval (the cells as pairs), the
two studies' interaction verdicts side by side, and how well their main-effect rankings agree
(Kendall's tau over the parameters both searched). Cells where either study lacks data stay
empty. Pure: from study.json and results.csv alone.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hypertune.errors import ReportError
from hypertune.report.frame import (
    ALL_TRIALS,
    HeatmapInfo,
    check_columns,
    is_log_spaced,
    level_series,
    usable_trials,
)
from hypertune.report.importance import main_effects
from hypertune.report.interaction import interaction_scores
from hypertune.study.stored import Study


@dataclass(frozen=True)
class Comparison:
    """What `compare A B` shows: both heatmaps on one grid, B − A per cell, and the verdicts."""

    names: tuple[str, str]
    metric: str
    direction: str
    x: str
    y: str | None
    infos: tuple[HeatmapInfo, HeatmapInfo]  # A's and B's cells on the shared grid
    cells: pd.DataFrame  # x, y, mean_a, n_a, mean_b, n_b, diff (B − A), low, high
    shift: tuple[float, float, float, int]  # mean of B − A over shared cells, its interval, n
    verdicts: pd.DataFrame  # pair, then interaction, low, high, verdict of each study (_a, _b)
    mains: pd.DataFrame  # parameter, share, low, high of each study (_a, _b), by A's rank
    agreement: tuple[float, float, int]  # Kendall's tau, its p-value, parameters ranked

    def grid(self, column: str) -> pd.DataFrame:
        """`column` of :attr:`cells` as a heatmap frame (rows y levels, columns x levels)."""
        values = self.infos[0].values
        table = self.cells.pivot(index="y", columns="x", values=column)
        return table.reindex(index=values.index, columns=values.columns)


def comparison(
    a: Study,
    b: Study,
    x: str | None = None,
    y: str | None = None,
    metric: str | None = None,
    full_budget_only: bool = False,
) -> Comparison:
    """Compare study `b` with study `a` over the pair (`x`, `y`); by default A's [report] pair
    where B searched it too, else the first two parameters both searched, on A's report metric.

    Raises:
        ReportError: no parameter searched by both, an unknown column, a pair whose axes share
            no value, or no cell that both studies ran.
    """
    from hypertune.report.page import report_metric

    metric, direction = report_metric(a.record, metric)
    x, y = _pair(a, b, x, y)
    names = [x] if y is None else [x, y]
    frames = []
    for side in (a, b):
        try:
            check_columns(side.results, [*names, metric])
            frame, _ = usable_trials(side.results, metric, full_budget_only)
        except ReportError as exc:
            raise ReportError(f"study '{side.name}': {exc}") from None
        frames.append(frame.assign(study=side.name))
    both = pd.concat(frames, ignore_index=True)
    levels = pd.DataFrame(
        {
            "study": both["study"],
            "x": level_series(both[x]),
            "y": level_series(both[y]) if y else ALL_TRIALS,
            "value": both[metric].astype(float),
        }
    )
    for axis, name in (("x", x), ("y", y)):
        if name is not None:
            _check_shared(levels, axis, name, (a.name, b.name))
    binned = tuple(n for n in names if isinstance(levels[_axis(n, x)].dtype, pd.CategoricalDtype))
    log_axes = tuple(n for n in names if is_log_spaced(both[n]))
    infos = tuple(
        _info(levels, side.name, x, y, metric, binned, log_axes, len(frame))
        for side, frame in zip((a, b), frames, strict=True)
    )
    cells = _cells(levels, a.name, b.name)
    if cells["diff"].notna().sum() == 0:
        raise ReportError(
            f"studies '{a.name}' and '{b.name}' share values of {' and '.join(names)} but no "
            "cell that both ran; a difference needs cells both ran"
        )
    return Comparison(
        names=(a.name, b.name),
        metric=metric,
        direction=direction,
        x=x,
        y=y,
        infos=(infos[0], infos[1]),
        cells=cells,
        shift=_shift(cells["diff"].dropna().to_numpy(float)),
        verdicts=_verdicts(a, b, metric, full_budget_only),
        mains=(mains := _mains(a, b, metric, full_budget_only)),
        agreement=_agreement(mains),
    )


def _pair(a: Study, b: Study, x: str | None, y: str | None) -> tuple[str, str | None]:
    shared = [p for p in a.record.params if p in b.record.params]
    if x is not None:
        if y is not None and x == y:
            raise ReportError(f"--x and --y are both '{x}'; pick two different parameters")
        return x, y
    if not shared:
        raise ReportError(
            f"studies '{a.name}' and '{b.name}' searched no parameter in common "
            f"({a.name}: {', '.join(a.record.params) or 'none'}; "
            f"{b.name}: {', '.join(b.record.params) or 'none'})"
        )
    wanted = (a.record.report_settings.get("x"), a.record.report_settings.get("y"))
    if all(name in shared for name in wanted):
        return str(wanted[0]), str(wanted[1])
    return shared[0], shared[1] if len(shared) > 1 else None


def _axis(name: str, x: str) -> str:
    return "x" if name == x else "y"


def _check_shared(levels: pd.DataFrame, axis: str, name: str, studies: Sequence[str]) -> None:
    from hypertune.report.page import value_text

    seen = [set(levels.loc[levels["study"] == s, axis]) for s in studies]
    if not seen[0] & seen[1]:
        shown = "; ".join(
            f"{s}: {', '.join(value_text(v) for v in _ordered(values)[:6])}"
            for s, values in zip(studies, seen, strict=True)
        )
        raise ReportError(
            f"studies '{studies[0]}' and '{studies[1]}' share no values of {name} ({shown}); "
            "a difference needs cells both ran"
        )


def _ordered(values: set[object]) -> list[object]:
    try:
        return sorted(values)  # type: ignore[type-var]
    except TypeError:  # mixed kinds: as text
        return sorted(values, key=str)


def _info(
    levels: pd.DataFrame,
    study: str,
    x: str,
    y: str | None,
    metric: str,
    binned: tuple[str, ...],
    log_axes: tuple[str, ...],
    used: int,
) -> HeatmapInfo:
    """One study's cells on the grid of both studies' levels (its own empty where it ran none)."""
    grid_x = _sorted_levels(levels["x"])
    grid_y = _sorted_levels(levels["y"])
    mine = levels[levels["study"] == study].groupby(["y", "x"], observed=True)["value"]

    def frame(series: pd.Series) -> pd.DataFrame:
        table = series.unstack("x").reindex(index=grid_y, columns=grid_x)
        table.index.name, table.columns.name = (y or ALL_TRIALS), x
        return table

    counts = frame(mine.count()).fillna(0).astype(int)
    return HeatmapInfo(
        values=frame(mine.mean()), std=frame(mine.std(ddof=1)), counts=counts, used=used,
        excluded={}, binned=binned, metric=metric, agg="mean", log_axes=log_axes,
    )  # fmt: skip


def _sorted_levels(column: pd.Series) -> list[object]:
    if isinstance(column.dtype, pd.CategoricalDtype):
        return list(column.cat.categories)
    return sorted(column.unique())


def _cells(levels: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """Per cell: each study's mean and trials, and B − A with its 95% Welch interval."""
    from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

    rows = []
    for (x, y), cell in levels.groupby(["x", "y"], observed=True, sort=True):
        values = {s: cell.loc[cell["study"] == s, "value"].to_numpy(float) for s in (a, b)}
        va, vb = values[a], values[b]
        diff = vb.mean() - va.mean() if len(va) and len(vb) else np.nan
        low = high = np.nan
        if len(va) > 1 and len(vb) > 1 and (va.std() > 0 or vb.std() > 0):
            test = CompareMeans(DescrStatsW(vb), DescrStatsW(va))
            low, high = test.tconfint_diff(alpha=0.05, usevar="unequal")
        rows.append({
            "x": x, "y": y, "mean_a": va.mean() if len(va) else np.nan, "n_a": len(va),
            "mean_b": vb.mean() if len(vb) else np.nan, "n_b": len(vb),
            "diff": diff, "low": float(low), "high": float(high),
        })  # fmt: skip
    return pd.DataFrame(rows)


def _shift(diffs: np.ndarray) -> tuple[float, float, float, int]:
    """The mean of B − A over the cells both ran, with its 95% t interval (the cells as pairs;
    none from a single cell)."""
    from statsmodels.stats.weightstats import DescrStatsW

    mean = float(diffs.mean())
    if len(diffs) < 2 or diffs.std() == 0:
        return mean, np.nan, np.nan, len(diffs)
    low, high = DescrStatsW(diffs).tconfint_mean(alpha=0.05)
    return mean, float(low), float(high), len(diffs)


def _verdicts(a: Study, b: Study, metric: str, full_budget_only: bool) -> pd.DataFrame:
    """Each pair either study tested: its interaction share, interval and verdict in each."""
    tables = []
    for side, suffix in ((a, "_a"), (b, "_b")):
        params = list(side.record.params)
        if len(params) < 2:
            continue
        scores = interaction_scores(side.results, metric, params, full_budget_only, side.adaptive)
        scores = scores.assign(
            pair=[" x ".join(sorted((str(r.x), str(r.y)))) for r in scores.itertuples()]
        )
        columns = ["interaction", "low", "high", "verdict"]
        tables.append(scores.set_index("pair")[columns].add_suffix(suffix))
    if not tables:
        return pd.DataFrame(columns=["pair"])
    return pd.concat(tables, axis=1).reset_index(names="pair")


def _mains(a: Study, b: Study, metric: str, full_budget_only: bool) -> pd.DataFrame:
    """Each parameter's main-effect share in each study (NaN where it did not search it)."""
    tables = []
    for side, suffix in ((a, "_a"), (b, "_b")):
        effects = main_effects(
            side.results, metric, list(side.record.params), full_budget_only, side.adaptive
        )
        tables.append(effects.set_index("parameter")[["share", "low", "high"]].add_suffix(suffix))
    table = pd.concat(tables, axis=1).sort_values("share_a", ascending=False, kind="stable")
    return table.reset_index(names="parameter")


def _agreement(mains: pd.DataFrame) -> tuple[float, float, int]:
    """Kendall's tau between the two studies' main-effect shares over the parameters both
    ranked (NaN, with its count, where fewer than 3: two parameters are ordered the same way
    or not, which no coefficient measures)."""
    from scipy import stats

    shared = mains.dropna(subset=["share_a", "share_b"])
    if len(shared) < 3:
        return np.nan, np.nan, len(shared)
    with warnings.catch_warnings():  # a constant ranking: tau is undefined (NaN), said as such
        warnings.simplefilter("ignore")
        tau, p = stats.kendalltau(shared["share_a"], shared["share_b"])
    return float(tau), float(p), len(shared)
