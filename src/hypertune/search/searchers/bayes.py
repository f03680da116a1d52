"""Bayesian optimisation (bayes_opt's Gaussian process through Ray's BayesOptSearch), in the
wrapper that runs every trial asked for (:mod:`hypertune.search.bayes`)."""

from __future__ import annotations

from typing import Any

from hypertune.search.searchers import Searcher, register_searcher


def _build(metric: str, mode: str) -> Any:
    from hypertune.search.bayes import bayes_searcher

    return bayes_searcher(metric, mode, random_state=0)


register_searcher(
    Searcher(
        name="bayes",
        label="Bayesian optimisation",
        order=2,
        noun="Bayesian search",
        build=_build,
        adaptive=True,
        floats_only=True,  # BayesOpt samples floats
        exhausted="the Bayesian searcher kept suggesting configurations it had already tried",
    )
)
