"""TPE (hyperopt's Tree-structured Parzen Estimator, through Ray's HyperOptSearch)."""

from __future__ import annotations

from typing import Any

from hypertune.search.searchers import Searcher, register_searcher


def _build(metric: str, mode: str) -> Any:
    from ray.tune.search.hyperopt import HyperOptSearch

    return HyperOptSearch(metric=metric, mode=mode, random_state_seed=0)


register_searcher(Searcher(name="hyperopt", label="TPE", order=3, build=_build, adaptive=True))
