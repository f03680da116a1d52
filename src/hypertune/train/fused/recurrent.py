"""A GRU or LSTM classifier's forward over the stacked, padded weights of a pack.

torch's recurrent kernels take one set of weights; a pack has one per member. Here the first
layer's input projection is one batched product over every step, and each step one batched
product of the hidden states of every (member, layer) that runs then (:func:`_wavefront`; a
bidirectional pack goes layer by layer, :func:`_by_layer`), with the gates of torch's
`nn.GRU`/`nn.LSTM` written out. Sequences of varying length keep each one's state from its
last valid step on, so the state read at the end is the one a packed sequence gives; the
reverse direction reads each sequence from its own last step back. A member reads its features
at its own top layer (:mod:`.padding`). While training, a layer's outputs reach the layer above
through the member's dropout masks where it has any (`rnn.noise_l<layer>`, drawn as torch's module
draws them: :class:`~hypertune.train.fused.dropout.LayerMasks`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from hypertune.models.recurrent import SequenceClassifier
from hypertune.train.fused.dense import batch_norm

Tensors = Mapping[str, torch.Tensor]


def forward(
    model: SequenceClassifier,
    tensors: Tensors,
    x: torch.Tensor,
    lengths: torch.Tensor | None,
    depth: torch.Tensor,
    width: torch.Tensor,
) -> torch.Tensor:
    """Logits `[members, batch, classes]` of `x` `[members, batch, steps, features]`.

    `lengths` `[members, batch]` (None: every step is valid); `depth` `[members]`: each member's
    own layers; `width` `[members, features]`: 1 on the features a member has (its layer norm
    averages over these only).
    """
    rnn = model.rnn
    cell = "lstm" if isinstance(rnn, nn.LSTM) else "gru"
    steps, device = x.shape[2], x.device
    depth = depth.cpu()  # which members have a layer: decided on the host, no device sync
    valid = None
    if lengths is not None:
        steps = int(lengths.max())  # no step after the batch's longest sequence
        x = x[:, :, :steps]
        valid = torch.arange(steps, device=device) < lengths.to(device).unsqueeze(-1)
    names = (f"rnn.noise_l{layer}" for layer in range(rnn.num_layers - 1))
    drops = [tensors.get(name) for name in names] if model.training else []
    if rnn.bidirectional:
        features = _by_layer(rnn, cell, tensors, x, lengths, valid, depth, drops)
    else:
        features = _wavefront(cell, tensors, x, valid, depth, drops)
    features = _norm(model, tensors, features, width)
    if "head.0.noise" in tensors and model.training:
        features = features * tensors["head.0.noise"]
    weight, bias = tensors["head.1.weight"], tensors["head.1.bias"]
    return torch.baddbmm(bias.unsqueeze(1), features, weight.transpose(1, 2))


def _by_layer(
    rnn: nn.RNNBase,
    cell: str,
    tensors: Tensors,
    x: torch.Tensor,
    lengths: torch.Tensor | None,
    valid: torch.Tensor | None,
    depth: torch.Tensor,
    drops: list[torch.Tensor | None],
) -> torch.Tensor:
    """Each member's features at its own top layer, `[members, batch, width]`, of a
    bidirectional pack, one layer after another (a reverse step needs the layer below at every
    step)."""
    steps, device = x.shape[2], x.device
    reverse = _reverse_index(lengths, steps, device)
    # A layer runs for the members that have it only: no work is spent on depth padding.
    alive = torch.arange(x.shape[0])
    tops: list[tuple[torch.Tensor, torch.Tensor]] = []  # (members, their top layer's states)
    for layer in range(rnn.num_layers):
        has = depth[alive] > layer
        if not bool(has.all()):
            alive, x = alive[has], x[has.to(device)]
        mine = None if len(alive) == len(depth) else alive.to(device)
        outputs, states = [], []
        for suffix in ("", "_reverse"):
            names = f"rnn.{{}}_l{layer}{suffix}"
            order = _pick(reverse, mine) if suffix else None
            seq = _gather_steps(x, order)
            out, state = _layer(cell, tensors, names, seq, _pick(valid, mine), mine)
            outputs.append(_gather_steps(out, order))
            states.append(state)
        x = torch.cat(outputs, dim=-1)
        drop = drops[layer] if layer < len(drops) else None
        if drop is not None:  # what the layer above reads, each member's mask on it
            x = x * (drop if mine is None else drop[mine])
        top = depth[alive] == layer + 1
        if bool(top.any()):
            tops.append((alive[top], torch.cat(states, dim=-1)[top.to(device)]))
    members = torch.cat([m for m, _ in tops])
    return torch.cat([f for _, f in tops])[torch.argsort(members).to(device)]


def _wavefront(
    cell: str,
    tensors: Tensors,
    x: torch.Tensor,
    valid: torch.Tensor | None,
    depth: torch.Tensor,
    drops: list[torch.Tensor | None],
) -> torch.Tensor:
    """Each member's state at its own top layer after its last valid step, `[members, batch,
    width]`, one direction, every layer at once.

    At step `s` layer `l` takes time step `s - l`, whose input (layer `l - 1`'s state at that
    time) the step before made: each step is one batched product over every (member, layer)
    that runs then, steps + layers - 1 of them in a row where layer after layer takes steps x
    layers. Each cell computes what it does in :func:`_by_layer` by the same formulas; a layer
    above the first projects its input step by step, so float sums may round otherwise.
    """
    batch, steps = x.shape[1], x.shape[2]
    order = torch.argsort(-depth, stable=True)  # deepest first: a layer's members are a prefix
    counts = [int((depth > layer).sum()) for layer in range(int(depth.max()))]
    layers, rows = len(counts), order.to(x.device)
    start = [sum(counts[:layer]) for layer in range(layers + 1)]  # a layer's first pair
    x = x[rows]
    valid = None if valid is None else valid[rows]
    drops = [None if drop is None else drop[rows] for drop in drops]

    def stacked(kind: str, first: int) -> torch.Tensor:  # [pairs of layers first.., ...]
        names = (f"rnn.{kind}_l{layer}" for layer in range(first, layers))
        return torch.cat(
            [tensors[name][rows[:n]] for name, n in zip(names, counts[first:], strict=True)]
        )

    w_ih, b_ih = tensors["rnn.weight_ih_l0"][rows], tensors["rnn.bias_ih_l0"][rows]
    projected = torch.baddbmm(
        b_ih.unsqueeze(1), x.reshape(len(rows), batch * steps, -1), w_ih.transpose(1, 2)
    ).view(len(rows), batch, steps, -1)
    w_hh, b_hh = stacked("weight_hh", 0).transpose(1, 2), stacked("bias_hh", 0).unsqueeze(1)
    if layers > 1:
        w_up, b_up = stacked("weight_ih", 1).transpose(1, 2), stacked("bias_ih", 1).unsqueeze(1)
    width = w_hh.shape[1]
    hs = [x.new_zeros(n, batch, width) for n in counts]
    cs = list(hs)
    for step in range(steps + layers - 1):
        low, high = max(0, step - steps + 1), min(layers - 1, step)
        running = range(low, high + 1)
        h = _cat([hs[layer] for layer in running])
        parts = [projected[:, :, step]] if low == 0 else []
        if high >= 1:  # layers above the first take the state the step before made below
            first = max(low, 1)
            below = _cat(
                [
                    _dropped(hs[layer - 1][: counts[layer]], drops, layer - 1, step - layer)
                    for layer in range(first, high + 1)
                ]
            )
            a, b = start[first] - counts[0], start[high + 1] - counts[0]
            parts.append(torch.baddbmm(b_up[a:b], below, w_up[a:b]))
        a, b = start[low], start[high + 1]
        gates_h = torch.baddbmm(b_hh[a:b], h, w_hh[a:b])
        c = _cat([cs[layer] for layer in running]) if cell == "lstm" else h
        new_h, new_c = _cell(cell, _cat(parts), gates_h, h, c)
        if valid is not None:
            keep = _cat([valid[: counts[layer], :, step - layer] for layer in running])
            new_h, new_c = _held(cell, keep.unsqueeze(-1), new_h, h, new_c, c)
        sizes = counts[low : high + 1]
        for layer, part in zip(running, new_h.split(sizes), strict=True):
            hs[layer] = part
        if cell == "lstm":
            for layer, part in zip(running, new_c.split(sizes), strict=True):
                cs[layer] = part
    tops = [hs[layer][counts[layer + 1] if layer + 1 < layers else 0 :] for layer in range(layers)]
    return torch.cat(tops[::-1])[torch.argsort(rows)]


def _dropped(
    h: torch.Tensor, drops: list[torch.Tensor | None], layer: int, time: int
) -> torch.Tensor:
    """`h`, the states of `layer` at time step `time` of the first members (deepest first), as
    the layer above reads them: with each member's dropout mask, where it has one."""
    drop = drops[layer] if layer < len(drops) else None
    return h if drop is None else h * drop[: h.shape[0], :, time]


def _cat(tensors: list[torch.Tensor]) -> torch.Tensor:
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors)


def _held(
    cell: str,
    keep: torch.Tensor,
    new_h: torch.Tensor,
    h: torch.Tensor,
    new_c: torch.Tensor,
    c: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The new states where `keep` (a valid step), the old ones past a sequence's end."""
    new_h = torch.where(keep, new_h, h)
    return new_h, (torch.where(keep, new_c, c) if cell == "lstm" else new_h)


def _cell(
    cell: str, gates_x: torch.Tensor, gates_h: torch.Tensor, h: torch.Tensor, c: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of torch's GRU or LSTM cell from its two projections: the new state and (an
    LSTM's) new cell state; a GRU's second is its state again."""
    width = h.shape[-1]
    if cell == "gru":  # torch's GRU: n = tanh(x_n + r * h_n), h' = (1 - z) n + z h
        r, z = torch.sigmoid(gates_x[..., : 2 * width] + gates_h[..., : 2 * width]).chunk(2, -1)
        n = torch.tanh(torch.addcmul(gates_x[..., 2 * width :], r, gates_h[..., 2 * width :]))
        new_h = torch.addcmul(n, z, h - n)
        return new_h, new_h
    i, f, g, o = (gates_x + gates_h).chunk(4, dim=-1)  # torch's LSTM, gates i, f, g, o
    new_c = torch.addcmul(torch.sigmoid(f) * c, torch.sigmoid(i), torch.tanh(g))
    return torch.sigmoid(o) * torch.tanh(new_c), new_c


def _pick(tensor: torch.Tensor | None, rows: torch.Tensor | None) -> torch.Tensor | None:
    """`tensor`'s rows of the members `rows` names (all where None, or where it has one row)."""
    if tensor is None or rows is None or tensor.shape[0] == 1:
        return tensor
    return tensor[rows]


def _layer(
    cell: str,
    tensors: Tensors,
    name: str,
    x: torch.Tensor,
    valid: torch.Tensor | None,
    rows: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One direction of one layer for the members `rows` names: its outputs at every step and
    its last valid state."""
    members, batch, steps, _ = x.shape
    w_ih, w_hh, b_ih, b_hh = (
        tensors[name.format(kind)] if rows is None else tensors[name.format(kind)][rows]
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    )
    width = w_hh.shape[-1]
    projected = torch.baddbmm(
        b_ih.unsqueeze(1), x.reshape(members, batch * steps, -1), w_ih.transpose(1, 2)
    ).view(members, batch, steps, -1)
    h = x.new_zeros(members, batch, width)
    c = x.new_zeros(members, batch, width)
    outputs = []
    for step in range(steps):
        gates_h = torch.baddbmm(b_hh.unsqueeze(1), h, w_hh.transpose(1, 2))
        new_h, new_c = _cell(cell, projected[:, :, step], gates_h, h, c)
        if valid is not None:
            new_h, new_c = _held(cell, valid[:, :, step, None], new_h, h, new_c, c)
        h, c = new_h, new_c
        outputs.append(h)
    return torch.stack(outputs, dim=2), h


def _reverse_index(lengths: torch.Tensor | None, steps: int, device: torch.device) -> torch.Tensor:
    """Per sequence, the step each reversed step reads: its valid steps last to first, then its
    padding in place. `[members or 1, batch or 1, steps]`."""
    at = torch.arange(steps, device=device)
    if lengths is None:
        return (steps - 1 - at).view(1, 1, steps)
    lengths = lengths.to(device).unsqueeze(-1)
    return torch.where(at < lengths, lengths - 1 - at, at)


def _gather_steps(x: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
    """`x` `[members, batch, steps, features]` with its steps taken in `index`'s order."""
    if index is None:
        return x
    index = index.expand(x.shape[0], x.shape[1], -1)
    return torch.gather(x, 2, index.unsqueeze(-1).expand(-1, -1, -1, x.shape[-1]))


def _norm(
    model: SequenceClassifier, tensors: Tensors, x: torch.Tensor, width: torch.Tensor
) -> torch.Tensor:
    """The head's norm, each member over its own features."""
    norm = model.norm
    if isinstance(norm, nn.BatchNorm1d):
        return batch_norm(norm, tensors, x, "norm.")
    if isinstance(norm, nn.LayerNorm):
        mask = width.to(x.dtype).unsqueeze(1)
        count = mask.sum(dim=-1, keepdim=True)
        mean = (x * mask).sum(dim=-1, keepdim=True) / count
        var = (((x - mean) * mask) ** 2).sum(dim=-1, keepdim=True) / count
        normed = (x - mean) / torch.sqrt(var + norm.eps)
        return normed * tensors["norm.weight"].unsqueeze(1) + tensors["norm.bias"].unsqueeze(1)
    return x
