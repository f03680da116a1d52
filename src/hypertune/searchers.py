"""The search algorithms a study may name (`study.search`): one registry entry each.

An entry says how the report names the algorithm, whether it places each trial by the results
before it, whether it samples floats only, and which callable builds its Ray searcher
(`module:callable`, called with the metric, the mode and the entry's options; imported only by
:mod:`hypertune.search` when a study runs). Nothing here imports Ray, so validation
(`study.search`), the help text and the report read the registry without it. Adding a search
algorithm is one :func:`register_searcher` call here (its builder may be Ray's searcher class
itself) and its test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypertune.errors import ConfigError


@dataclass(frozen=True)
class Searcher:
    """One search algorithm: its name, how a report names it, and how Ray Tune runs it."""

    name: str  # the value of study.search
    label: str  # how the report's page names the algorithm ("Bayesian optimisation")
    # `module:callable` that builds the Ray searcher from (metric=, mode=, **options); None:
    # Tune's variant generator runs the study's points (grid and random search: every trial,
    # or fused pack, planned up front).
    build: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    adaptive: bool = False  # places each trial by the results before it
    # Samples floats only: integers are rounded, log ranges searched on their exponent, and
    # categories refused.
    floats_only: bool = False
    noun: str = ""  # how errors name the search ("Bayesian search"; default: "<name> search")
    # Why a finished study ran fewer trials than planned, as `run` says it.
    exhausted: str = ""

    @property
    def message_name(self) -> str:
        return self.noun or f"{self.name} search"

    @property
    def planned(self) -> bool:
        """Whether every trial is planned before the study starts (grid, random): only those
        can be ordered, packed and counted up front."""
        return self.build is None


_REGISTRY: dict[str, Searcher] = {}


def register_searcher(searcher: Searcher) -> Searcher:
    """Make `searcher` a value of study.search (listed in the order registered)."""
    _REGISTRY[searcher.name] = searcher
    return searcher


def searcher_names() -> tuple[str, ...]:
    """Every registered search algorithm's name."""
    return tuple(_REGISTRY)


def known_searcher(name: str) -> Searcher | None:
    """The search algorithm `name`, or None (a study recorded by a search no longer here)."""
    return _REGISTRY.get(name)


def get_searcher(name: str) -> Searcher:
    """The search algorithm `name`.

    Raises:
        ConfigError: no search algorithm has that name.
    """
    if name not in _REGISTRY:
        known = ", ".join(searcher_names())
        raise ConfigError(f"study.search: '{name}' is unknown; choose one of {known}")
    return _REGISTRY[name]


register_searcher(Searcher(name="grid", label="grid"))  # every combination, times `samples`
register_searcher(Searcher(name="random", label="random"))  # `samples` points drawn up front
register_searcher(
    Searcher(
        name="bayes",
        label="Bayesian optimisation",
        # BayesOptSearch in the wrapper that runs every trial asked for (search/bayes.py).
        build="hypertune.search.bayes:bayes_searcher",
        options={"random_state": 0},
        adaptive=True,
        floats_only=True,  # BayesOpt samples floats
        noun="Bayesian search",
        exhausted="the Bayesian searcher kept suggesting configurations it had already tried",
    )
)
register_searcher(
    Searcher(
        name="hyperopt",
        label="TPE",
        build="ray.tune.search.hyperopt:HyperOptSearch",
        options={"random_state_seed": 0},
        adaptive=True,
    )
)
