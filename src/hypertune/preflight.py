"""Checks of a study's models before Ray starts: every configuration builds, none is too large,
and the model answers a batch with one score per class."""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

import torch

from hypertune.config import StudyConfig
from hypertune.data import DataBundle
from hypertune.errors import ConfigError, shorten
from hypertune.models import count_parameters, create_model
from hypertune.searchers import get_searcher
from hypertune.space import check_searchable, decode_config
from hypertune.train import check_config

PREFLIGHT_LIMIT = 512  # configurations checked before Ray starts
# The largest model one trial may build: with Adam's two moments about 1.6 GB of float32.
MAX_PARAMETERS = 100_000_000
EXAMPLES = 2  # the batch the output check runs


def preflight(config: StudyConfig, data: DataBundle) -> None:
    """Build the model of every configuration (up to a limit) on the meta device, and run the
    smallest configuration's model on two examples.

    Catches unknown keys, wrong types, impossible shapes, models too large to train in a
    second, and models whose output is not `[batch, num_classes]` (such a model would train and
    record an accuracy of 0), before Ray starts. The combination of every parameter's largest
    value comes first.

    Raises:
        ConfigError: a configuration cannot be built, its model has more than
            :data:`MAX_PARAMETERS` parameters, or its output has the wrong shape.
    """
    # A --smoke run checks the space of the study it stands for, not only its own two trials.
    space = {**config.space, **config.whole_space}
    searcher = get_searcher(config.search)
    for spec in space.values():
        check_searchable(spec, searcher.floats_only, searcher.message_name)  # e.g. categories
    candidates = []
    for spec in space.values():
        values = spec.values if spec.values else (spec.low, spec.high)
        candidates.append([(spec.name, v) for v in values])
    largest = tuple(max(c, key=_size_key) for c in candidates)
    combos = itertools.islice(itertools.product(*candidates), PREFLIGHT_LIMIT)
    for combo in itertools.chain([largest], combos):
        trial = decode_config({**config.hyperparameters(), **dict(combo)}, space)
        check_config(trial)
        with torch.device("meta"):
            model = create_model(trial, data.input_shape, data.num_classes)
            _shape_lazy(model, data)
        size = count_parameters(model)
        if size > MAX_PARAMETERS:
            chosen = ", ".join(f"{k}={v}" for k, v in combo)
            raise ConfigError(
                f"model: {size:,} parameters with {chosen}; a trial's model may have at most "
                f"{MAX_PARAMETERS:,}"
            )
    smallest = dict(min(c, key=_size_key) for c in candidates)
    check_output(decode_config({**config.hyperparameters(), **smallest}, space), data)


def check_output(trial: dict[str, Any], data: DataBundle) -> None:
    """Run the model of `trial` on the first training examples, in evaluation mode: its output
    must be one score per class for each example.

    Raises:
        ConfigError: the model raised, or returned anything but a `[batch, num_classes]` tensor.
    """
    where = f"model.architecture {trial.get('architecture')!r}"
    state = torch.random.get_rng_state()  # restored below: the caller's draws stay as they were
    torch.manual_seed(0)
    x = data.x_train[:EXAMPLES].cpu()  # a loader's own bundle may hold GPU tensors
    lengths = None if data.lengths_train is None else data.lengths_train[:EXAMPLES].cpu()
    try:
        model = create_model(trial, data.input_shape, data.num_classes).eval()
        with torch.no_grad():
            out = model(x) if lengths is None else model(x, lengths=lengths)
    except ConfigError:
        raise
    except Exception as exc:  # the user's model: any error it raises is theirs to fix
        raise ConfigError(
            f"{where}: the model fails on a batch of {len(x)} examples of shape "
            f"{list(x.shape)}: {type(exc).__name__}: {shorten(str(exc))}"
        ) from None
    finally:
        torch.random.set_rng_state(state)
    wanted = [len(x), data.num_classes]
    shape = list(out.shape) if isinstance(out, torch.Tensor) else None
    if shape != wanted:
        got = f"shape {shape}" if shape is not None else f"a {type(out).__name__}"
        raise ConfigError(
            f"{where}: returned {got} for a batch of {len(x)} examples; it must return "
            f"[batch, num_classes] = {wanted} (one score per class of {data.name!r})"
        )


def _shape_lazy(model: torch.nn.Module, data: DataBundle) -> None:
    """Give a lazy module's weights (`nn.LazyLinear`) their shapes, by a batch of two examples
    on the meta device, so that they are counted; a model that cannot run there keeps them
    unshaped (check_output then runs it for real)."""
    if not any(torch.nn.parameter.is_lazy(p) for p in model.parameters()):
        return
    x = torch.empty((EXAMPLES, *data.input_shape), device="meta")
    with contextlib.suppress(Exception), torch.no_grad():
        model(x)


def _size_key(item: tuple[str, Any]) -> float:
    """Numbers by size; anything else counts as small."""
    value = item[1]
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
