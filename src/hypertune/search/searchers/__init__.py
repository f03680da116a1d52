"""The search algorithms a study may name (`study.search`), one module each in this package.

A module registers one :class:`Searcher` when imported; every module here is imported with the
package, and nothing here imports Ray until a searcher is built, so validation (`study.search`),
the help text and the report read the registry without starting Ray. Adding a search algorithm
is a module here, its test, and its line in the README's study-file block.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypertune.errors import ConfigError


@dataclass(frozen=True)
class Searcher:
    """One search algorithm: its name, how a report names it, and how Ray Tune runs it."""

    name: str  # the value of study.search
    label: str  # how the report's page names the algorithm ("Bayesian optimisation")
    order: int  # its place in lists (help, errors)
    noun: str = ""  # how errors name the search ("Bayesian search"; default: "<name> search")
    # (metric, mode) -> the Ray searcher, seeded; None: Tune's variant generator runs the
    # study's points (grid and random search: every trial, or fused pack, planned up front).
    build: Callable[[str, str], Any] | None = None
    adaptive: bool = False  # places each trial by the results before it
    # Samples floats only: integers are rounded, log ranges searched on their exponent, and
    # categories refused.
    floats_only: bool = False
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
    """Make `searcher` a value of study.search."""
    _REGISTRY[searcher.name] = searcher
    return searcher


def searcher_names() -> tuple[str, ...]:
    """Every registered search algorithm's name, in their order."""
    return tuple(s.name for s in sorted(_REGISTRY.values(), key=lambda s: s.order))


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


for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
