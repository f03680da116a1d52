"""Bayesian search that runs the trials it was asked for: :class:`Patient` around BayesOptSearch.

Ray's BayesOptSearch skips a configuration it has suggested before and, once one was suggested
more than `patience` (5) times, ends the search. Between two results its Gaussian process
suggests the same point again, and Tune asks for a suggestion on every pass of its loop (about
ten a second) while a slot is free, so a study with spare slots ran out of patience while its
first modelled trial was still training: 16 trials asked, 11 or 14 run.

:class:`Patient` asks the searcher again only when it may have learnt something (a trial
completed since it last had nothing new), or when no trial runs; until then it would only repeat
itself. A repeat while trials run means "wait for their results": no trial, nothing counted.
Only a repeat with nothing running counts (the model knows every result and still wants a point
it has tried: it has converged); `patience` of those in a row end the search, and
:attr:`Patient.converged` says so. The searcher inside is given a patience it never reaches.
The random first trials (`random_search_steps`) run side by side; the modelled ones mostly one
after another, each chosen knowing the results of those before it.
"""

from __future__ import annotations

import pickle
from typing import Any

from ray.tune.search import Searcher
from ray.tune.search.bayesopt import BayesOptSearch

PATIENCE = 5  # repeats in a row, with no trial running, that end a search
UNBOUNDED = 2**62  # the patience of the searcher inside: never reached


def bayes_searcher(metric: str, mode: str, random_state: int = 0, **options: Any) -> Patient:
    """BayesOptSearch that runs every trial asked for unless it converges (see the module)."""
    inner = BayesOptSearch(
        metric=metric, mode=mode, random_state=random_state, patience=UNBOUNDED, **options
    )
    return Patient(inner)


class Patient(Searcher):
    """A searcher that waits for running trials instead of counting its repeats (Ray's public
    Searcher interface only, like Ray's own ConcurrencyLimiter)."""

    def __init__(self, searcher: Searcher, patience: int = PATIENCE) -> None:
        self.searcher = searcher
        self.patience = patience
        self.converged = False  # the search ended because the model only repeats itself
        self.live: set[str] = set()  # trials suggested and not yet completed
        self.completed = 0  # trials completed (the model learns only from these)
        self.waiting_since = -1  # `completed` when a running trial's result was last awaited
        self.idle_repeats = 0  # repeats in a row with no trial running
        super().__init__(metric=searcher.metric, mode=searcher.mode)

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        return bool(self.searcher.set_search_properties(metric, mode, config, **spec))

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.converged:
            return Searcher.FINISHED  # type: ignore[return-value]  # Ray's own marker
        if self.live and self.completed == self.waiting_since:
            return None  # nothing learnt since: the searcher would only repeat itself
        config = self.searcher.suggest(trial_id)
        if config == Searcher.FINISHED:
            return config
        if config is not None:
            self.live.add(trial_id)
            self.idle_repeats = 0
            return config
        if self.live:  # a repeat, or random trials out: their results come first
            self.waiting_since = self.completed
            return None
        self.idle_repeats += 1
        if self.idle_repeats > self.patience:
            self.converged = True
            return Searcher.FINISHED  # type: ignore[return-value]
        return None

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id in self.live:
            self.live.discard(trial_id)
            self.completed += 1
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    def _own_state(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "searcher"}

    def get_state(self) -> dict[str, Any]:
        return {"searcher": self.searcher.get_state(), "patient": self._own_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.searcher.set_state(state["searcher"])
        self.__dict__.update(state["patient"])

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as handle:
            pickle.dump(self.get_state(), handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            self.set_state(pickle.load(handle))  # Tune's own checkpoint of this searcher
