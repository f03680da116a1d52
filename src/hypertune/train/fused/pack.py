"""One fused pack's state: its members' weights stacked (and padded), buffers, generators and
optimizer, and one training step or evaluation of every member at once.

The forward runs by architecture: an MLP as batched products (:mod:`.dense`), a GRU or
LSTM as batched recurrent steps (:mod:`.recurrent`), anything else (a CNN) through
`torch.func.vmap`, which needs members of one shape. Where members differ in width or depth
(:mod:`.padding`), each gradient is masked to the member's own weights before the step,
so the padding never moves from zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap

from hypertune.data import DataBundle
from hypertune.models import create_model, resolve_config
from hypertune.models.dense import DenseBlock
from hypertune.models.recurrent import SequenceClassifier
from hypertune.train.fused import dense, padding, recurrent
from hypertune.train.fused.dropout import LayerMasks, PackMasks
from hypertune.train.optim import StackedOptimizer
from hypertune.train.settings import State, batch_count, trainer_keys

Tensors = dict[str, torch.Tensor]


class Pack:
    """The stacked weights, buffers, generators and optimizer state of one pack."""

    def __init__(
        self,
        configs: Sequence[Mapping[str, Any]],
        data: DataBundle,
        seeds: Sequence[int],
        device: torch.device,
    ) -> None:
        self.data = data
        self.configs = [dict(c) for c in configs]
        resolved = [resolve_config(c) for c in configs]
        self.resolved = resolved
        self.config = padding.template_config(resolved)
        models, states = [], []
        for config, seed in zip(configs, seeds, strict=True):
            torch.manual_seed(seed)  # the weights a lone trial with this seed starts from
            models.append(create_model(config, data.input_shape, data.num_classes).to(device))
            states.append(torch.get_rng_state())  # where its GRU's dropout draws on from
        with torch.device("meta"):
            self.template = create_model(self.config, data.input_shape, data.num_classes)
        weights, self.buffers, mask = self._stack(models, resolved, device)
        # Every member's weights in one row of one tensor, which the optimizer steps whole;
        # each weight is a view into it, a leaf of its own for autograd.
        members = len(models)
        self.flat = torch.cat([w.reshape(members, -1) for w in weights.values()], dim=1)
        self.mask = None if bool(mask.all()) else mask  # None: no padding to hold at zero
        self.weights: Tensors = {}
        at = 0
        for name, w in weights.items():
            size = w[0].numel()
            self.weights[name] = self.flat[:, at : at + size].view(w.shape).requires_grad_()
            at += size
        self.depth = torch.tensor([int(r.get("num_layers", 0)) for r in resolved])  # host
        self.residual = _residual_flags(models, self.template, device)
        self.width = self._features(resolved, device)
        dropout = [float(r.get("dropout", 0.0)) for r in resolved]
        self.masks = PackMasks(
            self.template, models, dropout, seeds, data.input_shape, self._place_mask
        )
        self.layer_masks = self._layer_masks(resolved, states, device)
        self.dense = dense.supported(self.template)  # an MLP: batched products, no vmap
        self.shuffle = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.active = [True] * members
        keys = [trainer_keys(c) for c in configs]
        self.batch_size = keys[0].batch_size
        self.optimizer = StackedOptimizer(self.flat, keys)
        self.padded = self.mask is not None or len(set(self.depth.tolist())) > 1

        def one(params: Tensors, buffers: Tensors, x: torch.Tensor) -> torch.Tensor:
            return functional_call(self.template, (params, buffers), (x,))

        self._vmapped = vmap(one, in_dims=(0, 0, 0), randomness="error")

    def _stack(
        self, models: Sequence[nn.Module], resolved: Sequence[Mapping[str, Any]], device: Any
    ) -> tuple[Tensors, Tensors, torch.Tensor]:
        """The template's weights and buffers, each member's own copied in (the rest zero), and
        the mask of where each member's weights are, laid out as the flat weights."""
        weights: Tensors = {}
        buffers: Tensors = {}
        masks = []
        own_tensors = [_tensors(m, c, self.config) for m, c in zip(models, resolved, strict=True)]
        groups: list[tuple[Any, Tensors]] = [(self.template.named_parameters(), weights)]
        groups.append((self.template.named_buffers(), buffers))
        for group, out in groups:
            for name, like in group:
                rows, where = [], []
                split = padding.parts(self.config, name, like.dim())
                for tensors in own_tensors:
                    own = tensors.get(name)
                    if own is None:  # a layer this member does not have
                        own = torch.zeros((0,) * like.dim(), dtype=like.dtype, device=device)
                    rows.append(padding.embed(own.detach(), like.shape, split))
                    if out is weights:
                        ones = torch.ones_like(own)
                        where.append(padding.embed(ones, like.shape, split))
                out[name] = torch.stack(rows)
                if where:
                    masks.append(torch.stack(where).reshape(len(models), -1))
        return weights, buffers, torch.cat(masks, dim=1).bool()

    def _features(self, resolved: Sequence[Mapping[str, Any]], device: Any) -> torch.Tensor:
        """`[members, features]`: 1 on the head's input features each member has (RNNs)."""
        if not isinstance(self.template, SequenceClassifier):
            return torch.ones(len(resolved), 1, device=device)
        directions = self.template.directions
        full = directions * int(self.config["hidden_size"])
        rows = [
            padding.embed(
                torch.ones(directions * int(r["hidden_size"]), device=device),
                (full,),
                (directions,),
            )
            for r in resolved
        ]
        return torch.stack(rows)

    def _layer_masks(
        self, resolved: Sequence[Mapping[str, Any]], states: Sequence[torch.Tensor], device: Any
    ) -> LayerMasks | None:
        """The dropout between a GRU's or LSTM's layers, where a member has any."""
        if not isinstance(self.template, SequenceClassifier):
            return None
        masks = LayerMasks(
            states,
            [float(r["dropout"]) for r in resolved],
            [int(r["num_layers"]) for r in resolved],
            [int(r["hidden_size"]) for r in resolved],
            self.template.directions,
        )
        if not masks.layers:
            return None
        if torch.device(device).type != "cpu":
            raise ValueError(
                "fit_pack: a GRU or LSTM with dropout between its layers fuses on a CPU only "
                "(on a GPU torch's module draws those masks in cuDNN)"
            )
        return masks

    def _place_mask(self, name: str, mask: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        return padding.embed(mask, shape, padding.parts(self.config, name, mask.dim()), fill=1.0)

    def get_state(self) -> State:
        """The weights, buffers, generators, optimizer state and members still training."""
        return {
            "flat": self.flat,
            "buffers": self.buffers,
            "shuffle": [g.get_state() for g in self.shuffle],
            "masks": self.masks.get_state(),
            "layer_masks": [] if self.layer_masks is None else self.layer_masks.get_state(),
            "optimizer": self.optimizer.get_state(),
            "active": list(self.active),
        }

    @torch.no_grad()
    def set_state(self, state: State) -> None:
        """Put back what :meth:`get_state` took (in place: the weights stay views of one
        tensor)."""
        self.flat.copy_(state["flat"])
        for name, buffer in self.buffers.items():
            buffer.copy_(state["buffers"][name])
        for generator, saved in zip(self.shuffle, state["shuffle"], strict=True):
            generator.set_state(saved)
        self.masks.set_state(state["masks"])
        if self.layer_masks is not None:
            self.layer_masks.set_state(state["layer_masks"])
        self.optimizer.set_state(state["optimizer"])
        self.active = list(state["active"])

    @torch.no_grad()
    def member_state(self, k: int) -> Tensors:
        """Member `k`'s state dict as its own model (`create_model` of its configuration)
        names and shapes it, the padding cut away, on the CPU."""
        with torch.device("meta"):
            own = create_model(self.configs[k], self.data.input_shape, self.data.num_classes)
        state: Tensors = {}
        for name, like in own.state_dict().items():
            packed = padding.template_name(self.resolved[k], self.config, name)
            stacked = self.weights[packed] if packed in self.weights else self.buffers[packed]
            split = padding.parts(self.config, packed, like.dim())
            state[name] = padding.cut(stacked[k].detach(), like.shape, split).cpu()
        return state

    def forward(
        self, tensors: Tensors, x: torch.Tensor, lengths: torch.Tensor | None
    ) -> torch.Tensor:
        """Every member's logits `[members, batch, classes]` for `x` `[members, batch, ...]`."""
        if isinstance(self.template, SequenceClassifier):
            return recurrent.forward(self.template, tensors, x, lengths, self.depth, self.width)
        if self.dense:
            if self.padded:
                return dense.forward_padded(
                    self.template,  # type: ignore[arg-type]
                    tensors,
                    x,
                    self.depth,
                    self.residual,
                )
            return dense.forward(self.template, tensors, x)
        params = {name: tensors[name] for name in self.weights}
        buffers = {name: t for name, t in tensors.items() if name not in self.weights}
        return self._vmapped(params, buffers, x)

    def gradient(self) -> torch.Tensor:
        """The weights' gradients laid out as :attr:`flat`: zero where a weight has none, and
        on every padded place."""
        members = self.flat.shape[0]
        parts = [
            torch.zeros_like(w).reshape(members, -1)
            if w.grad is None
            else w.grad.reshape(members, -1)
            for w in self.weights.values()
        ]
        grad = torch.cat(parts, dim=1)
        if self.mask is not None:
            grad = torch.where(self.mask, grad, 0.0)
        return grad

    def train_epoch(self, count: int, size: int) -> list[float]:
        self.template.train()
        device = self.data.x_train.device
        orders = torch.stack([torch.randperm(count, generator=g) for g in self.shuffle]).to(device)
        active = torch.tensor(self.active, device=device)
        total = torch.zeros(len(self.active), device=device, dtype=torch.float64)
        lengths_all = self.data.lengths_train
        for step in range(batch_count(count, size)):
            idx = orders[:, step * size : (step + 1) * size]
            x, y = self.data.x_train[idx], self.data.y_train[idx]
            lengths = None if lengths_all is None else lengths_all[idx]
            noise = self.masks.draw(idx.shape[1], x.dtype, x.device)
            if self.layer_masks is not None:
                noise.update(self.layer_masks.draw(idx.shape[1], x.shape[2], x.dtype, x.device))
            logits = self.forward({**self.weights, **self.buffers, **noise}, x, lengths)
            losses = member_losses(logits, y)
            for weight in self.weights.values():
                weight.grad = None
            losses[active].sum().backward()
            self.optimizer.step(self.gradient())
            total += losses.detach().to(torch.float64) * idx.shape[1]
        return (total / count).tolist()  # one device sync per epoch

    @torch.no_grad()
    def evaluate(self) -> tuple[list[float], list[float]]:
        self.template.eval()
        members = self.flat.shape[0]
        x = self.data.x_valid.expand(members, *self.data.x_valid.shape)
        lengths = self.data.lengths_valid
        if lengths is not None:
            lengths = lengths.expand(members, -1)
        logits = self.forward({**self.weights, **self.buffers}, x, lengths)
        y = self.data.y_valid.expand(members, -1)
        losses = member_losses(logits, y)
        accuracy = (logits.argmax(dim=2) == y).float().mean(dim=1)
        return losses.tolist(), accuracy.tolist()


def member_losses(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each member's mean cross-entropy over its batch: [members, batch, classes] -> [members]."""
    members, batch, classes = logits.shape
    each = nn.functional.cross_entropy(
        logits.reshape(members * batch, classes), y.reshape(-1), reduction="none"
    )
    return each.view(members, batch).mean(dim=1)


def _tensors(model: nn.Module, config: Mapping[str, Any], shape: Mapping[str, Any]) -> Tensors:
    """A member's weights and buffers by the template's names."""
    own = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    return {padding.template_name(config, shape, name): t for name, t in own.items()}


def _residual_flags(models: Sequence[nn.Module], template: nn.Module, device: Any) -> torch.Tensor:
    """`[blocks, members]`: 1 where a member's dense block adds its input (an MLP's)."""
    blocks = sum(isinstance(m, DenseBlock) for m in template.modules())
    flags = torch.zeros(blocks, len(models), device=device)
    for k, model in enumerate(models):
        own = [m for m in model.modules() if isinstance(m, DenseBlock)]
        for number, block in enumerate(own):
            flags[number, k] = float(block.residual)
    return flags
