"""A GRU or LSTM classifier's forward over the stacked, padded weights of a pack.

torch's recurrent kernels take one set of weights; a pack has one per member. Here each layer's
input projection is one batched product over every step, and each step one batched product of
the members' hidden states, with the gates of torch's `nn.GRU`/`nn.LSTM` written out. Sequences
of varying length keep each one's state from its last valid step on, so the state read at the end
is the one a packed sequence gives; the reverse direction reads each sequence from its own last
step back. A member reads its features at its own top layer (:mod:`.padding`).
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
    reverse = _reverse_index(lengths, steps, device) if rnn.bidirectional else None
    # A layer runs for the members that have it only: no work is spent on depth padding.
    alive = torch.arange(x.shape[0])
    tops: list[tuple[torch.Tensor, torch.Tensor]] = []  # (members, their top layer's states)
    for layer in range(rnn.num_layers):
        has = depth[alive] > layer
        if not bool(has.all()):
            alive, x = alive[has], x[has.to(device)]
        mine = None if len(alive) == len(depth) else alive.to(device)
        outputs, states = [], []
        for suffix in ("", "_reverse") if rnn.bidirectional else ("",):
            names = f"rnn.{{}}_l{layer}{suffix}"
            order = None if reverse is None or not suffix else _pick(reverse, mine)
            seq = _gather_steps(x, order)
            out, state = _layer(cell, tensors, names, seq, _pick(valid, mine), mine)
            outputs.append(_gather_steps(out, order))
            states.append(state)
        x = torch.cat(outputs, dim=-1)
        top = depth[alive] == layer + 1
        if bool(top.any()):
            tops.append((alive[top], torch.cat(states, dim=-1)[top.to(device)]))
    members = torch.cat([m for m, _ in tops])
    features = torch.cat([f for _, f in tops])[torch.argsort(members).to(device)]
    features = _norm(model, tensors, features, width)
    if "head.0.noise" in tensors and model.training:
        features = features * tensors["head.0.noise"]
    weight, bias = tensors["head.1.weight"], tensors["head.1.bias"]
    return torch.baddbmm(bias.unsqueeze(1), features, weight.transpose(1, 2))


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
        gates_x = projected[:, :, step]
        gates_h = torch.baddbmm(b_hh.unsqueeze(1), h, w_hh.transpose(1, 2))
        if cell == "gru":  # torch's GRU: n = tanh(x_n + r * h_n), h' = (1 - z) n + z h
            r, z = torch.sigmoid(gates_x[..., : 2 * width] + gates_h[..., : 2 * width]).chunk(2, -1)
            n = torch.tanh(torch.addcmul(gates_x[..., 2 * width :], r, gates_h[..., 2 * width :]))
            new_h = torch.addcmul(n, z, h - n)
        else:  # torch's LSTM, gates i, f, g, o
            i, f, g, o = (gates_x + gates_h).chunk(4, dim=-1)
            new_c = torch.addcmul(torch.sigmoid(f) * c, torch.sigmoid(i), torch.tanh(g))
            new_h = torch.sigmoid(o) * torch.tanh(new_c)
            c = new_c if valid is None else torch.where(valid[:, :, step, None], new_c, c)
        h = new_h if valid is None else torch.where(valid[:, :, step, None], new_h, h)
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
