"""Linear models of a study's trials: every searched parameter a factor or a smooth quadratic.

The building blocks of `interaction.py`: design matrices (treatment coding), least-squares fits
(statsmodels OLS, whose residual degrees of freedom count the design's rank, so incomplete
grids and empty cells are handled), type II sums of squares and an interval for a term's share
of the variance from the noncentral F distribution. Nothing here knows about pictures.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

Term = tuple[str, ...]  # ("lr",) a main effect, ("lr", "dropout") an interaction
TUKEY = "tukey"  # marks the one-degree-of-freedom non-additivity term of a pair


@dataclass(frozen=True)
class Fit:
    """What a fitted model leaves over."""

    rss: float  # residual sum of squares
    df_resid: float  # trials minus the rank of the design


@dataclass(frozen=True)
class TermTest:
    """A term's type II sum of squares, its degrees of freedom and its F test in a model."""

    ss: float
    df: float
    f: float
    p: float


class Design:
    """The columns of a study's parameters: a factor's levels, or a smooth numeric value.

    `codes` maps a factor to one integer level per trial (treatment coding); `numbers` maps a
    continuous parameter to its value per trial (on the log scale where log-spaced), entered
    as a quadratic: standardised value and its square.
    """

    def __init__(
        self,
        codes: Mapping[str, np.ndarray],
        numbers: Mapping[str, np.ndarray],
        response: np.ndarray,
    ) -> None:
        self.codes = dict(codes)
        self.numbers = dict(numbers)
        self.response = np.asarray(response, dtype=float)
        self.total_ss = float(np.sum((self.response - self.response.mean()) ** 2))
        self._cache: dict[frozenset[Term], Fit] = {}

    @property
    def names(self) -> list[str]:
        return sorted([*self.codes, *self.numbers])

    def block(self, name: str, at: np.ndarray | None = None) -> np.ndarray:
        """A parameter's main-effect columns over the trials, or at the values `at` (numbers
        as in `numbers`, level codes as in `codes`), coded as the trials' are."""
        if name in self.numbers:
            value = self.numbers[name]
            spread = float(value.std()) or 1.0
            z = (value - value.mean()) / spread
            square = np.mean(z**2)
            if at is not None:
                z = (np.asarray(at, dtype=float) - value.mean()) / spread
            return np.column_stack([z, z**2 - square])
        codes = self.codes[name]
        levels = int(codes.max()) + 1 if len(codes) else 0
        wanted = codes if at is None else np.asarray(at, dtype=int)
        columns = np.zeros((len(wanted), max(levels - 1, 0)))
        rows = np.nonzero(wanted > 0)[0]
        columns[rows, wanted[rows] - 1] = 1.0
        return columns

    def surface(
        self, terms: Iterable[Term], x: str, y: str, xs: np.ndarray, ys: np.ndarray
    ) -> np.ndarray:
        """The fitted model of `terms` at every (ys[i], xs[j]), the other parameters averaged
        over the trials (their columns at the trials' mean: the model is linear in them).

        Tukey's term has no value away from the trials; a model holding it is refused.
        """
        terms = sorted(terms)
        if any(term[0] == TUKEY for term in terms):
            raise ValueError("Tukey's term has no fitted surface")
        matrix = self.matrix(terms)
        coefficients = np.linalg.lstsq(matrix, self.response, rcond=None)[0]
        gx, gy = (a.ravel() for a in np.meshgrid(xs, ys))
        parts = [np.ones((len(gx), 1))]
        for term in terms:
            if x not in term and y not in term:  # its columns' mean over the trials
                parts.append(np.tile(self.columns(term).mean(axis=0), (len(gx), 1)))
                continue
            out = np.ones((len(gx), 1))
            for name in term:
                if name in (x, y):
                    block = self.block(name, gx if name == x else gy)
                else:  # a term of x (or y) and another: linear in the other's columns
                    block = np.tile(self.block(name).mean(axis=0), (len(gx), 1))
                out = np.einsum("ni,nj->nij", out, block).reshape(len(gx), -1)
            parts.append(out)
        return (np.hstack(parts) @ coefficients).reshape(len(ys), len(xs))

    def columns(self, term: Term) -> np.ndarray:
        if term[0] == TUKEY:
            return self.tukey(term[1], term[2])[:, None]
        blocks = [self.block(name) for name in term]
        out = blocks[0]
        for block in blocks[1:]:
            out = np.einsum("ni,nj->nij", out, block).reshape(len(out), -1)
        return out

    def matrix(self, terms: Iterable[Term]) -> np.ndarray:
        parts = [np.ones((len(self.response), 1))]
        parts += [self.columns(term) for term in sorted(terms)]
        return np.hstack(parts)

    def fit(self, terms: Iterable[Term]) -> Fit:
        """Least squares of the response on an intercept and `terms` (cached)."""
        key = frozenset(terms)
        if key not in self._cache:
            from statsmodels.regression.linear_model import OLS

            with warnings.catch_warnings():  # rank deficiency is expected: df_resid counts rank
                warnings.simplefilter("ignore")
                result = OLS(self.response, self.matrix(key)).fit()
            self._cache[key] = Fit(float(result.ssr), float(result.df_resid))
        return self._cache[key]

    def tukey(self, x: str, y: str) -> np.ndarray:
        """Tukey's non-additivity regressor for (x, y): the product of their additive effects.

        Effects come from the additive model of every factor, centred over the trials; the
        product is the one-degree-of-freedom interaction a(x) * b(y) that needs no replicates.
        """
        from statsmodels.regression.linear_model import OLS

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = OLS(self.response, self.matrix((n,) for n in self.names)).fit()
        effects = {}
        start = 1
        for name in self.names:
            block = self.block(name)
            effect = block @ result.params[start : start + block.shape[1]]
            effects[name] = effect - effect.mean()
            start += block.shape[1]
        return effects[x] * effects[y]


def two_way_terms(names: Sequence[str]) -> list[Term]:
    """Every main effect and every two-factor interaction."""
    return [(n,) for n in names] + list(itertools.combinations(names, 2))


def contains(term: Term, name: str) -> bool:
    return name in (term[1:] if term[0] == TUKEY else term)


def type2(design: Design, terms: Sequence[Term], term: Term) -> TermTest:
    """Type II test of `term` in the model of `terms`: the model without every term that holds
    `term`'s factors (and more), with and without `term` itself."""
    from scipy import stats

    kept, without = _nested(terms, term)
    full, reduced, model = design.fit(kept), design.fit(without), design.fit(terms)
    ss = max(reduced.rss - full.rss, 0.0)
    df = reduced.df_resid - full.df_resid
    mse = model.rss / model.df_resid if model.df_resid > 0 else float("nan")
    if df <= 0 or not mse > 0:
        return TermTest(ss, df, float("nan"), float("nan"))
    f = ss / df / mse
    return TermTest(ss, df, f, float(stats.f.sf(f, df, model.df_resid)))


def _nested(terms: Sequence[Term], term: Term) -> tuple[list[Term], list[Term]]:
    """The two models a type II test of `term` compares: `terms` without every wider term that
    holds `term`'s factors, with and without `term` itself."""
    factors = term[1:] if term[0] == TUKEY else term
    wider = [t for t in terms if t != term and all(contains(t, f) for f in factors) and len(t) > 1]
    kept = [t for t in terms if t not in wider]
    return kept, [t for t in kept if t != term]


def permutation_p(
    design: Design, terms: Sequence[Term], term: Term, rounds: int = 1999, seed: int = 0
) -> float:
    """The p-value of `term`'s type II F statistic against its distribution when the metric is
    shuffled over the trials' settings (`rounds` shuffles, a fixed seed: the same study gives
    the same p). NaN for Tukey's term, whose regressor is itself fitted to the metric.

    For designs whose trials were placed by a model-based searcher (Bayesian optimisation,
    TPE): the trials are then not independent draws, and the F distribution is not the null of
    the statistic; the shuffles give it over the observed design.
    """
    if term[0] == TUKEY:
        return float("nan")
    observed = type2(design, terms, term)
    if not np.isfinite(observed.f):
        return float("nan")
    kept, without = _nested(terms, term)
    rng = np.random.default_rng(seed)
    y = design.response
    shuffled = np.column_stack([y, *(rng.permutation(y) for _ in range(rounds))])
    rss = {}
    for name, model in (("full", kept), ("reduced", without), ("model", list(terms))):
        x = design.matrix(model)
        residual = shuffled - x @ (np.linalg.pinv(x) @ shuffled)
        rss[name] = (residual**2).sum(axis=0)
    df = observed.df
    df_model = len(y) - np.linalg.matrix_rank(design.matrix(list(terms)))
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.maximum(rss["reduced"] - rss["full"], 0.0) / df / (rss["model"] / df_model)
    # f[0] is the unshuffled metric: the same statistic as the F test's, by the same algebra.
    exceed = np.count_nonzero(f[1:] >= f[0] * (1 - 1e-9))
    return float((1 + exceed) / (rounds + 1))


def noncentrality_interval(
    f: float, df1: float, df2: float, cap: float, confidence: float = 0.95
) -> tuple[float, float]:
    """Confidence interval for the noncentrality of an F test, by inverting its CDF.

    The noncentrality is the term's true sum of squares over the error variance, so times the
    mean square error it estimates the term's share of the variance (Steiger 2004). Bounds
    above `cap` (a share of 1) are returned as `cap`. Where the noncentral F cannot be
    evaluated (an almost exact fit, F in the millions) the interval is the estimate itself,
    df1 * (F - 1), which is then exact to many digits.
    """
    from scipy import optimize, stats

    tail = (1 - confidence) / 2
    estimate = min(max(df1 * (f - 1), 0.0), cap)

    def gap(lam: float, target: float) -> float:
        return float(stats.ncf.cdf(f, df1, df2, lam)) - target

    def solve(target: float) -> float:
        at_zero, at_cap = gap(0.0, target), gap(cap, target)
        if not (np.isfinite(at_zero) and np.isfinite(at_cap)):
            return float("nan")
        if at_zero <= 0:
            return 0.0
        if at_cap >= 0:
            return cap
        try:
            return float(optimize.brentq(gap, 0.0, cap, args=(target,), xtol=1e-10))
        except ValueError:  # NaN inside the bracket
            return float("nan")

    low, high = solve(1 - tail), solve(tail)
    if not (np.isfinite(low) and np.isfinite(high)):
        return estimate, estimate
    return low, high
