"""The order in which a grid or random study hands out its trials: the costliest first.

A study ends when its last trial does. Handed out in grid order, the largest models of a grid
come last, and the last of them trains alone while the other slots idle. Handing out the
costliest trials first (longest processing time first) leaves the short ones to fill the slots
at the end. Only the order changes: every trial, its configuration and its seed stay the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hypertune.config import StudyConfig
from hypertune.data import DataBundle
from hypertune.space import SEED_KEY, decode_config, grid_configs, sample_configs

# Estimating builds each model on the meta device: beyond this many configurations, a study is
# handed out in its own order rather than wait for the estimates.
ORDER_LIMIT = 1024
# One training step's fixed cost (Python and dispatch) in parameter-samples of arithmetic; how it
# was measured is in benchmarks/results.md.
STEP_COST = 5e6
# A recurrent layer's fixed cost per time step of a training step, in the same units: its gates'
# kernels run once a step whatever the layer's width, so below about 64 units depth, not width,
# sets a GRU's time (benchmarks/results.md).
LAYER_STEP_COST = 1.3e6


def trial_points(config: StudyConfig) -> list[dict[str, Any]]:
    """Every trial of a grid or random study, its searched values and its seed, in the study's
    own order: the grid's combinations `samples` times, or `samples` random configurations.

    Random configurations are sampled here, seeded, so every seed of a configuration trains the
    same values and a rerun of the study draws the same configurations.
    """
    specs = list(config.space.values())
    if config.search == "grid":
        configs = grid_configs(specs) * config.samples
    elif config.search == "random":
        configs = sample_configs(specs, config.samples, seed=0)
    else:
        raise ValueError(f"{config.search} search suggests its trials as it goes")
    return [{**c, SEED_KEY: s} for c in configs for s in range(config.seeds)]


def costliest_first(
    points: Sequence[Mapping[str, Any]], config: StudyConfig, data: DataBundle
) -> list[dict[str, Any]]:
    """`points` (searched values and seed) sorted by estimated training cost, largest first.

    Points of equal cost (seeds, learning rates) keep their order.
    """
    keys = {_key(p) for p in points}
    if len(keys) > ORDER_LIMIT:
        return [dict(p) for p in points]
    fixed = config.hyperparameters()
    costs = {key: estimated_cost({**fixed, **dict(key)}, config, data) for key in keys}
    return [dict(p) for p in sorted(points, key=lambda p: -costs[_key(p)])]


def estimated_cost(values: Mapping[str, Any], config: StudyConfig, data: DataBundle) -> float:
    """Relative cost of training one configuration; only the order of the figures means much.

    Its arithmetic (:func:`cost_terms`) plus the fixed cost of its steps; a configuration that
    cannot be built costs 0 (its trial fails and is recorded as such).
    """
    terms = cost_terms(decode_config(values, config.space), data)
    return sum(terms) if terms else 0.0


def cost_terms(values: Mapping[str, Any], data: DataBundle) -> tuple[float, float] | None:
    """One decoded configuration's training cost per sample, in two parts: its arithmetic
    (parameters times time steps) and the fixed cost of its steps (:data:`STEP_COST`, and
    :data:`LAYER_STEP_COST` per recurrent layer and time step, over the batch). None where the
    model cannot be built."""
    import torch

    from hypertune.models import TRAINER_KEYS, count_parameters, create_model

    try:
        with torch.device("meta"):
            model = create_model(values, data.input_shape, data.num_classes)
    except Exception:  # reported by the trial that trains it, not here
        return None
    params = count_parameters(model)
    rnns = [m for m in model.modules() if isinstance(m, torch.nn.RNNBase)]
    timesteps = data.input_shape[0] if rnns else 1
    layers = sum(m.num_layers * (2 if m.bidirectional else 1) for m in rnns)
    batch = max(1, int(values.get("batch_size", TRAINER_KEYS["batch_size"])))
    return params * timesteps, (STEP_COST + LAYER_STEP_COST * layers * timesteps) / batch


def _key(point: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, v) for k, v in point.items() if k != SEED_KEY))
