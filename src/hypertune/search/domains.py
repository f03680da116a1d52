"""Ray Tune domains for a study's search space: what each searched parameter samples.

The specs themselves (:class:`hypertune.space.ParamSpec`) know nothing of Ray; this module turns
them into Tune's domains for the searcher a study names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ray import tune

from hypertune.searchers import get_searcher
from hypertune.space import ParamSpec, check_searchable, exponent_key, numeric_bounds


def to_domain(spec: ParamSpec, search: str) -> Any:
    """The Ray Tune domain that samples `spec` under `search`."""
    if search == "grid":
        return tune.grid_search(spec.grid_values())
    searcher = get_searcher(search)
    if spec.is_range:
        low, high = float(spec.low), float(spec.high)  # type: ignore[arg-type]
        if spec.integer and not searcher.floats_only:
            sampler = tune.lograndint if spec.log else tune.randint
            return sampler(int(low), int(high) + 1)
        # A searcher of floats (BayesOpt): integers are rounded by decode_config; its log
        # ranges are searched on the exponent instead (bayes_domains).
        return tune.loguniform(low, high) if spec.log else tune.uniform(low, high)
    check_searchable(spec, searcher.floats_only, searcher.message_name)
    if searcher.floats_only:
        return tune.uniform(*numeric_bounds(spec))
    return tune.choice(list(spec.values))


def bayes_domains(specs: Mapping[str, ParamSpec]) -> dict[str, Any]:
    """Tune domains for Bayesian search: a log range is searched on its base-10 exponent.

    BayesOptSearch keeps a domain's bounds but drops Tune's log sampler, so `loguniform(1e-4,
    0.1)` would be explored uniformly (nine tenths of it above 0.01). The exponent, sampled
    uniformly under :func:`exponent_key`, is turned back into the value by `decode_config`.
    """
    space = {}
    for name, spec in specs.items():
        if spec.is_range and spec.log:
            low, high = math.log10(spec.low), math.log10(spec.high)  # type: ignore[arg-type]
            space[exponent_key(name)] = tune.uniform(low, high)
        else:
            space[name] = to_domain(spec, "bayes")
    return space
