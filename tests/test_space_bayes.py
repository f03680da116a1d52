"""Bayesian search over a log range draws on the log scale; integers stay integers."""

from __future__ import annotations

import math

from hypertune.search.domains import bayes_domains
from hypertune.space import decode_config, parse_assignment


def test_bayesian_search_samples_a_log_range_on_its_exponent() -> None:
    from ray.tune.search.bayesopt import BayesOptSearch

    specs = {s.name: s for s in map(parse_assignment, ["lr=1e-4:l5:1e-1", "h=8:l4:512"])}
    searcher = BayesOptSearch(
        bayes_domains(specs), metric="loss", mode="min", random_state=0, random_search_steps=40
    )
    drawn = [decode_config(searcher.suggest(f"t{n}"), specs) for n in range(40)]
    lrs = [trial["lr"] for trial in drawn]
    assert all(1e-4 <= lr <= 1e-1 for lr in lrs)
    # Log-uniform over three decades: about a third of the draws in each decade. Sampled
    # uniformly (Tune's loguniform under BayesOpt), nine in ten would lie above 0.01.
    decades = [sum(10**k <= lr < 10 ** (k + 1) for lr in lrs) for k in (-4, -3, -2)]
    assert min(decades) >= 7, decades
    assert all(isinstance(t["h"], int) and 8 <= t["h"] <= 512 for t in drawn)
    assert sum(t["h"] < 64 for t in drawn) >= 10  # half the exponent range lies below 64
    assert not any(k.startswith("__log10__") for t in drawn for k in t)


def test_decoding_turns_the_exponent_back_and_leaves_plain_values_alone() -> None:
    specs = {"lr": parse_assignment("lr=1e-4:l5:1e-1")}
    assert decode_config({"__log10__lr": -2.0}, specs) == {"lr": 0.01}
    assert decode_config({"__log10__lr": -0.9999999}, specs)["lr"] <= 0.1  # clipped to the range
    assert decode_config({"lr": 0.003}, specs) == {"lr": 0.003}  # recorded values: as they are
    assert math.isclose(decode_config({"__log10__lr": -3.5}, specs)["lr"], 10**-3.5)
