"""Members of different width and depth in one pack: where each member's tensors sit.

A pack's template is its members' architecture at the largest width and depth among them. Each
member's weights are copied into the template's shapes, the rest held at zero: a padded unit
then reads nothing, sends nothing, and (its gradients masked, :mod:`.pack`) stays zero, so
the member computes exactly what it computes alone. A member shallower than its pack reads its
output at its own last layer (:mod:`.dense`, :mod:`.recurrent`).

Where a dimension stacks equal parts (a GRU's three gates, a bidirectional layer's two
directions), each part is padded on its own: a member's gate `g` of width `h` sits at
`g * H : g * H + h` of the pack's width `H`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch

# Architectures whose members may differ in these keys within one pack.
SHAPE_KEYS: dict[str, tuple[str, ...]] = {
    "mlp": ("hidden_size", "num_layers"),
    "gru": ("hidden_size", "num_layers"),
    "lstm": ("hidden_size", "num_layers"),
}
GATES = {"gru": 3, "lstm": 4}  # gates stacked in a recurrent layer's weights, in torch's order


def template_config(configs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The configuration of a pack's template: the first member's, at the largest width and
    depth of any member."""
    template = dict(configs[0])
    for key in SHAPE_KEYS.get(str(template.get("architecture")), ()):
        template[key] = max(c[key] for c in configs)
    return template


def template_name(config: Mapping[str, Any], template: Mapping[str, Any], name: str) -> str:
    """The template's name for tensor `name` of a member with `config` (resolved).

    An MLP's head is its Sequential's last child: its index moves with the depth.
    """
    if config["architecture"] != "mlp":
        return name
    index, dot, rest = name.partition(".")
    if dot and index == str(config["num_layers"] + 1):
        return f"{template['num_layers'] + 1}.{rest}"
    return name


def parts(template: Mapping[str, Any], name: str, dims: int) -> tuple[int, ...]:
    """The equal parts each of the `dims` dimensions of the template's tensor `name` stacks."""
    cell = str(template["architecture"])
    if cell not in GATES:
        return (1,) * dims
    directions = 2 if template.get("bidirectional") else 1
    layer = re.fullmatch(r"rnn\.(weight|bias)_(ih|hh)_l(\d+)(_reverse)?", name)
    if layer:
        kind, source, number = layer.group(1), layer.group(2), int(layer.group(3))
        if kind == "bias":
            return (GATES[cell],)
        inputs = directions if source == "ih" and number > 0 else 1
        return (GATES[cell], inputs)
    if name.startswith("norm.") and dims == 1:
        return (directions,)
    if name in ("head.1.weight", "head.0.noise"):
        return (1, directions)  # [classes or batch, features]
    return (1,) * dims


def embed(
    tensor: torch.Tensor, shape: Sequence[int], split: Sequence[int], fill: float = 0.0
) -> torch.Tensor:
    """`tensor` placed in a tensor of `shape` filled with `fill`, each dimension's `split`
    parts padded on their own."""
    if tuple(tensor.shape) == tuple(shape):
        return tensor.clone()
    out = torch.full(tuple(shape), fill, dtype=tensor.dtype, device=tensor.device)
    out[_places(tensor.shape, shape, split, tensor.device)] = tensor
    return out


def cut(tensor: torch.Tensor, shape: Sequence[int], split: Sequence[int]) -> torch.Tensor:
    """The member's own tensor of `shape` taken back out of the padded `tensor` (what
    :func:`embed` put there)."""
    if tuple(tensor.shape) == tuple(shape):
        return tensor.clone()
    return tensor[_places(shape, tensor.shape, split, tensor.device)].clone()


def _places(
    own: Sequence[int], shape: Sequence[int], split: Sequence[int], device: torch.device
) -> tuple[torch.Tensor, ...]:
    """Where a member's tensor of shape `own` sits in the padded one of `shape`."""
    index = []
    for size, full, count in zip(own, shape, split, strict=True):
        mine, room = size // count, full // count
        places = [torch.arange(mine) + p * room for p in range(count)]
        index.append(torch.cat(places).to(device))
    return tuple(torch.meshgrid(*index, indexing="ij"))


def computed_config(config: Mapping[str, Any], template: Mapping[str, Any]) -> dict[str, Any]:
    """The size a member with `config` computes at in a pack of `template`: the pack's width,
    and the pack's depth for an MLP (every block runs for every member) but its own depth for a
    GRU or LSTM (a layer runs only for the members that have it)."""
    computed = dict(template)
    if config["architecture"] in GATES:
        computed["num_layers"] = config["num_layers"]
    return computed


def work_ratio(own: Sequence[int], computed: Sequence[int]) -> float:
    """The most any member of a pack pays for its padding: its computed work over its own
    (weights stand for work), `computed[k]` where it needs `own[k]`."""
    return max(c / max(1, o) for o, c in zip(own, computed, strict=True))
