"""Which trials of a grid or random study train together, as one fused pack per Ray trial.

Trials whose configurations share a :func:`hypertune.fused.pack_key` (the same data, epochs,
batch size, optimizer kind and model, up to seed, learning rate, weight decay, momentum and
dropout) are split into packs. On a CPU a pack holds what keeps one step cheap and the slots
busy: a group is shared out over the slots, at most :data:`CPU_PACK` members and
:data:`CPU_PACK_PARAMETERS` weights to a pack. On a GPU a pack holds as many as fit, up to
:data:`GPU_PACK`. The plan depends only on the study, its data and the slots it was made for,
which study.json records, so a resumed study finds the same packs under the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from hypertune.config import StudyConfig
from hypertune.data import DataBundle
from hypertune.fused import pack_key
from hypertune.space import SEED_KEY, decode_config

PACK_KEY = "__pack__"  # a fused Ray trial's config: the index of its pack in the plan
MEMBERS = "members"  # a pack's result: each member's metrics, by its place in the pack
EPOCHS = "epochs"  # in a member's metrics: the epochs it has trained
CPU_PACK = 16  # members of one pack on a CPU: beyond it a step gains little
CPU_PACK_PARAMETERS = 4_000_000  # weights of one CPU pack, all members together
GPU_PACK = 64
GPU_PACK_PARAMETERS = 200_000_000  # with Adam, about 3 GB of float32 state per pack

Point = dict[str, Any]  # a trial's searched values and its seed


def plan(
    points: Sequence[Mapping[str, Any]], config: StudyConfig, data: DataBundle, slots: int
) -> list[list[Point]]:
    """`points` (in the order they are handed out) split into packs, each a list of members.

    A trial that cannot fuse, or a study that asked for `fuse = false`, gets a pack of its own.
    Packs keep the points' order: the first pack holds the first point.
    """
    if not config.fuse or config.trainer != "hypertune":
        return [[dict(p)] for p in points]
    fixed = config.hyperparameters()
    groups: dict[Any, list[Point]] = {}
    sizes: dict[Any, int] = {}
    for n, point in enumerate(points):
        values = decode_config({**fixed, **_searched(point)}, config.space)
        try:
            key = pack_key(values, data)
        except Exception:  # a configuration that cannot be built fails as its own trial
            key = None
        if key is None:
            key = ("alone", n)
            sizes[key] = 1
        elif key not in sizes:
            sizes[key] = _weights(values, data)
        groups.setdefault(key, []).append(dict(point))
    packs: list[list[Point]] = []
    for key, members in groups.items():
        size = pack_size(len(members), sizes[key], config, slots)
        count = math.ceil(len(members) / size)
        share, extra = divmod(len(members), count)  # near-equal packs, the larger ones first
        start = 0
        for i in range(count):
            end = start + share + (1 if i < extra else 0)
            packs.append(members[start:end])
            start = end
    return packs


def pack_size(members: int, weights: int, config: StudyConfig, slots: int) -> int:
    """The most members one pack of this group may hold (at least 1)."""
    if config.gpus_per_trial > 0:
        limit, budget = GPU_PACK, GPU_PACK_PARAMETERS
    else:
        limit, budget = CPU_PACK, CPU_PACK_PARAMETERS
        members = math.ceil(members / max(1, slots))  # every slot gets a pack
    return max(1, min(members, limit, budget // max(1, weights)))


def summary(packs: Sequence[Sequence[Point]], slots: int) -> dict[str, Any]:
    """What study.json records of a plan: the slots it was made for, the number of packs and
    the members of the largest."""
    return {"slots": slots, "count": len(packs), "largest": max(map(len, packs), default=0)}


def describe(
    plan: Sequence[Sequence[Point]],
    points: Sequence[Mapping[str, Any]],
    config: StudyConfig,
    data: DataBundle,
) -> str:
    """One line on how a study's trials train: '36 trials in 6 fused packs', or one by one
    and why."""
    trials = sum(map(len, plan)) if plan else config.planned_trials()
    if plan:
        alone = sum(1 for pack in plan if len(pack) == 1)
        rest = f" ({alone} of them alone)" if alone else ""
        return f"{trials} trials in {len(plan)} fused packs{rest}"
    return f"{trials} trials trained one by one: {_why_alone(points, config, data)}"


def _why_alone(points: Sequence[Mapping[str, Any]], config: StudyConfig, data: DataBundle) -> str:
    if config.search not in ("grid", "random"):
        return f"{config.search} search suggests its trials one at a time"
    if not config.fuse:
        return "fusing is off (fuse = false or --no-fuse)"
    if config.trainer != "hypertune":
        return f"the {config.trainer} trainer does not fuse"
    if points:
        values = decode_config({**config.hyperparameters(), **_searched(points[0])}, config.space)
        try:
            key = pack_key(values, data)
        except Exception:  # a configuration that cannot be built fails as its own trial
            key = None
        if key is None:
            if data.lengths_train is not None:
                return "sequences of varying length do not fuse"
            return f"{values.get('architecture', 'these')} models do not fuse (mlp and cnn do)"
    return "no two trials share a model shape and a slot (they differ in width, depth or more)"


def member_id(trial_id: str, index: int) -> str:
    """The trial id of a pack's member: the Ray trial's id and the member's place in it."""
    return f"{trial_id}-{index}"


def _searched(point: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in point.items() if k != SEED_KEY}


def _weights(values: Mapping[str, Any], data: DataBundle) -> int:
    """Weights of one member's model, counted on the meta device."""
    import torch

    from hypertune.models import count_parameters, create_model

    with torch.device("meta"):
        model = create_model(values, data.input_shape, data.num_classes)
    return count_parameters(model)
