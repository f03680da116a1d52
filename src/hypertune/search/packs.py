"""Which trials of a grid or random study train together, as one fused pack per Ray trial.

Trials whose configurations share a :func:`hypertune.train.fused.pack_key` (the same data, epochs,
batch size, optimizer kind and model, up to seed, learning rate, weight decay, momentum, dropout
and, for MLPs, GRUs and LSTMs, width and depth) may share a pack. Every member of a pack computes
at the width of the pack's widest member (an MLP's also at the depth of its deepest), so a pack
holds members whose padded work stays within a bound of each one's own (weights stand for work:
per example, these models do a few multiply-adds per weight): :data:`PADDING_BOUND` on a GPU,
which is idle most of a small step, :data:`CPU_PADDING_BOUND` on a CPU, which pays for padding
in full (measured: packs that mix widths take longer than alone). On a CPU a pack also holds what
keeps one step cheap and the slots busy: at most :data:`CPU_PACK` members and
:data:`CPU_PACK_PARAMETERS` weights, and no more than one slot's share of the study's work
(padded weights again) where it can be split without leaving a trial alone (:func:`_balance`);
packs are handed out by estimated time (padded arithmetic and the fixed cost of their steps,
as :mod:`.order` counts them), the longest first;
a GRU or LSTM there trains alone where torch's module is faster (:func:`_recurrent_alone_on_cpu`).
On a GPU a pack holds as many as fit, up to :data:`GPU_PACK`. The plan depends only on the
study, its data and the slots it was made for, which study.json records, so a resumed study
finds the same packs under the same numbers.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hypertune.config import StudyConfig
from hypertune.data import DataBundle
from hypertune.models import resolve_config
from hypertune.search.order import cost_terms
from hypertune.searchers import get_searcher
from hypertune.space import SEED_KEY, decode_config
from hypertune.train.fused import (
    FUSED_ARCHITECTURES,
    RECURRENT,
    drops_between_layers,
    pack_key,
    padding,
)

PACK_KEY = "__pack__"  # a fused Ray trial's config: the index of its pack in the plan
MEMBERS = "members"  # a pack's result: each member's metrics, by its place in the pack
EPOCHS = "epochs"  # in a member's metrics: the epochs it has trained
CPU_PACK = 16  # members of one pack on a CPU: beyond it a step gains little
CPU_PACK_PARAMETERS = 4_000_000  # weights of one CPU pack, all members together (padded)
GPU_PACK = 64
GPU_PACK_PARAMETERS = 200_000_000  # with Adam, about 3 GB of float32 state per pack
# The widest GRU or LSTM that trains in a pack on a CPU (see _recurrent_alone_on_cpu).
CPU_RNN_PACK_WIDTH = 32
MIN_SPLIT = 2  # members of each half of a CPU pack split to share the work (see _balance)
# A member's padded work over its own, at most (see above).
PADDING_BOUND = 2.0
CPU_PADDING_BOUND = 1.25

Point = dict[str, Any]  # a trial's searched values and its seed


def plan(
    points: Sequence[Mapping[str, Any]], config: StudyConfig, data: DataBundle, slots: int
) -> list[list[Point]]:
    """`points` (in the order they are handed out) split into packs, each a list of members.

    A trial that cannot fuse, or a study that asked for `fuse = false`, gets a pack of its own.
    Within a group of one key, the largest trials are packed first, each pack taking the next
    largest while the bounds hold; on a CPU, packs heavier than a slot's share of the work are
    split (:func:`_balance`). Packs are listed by estimated time, the longest first, on a CPU
    (so that the slots end together), by their first point on a GPU; members in the points'
    order.
    """
    if not config.fuse or config.trainer != "hypertune":
        return [[dict(p)] for p in points]
    fixed = config.hyperparameters()
    groups: dict[Any, list[int]] = {}
    values: list[dict[str, Any]] = []
    for n, point in enumerate(points):
        values.append(decode_config({**fixed, **_searched(point)}, config.space))
        key = _key(values[n], config, data)
        groups.setdefault(("alone", n) if key is None else key, []).append(n)
    counted: dict[str, int] = {}

    def weights(model: Mapping[str, Any]) -> int:
        key = repr(sorted(model.items()))
        if key not in counted:
            try:
                counted[key] = _weights(model, data)
            except Exception:  # built (and failed) as a trial of its own
                counted[key] = 1
        return counted[key]

    models = [_model(v) for v in values]
    bound = PADDING_BOUND if config.gpus_per_trial > 0 else CPU_PADDING_BOUND
    packs: list[list[int]] = []
    for key, members in groups.items():
        if key[0] == "alone":
            packs.append(list(members))
            continue
        for cluster in _clusters(members, [models[n] for n in members], weights, bound):
            template = padding.template_config([models[n] for n in cluster])
            size = pack_size(len(cluster), weights(template), config)
            # As many as the limits allow, evened out: 36 in 12 + 12 + 12, not 16 + 16 + 4.
            count = math.ceil(len(cluster) / size)
            share, extra = divmod(len(cluster), count)
            for i in range(count):
                start = i * share + min(i, extra)
                packs.append(cluster[start : start + share + (1 if i < extra else 0)])

    if config.gpus_per_trial > 0:
        packs.sort(key=min)
    else:
        packs = _balance(packs, _padded(models, weights), slots)
        seconds = _time_of(values, models, weights, data)
        packs.sort(key=lambda pack: (-seconds(pack), min(pack)))
    return [[dict(points[n]) for n in sorted(pack)] for pack in packs]


def _padded(
    models: Sequence[Mapping[str, Any]], weights: Callable[[Mapping[str, Any]], int]
) -> Callable[[Sequence[int]], float]:
    """A pack's work to share out over the slots: its members' weights, each padded to the
    pack's shape (no fixed cost per step, which a split would count twice)."""

    def work(pack: Sequence[int]) -> float:
        return sum(_padded_weights(pack, models, weights))

    return work


def _time_of(
    values: Sequence[Mapping[str, Any]],
    models: Sequence[Mapping[str, Any]],
    weights: Callable[[Mapping[str, Any]], int],
    data: DataBundle,
) -> Callable[[Sequence[int]], float]:
    """A pack's estimated training time, from its points' numbers: its members' arithmetic,
    each padded to the pack's shape, and the fixed cost of one step of its deepest member (a
    pack steps once for all of them)."""
    estimates: dict[str, tuple[float, float]] = {}

    def terms(n: int) -> tuple[float, float]:
        key = repr((sorted(models[n].items()), values[n].get("batch_size")))
        if key not in estimates:
            estimates[key] = cost_terms(values[n], data) or (0.0, 0.0)
        return estimates[key]

    def work(pack: Sequence[int]) -> float:
        padded = zip(pack, _padded_weights(pack, models, weights), strict=True)
        arithmetic = sum(terms(n)[0] * w / max(1, weights(models[n])) for n, w in padded)
        return arithmetic + max((terms(n)[1] for n in pack), default=0.0)

    return work


def _padded_weights(
    pack: Sequence[int],
    models: Sequence[Mapping[str, Any]],
    weights: Callable[[Mapping[str, Any]], int],
) -> list[int]:
    """Each member's weights as it computes in the pack: padded to the pack's shape."""
    template = padding.template_config([models[n] for n in pack]) if pack else {}
    return [weights(padding.computed_config(models[n], template)) for n in pack]


def _balance(
    packs: Sequence[list[int]], work: Callable[[Sequence[int]], float], slots: int
) -> list[list[int]]:
    """CPU packs that share the study's work out over the slots: a pack heavier than one slot's
    even share would keep its slot busy while the others wait, so it is split in two, its
    members dealt in turn by weight, while both halves keep at least two members (a trial
    alone loses what fusing saves, which the weights do not count)."""
    share = sum(map(work, packs)) / max(1, slots)
    packs = list(packs)
    while True:
        splittable = [p for p in packs if len(p) >= 2 * MIN_SPLIT and work(p) > share]
        if not splittable:
            return packs
        heavy = max(splittable, key=work)
        ranked = sorted(heavy, key=lambda n: -work([n]))  # dealt in turn, heaviest first
        packs.remove(heavy)
        packs += [ranked[0::2], ranked[1::2]]


def _key(values: Mapping[str, Any], config: StudyConfig, data: DataBundle) -> Any:
    """The trial's :func:`pack_key` where it gains from a pack here; else None (alone)."""
    try:
        key = pack_key(values, data)
    except Exception:  # a configuration that cannot be built fails as its own trial
        return None
    if key is not None and _recurrent_alone_on_cpu(values, config, data):
        return None
    if key is not None and _dropout_alone_on_gpu(values, config):
        return None
    return key


def _dropout_alone_on_gpu(values: Mapping[str, Any], config: StudyConfig) -> bool:
    """A GRU or LSTM that drops out between its layers, on a GPU: there torch's module draws
    those masks in cuDNN, which a pack cannot draw alike, so such a trial trains alone."""
    return config.gpus_per_trial > 0 and drops_between_layers(_model(values))


def _recurrent_alone_on_cpu(
    values: Mapping[str, Any], config: StudyConfig, data: DataBundle
) -> str | None:
    """Why a GRU or LSTM trains faster alone on a CPU, where torch's module runs its steps in
    C++ and a pack's steps run from Python; None where it gains from a pack.

    Measured on 2 cores: over sequences of varying length (gestures) a pack of three took as
    long as the three alone, a pack of one 4.5 times as long (the module skips each sequence's
    padding); on the default study (depths 1-3), packs of one width took 0.55-0.65 of the
    three trials' time alone at 8, 16 and 32 units, 0.85-0.96 at 64 units (within this
    machine's noise) and 1.25-1.33 at 128."""
    if values.get("architecture") not in RECURRENT or config.gpus_per_trial > 0:
        return None
    if data.lengths_train is not None:
        return "over sequences of varying length"
    width = _model(values).get("hidden_size", 0)  # the architecture's default where unset
    if isinstance(width, int | float) and width > CPU_RNN_PACK_WIDTH:
        return f"of more than {CPU_RNN_PACK_WIDTH} units"
    return None


def _clusters(
    members: Sequence[int],
    models: Sequence[Mapping[str, Any]],
    weights: Callable[[Mapping[str, Any]], int],
    bound: float,
) -> list[list[int]]:
    """One group's members (point numbers, each with its model's keys) in clusters that may
    share packs: the largest first, each cluster taking the next largest while every member's
    padded work stays within `bound` times its own; members ordered largest first."""
    order = sorted(range(len(members)), key=lambda i: -weights(models[i]))
    clusters: list[list[int]] = []
    while order:
        cluster = [order.pop(0)]
        for i in list(order):
            trial = [*cluster, i]
            template = padding.template_config([models[j] for j in trial])
            own = [weights(models[j]) for j in trial]
            computed = [weights(padding.computed_config(models[j], template)) for j in trial]
            if padding.work_ratio(own, computed) <= bound:
                cluster.append(i)
                order.remove(i)
        clusters.append([members[i] for i in cluster])
    return clusters


def _model(values: Mapping[str, Any]) -> dict[str, Any]:
    """The keys a trial's model is built from, defaults filled in."""
    try:
        return resolve_config(values)
    except Exception:  # built (and failed) as a trial of its own
        return dict(values)


def pack_size(members: int, weights: int, config: StudyConfig) -> int:
    """The most members one pack of this group may hold (at least 1)."""
    if config.gpus_per_trial > 0:
        limit, budget = GPU_PACK, GPU_PACK_PARAMETERS
    else:  # the slots' share of the work: _balance
        limit, budget = CPU_PACK, CPU_PACK_PARAMETERS
    return max(1, min(members, limit, budget // max(1, weights)))


def summary(packs: Sequence[Sequence[Point]], slots: int) -> dict[str, Any]:
    """What study.json records of a plan: the slots it was made for, the number of packs, the
    members of the largest, and a digest of which points each pack holds (a resumed study
    restores Ray's trials only where the plan made now has the same digest)."""
    text = json.dumps([list(pack) for pack in packs], sort_keys=True, default=str)
    return {
        "slots": slots,
        "count": len(packs),
        "largest": max(map(len, packs), default=0),
        "digest": hashlib.sha256(text.encode()).hexdigest()[:16],
    }


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
    if not get_searcher(config.search).planned:
        return f"{config.search} search suggests its trials one at a time"
    if not config.fuse:
        return "fusing is off (fuse = false or --no-fuse)"
    if config.trainer != "hypertune":
        return f"the {config.trainer} trainer does not fuse"
    if points:
        values = decode_config({**config.hyperparameters(), **_searched(points[0])}, config.space)
        if _key(values, config, data) is None:
            return _unfused(values, config, data)
    return "no two trials share a model and a slot (they differ in more than fusing allows)"


def _unfused(values: Mapping[str, Any], config: StudyConfig, data: DataBundle) -> str:
    """Why a trial without a :func:`_key` trains alone."""
    architecture = values.get("architecture", "these")
    alone = _recurrent_alone_on_cpu(values, config, data)
    if alone:
        return f"on a CPU a {architecture} {alone} trains faster alone"
    if architecture not in FUSED_ARCHITECTURES:
        known = ", ".join(FUSED_ARCHITECTURES[:-1]) + f" and {FUSED_ARCHITECTURES[-1]}"
        return f"{architecture} models do not fuse ({known} do)"
    if _dropout_alone_on_gpu(values, config):
        return f"on a GPU a {architecture} with dropout between its layers trains alone"
    if data.lengths_train is not None:
        return "sequences of varying length do not fuse"
    return "these models do not fuse"


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
