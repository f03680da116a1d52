"""Dropout masks drawn from each trial's own generator, the same alone as in a fused pack.

A model's `nn.Dropout` layers draw from torch's global generator, which a fused pack cannot
share out among its members. hypertune's own training (`hypertune.train.fit_module` and the
fused packs of `hypertune.train.fused`) replaces them with :class:`Noise` layers and draws each
step's masks here: member by member, layer by layer, from a generator seeded with the trial's
seed. A trial thus sees the same masks alone and in any pack.

The dropout between the layers of torch's own `nn.GRU`/`nn.LSTM` stays in torch's module, which
draws it from the global generator; :class:`LayerMasks` draws a pack member's masks as the
module draws them for the trial alone.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn

# Offset of a trial's dropout stream from its seed (its batch order uses the seed itself).
DROPOUT_STREAM = 0x5EED_D0


class Noise(nn.Module):
    """Dropout with a given mask: multiplies by its `noise` buffer while training."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("noise", torch.ones(()), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        noise: torch.Tensor = self.noise  # type: ignore[assignment]
        return x * noise if self.training else x


class DropoutMasks:
    """The dropout masks of one trial or of each member of a pack, step by step.

    Building it replaces the dropout layers of `model` (the pack's template, or a lone trial's
    model): by :class:`Noise` where any member drops out, else by nothing.
    """

    def __init__(
        self,
        model: nn.Module,
        dropout: Sequence[float],
        seeds: Sequence[int],
        input_shape: tuple[int, ...],
    ) -> None:
        self.dropout = list(dropout)
        self.names = _replace_dropout(model, any(p > 0 for p in self.dropout))
        self.generators = [torch.Generator().manual_seed(int(s) + DROPOUT_STREAM) for s in seeds]
        self.input_shape = input_shape
        self.probe = copy.deepcopy(model).to("meta") if self.names else None
        self.cache: dict[int, list[tuple[int, ...]]] = {}

    def get_state(self) -> list[torch.Tensor]:
        """Where each member's generator stands (to continue from a checkpoint)."""
        return [generator.get_state() for generator in self.generators]

    def set_state(self, states: list[torch.Tensor]) -> None:
        for generator, state in zip(self.generators, states, strict=True):
            generator.set_state(state)

    def draw(self, batch: int, dtype: torch.dtype, device: torch.device) -> dict[str, torch.Tensor]:
        """Each dropout layer's masks for one step of `batch` examples, `[members, *shape]`,
        keyed by the name of the layer's noise buffer (empty where nothing drops out)."""
        out = {}
        for name, shape in zip(self.names, self.shapes(batch), strict=True):
            masks = []
            for p, generator in zip(self.dropout, self.generators, strict=True):
                if p == 0:
                    masks.append(torch.ones(shape, dtype=dtype))
                    continue
                mask = torch.empty(shape, dtype=dtype).bernoulli_(1 - p, generator=generator)
                masks.append(mask.div_(1 - p))
            out[name] = torch.stack(masks).to(device)
        return out

    def shapes(self, batch: int) -> list[tuple[int, ...]]:
        """The input shape of each dropout layer for a batch of `batch` examples."""
        if batch not in self.cache and self.probe is not None:
            shapes: list[tuple[int, ...]] = []
            hooks = [
                module.register_forward_hook(
                    lambda _m, args, _out: shapes.append(tuple(args[0].shape))
                )
                for module in self.probe.modules()
                if isinstance(module, Noise)
            ]
            self.probe.train()
            with torch.no_grad():  # on the meta device: shapes only, no arithmetic
                self.probe(torch.empty((batch, *self.input_shape), device="meta"))
            for hook in hooks:
                hook.remove()
            self.cache[batch] = shapes
        return self.cache.get(batch, [])


class PackMasks:
    """The dropout masks of a pack whose members may differ in width and depth.

    Each member draws its masks as it draws them alone (its own shapes, its own generator); they
    are padded into the pack's shapes with ones (`place` puts a member's mask, shaped as its own
    layer's input, into the template's), and a layer a member lacks gets ones.
    """

    def __init__(
        self,
        template: nn.Module,
        models: Sequence[nn.Module],
        dropout: Sequence[float],
        seeds: Sequence[int],
        input_shape: tuple[int, ...],
        place: Callable[[str, torch.Tensor, tuple[int, ...]], torch.Tensor],
    ) -> None:
        self.members = [
            DropoutMasks(model, [p], [seed], input_shape)
            for model, p, seed in zip(models, dropout, seeds, strict=True)
        ]
        # The template's dropout layers and their shapes; its own generator draws nothing.
        self.layout = DropoutMasks(template, [max(dropout, default=0.0)], [0], input_shape)
        self.names = self.layout.names
        self.place = place

    def get_state(self) -> list[torch.Tensor]:
        return [state for masks in self.members for state in masks.get_state()]

    def set_state(self, states: list[torch.Tensor]) -> None:
        for masks, state in zip(self.members, states, strict=True):
            masks.set_state([state])

    def draw(self, batch: int, dtype: torch.dtype, device: torch.device) -> dict[str, torch.Tensor]:
        """As :meth:`DropoutMasks.draw`, every member's masks in the template's shapes."""
        if not self.names:
            return {}
        shapes = dict(zip(self.names, self.layout.shapes(batch), strict=True))
        cpu = torch.device("cpu")
        stacks: dict[str, list[torch.Tensor]] = {name: [] for name in self.names}
        for masks in self.members:
            own = masks.draw(batch, dtype, cpu)
            for name, stack in stacks.items():
                shape = shapes[name]
                mask = own.get(name)
                stack.append(
                    torch.ones(shape, dtype=dtype)
                    if mask is None
                    else self.place(name, mask[0], shape)
                )
        return {name: torch.stack(stack).to(device) for name, stack in stacks.items()}


class LayerMasks:
    """The masks a GRU or LSTM member drops between its layers, as torch's module draws them.

    On a CPU `nn.GRU`/`nn.LSTM` drops a layer's outputs (`[steps, batch, directions x width]`,
    every layer but the top one) with a mask it draws from torch's global generator at each
    training step, layer after layer; in a lone trial nothing else draws from that generator
    once its model is built (the head's dropout and the batch order have generators of their
    own). Each member here draws from a generator that starts where the global one stood just
    after its model was built (`states`), so it gets the masks it gets alone.
    """

    def __init__(
        self,
        states: Sequence[torch.Tensor],
        dropout: Sequence[float],
        depth: Sequence[int],
        width: Sequence[int],
        directions: int,
    ) -> None:
        self.dropout, self.depth, self.width = list(dropout), list(depth), list(width)
        self.directions = directions
        self.generators = []
        for state in states:
            generator = torch.Generator()
            generator.set_state(state)
            self.generators.append(generator)
        self.layers = max(
            (d - 1 for d, p in zip(self.depth, self.dropout, strict=True) if p > 0), default=0
        )

    def get_state(self) -> list[torch.Tensor]:
        return [generator.get_state() for generator in self.generators]

    def set_state(self, states: list[torch.Tensor]) -> None:
        for generator, state in zip(self.generators, states, strict=True):
            generator.set_state(state)

    def draw(
        self, batch: int, steps: int, dtype: torch.dtype, device: torch.device
    ) -> dict[str, torch.Tensor]:
        """The masks on each layer's outputs below the top one, `rnn.noise_l<layer>`: `[members,
        batch, steps, directions x width]` in the pack's width (ones where a member drops
        nothing there, and on its padding); empty where no member drops between layers."""
        full = max(self.width)
        out = {}
        for layer in range(self.layers):
            rows = []
            for k, generator in enumerate(self.generators):
                row = torch.ones(batch, steps, self.directions * full, dtype=dtype)
                p, own = self.dropout[k], self.width[k]
                if p > 0 and self.depth[k] > layer + 1:
                    shape = (steps, batch, self.directions * own)  # the module's, time first
                    mask = torch.empty(shape, dtype=dtype).bernoulli_(1 - p, generator=generator)
                    mask = mask.div_(1 - p).transpose(0, 1)
                    for side in range(self.directions):  # each direction at its own place
                        place = row[..., side * full : side * full + own]
                        place.copy_(mask[..., side * own : (side + 1) * own])
                rows.append(row)
            out[f"rnn.noise_l{layer}"] = torch.stack(rows).to(device)
        return out


def _replace_dropout(model: nn.Module, noisy: bool) -> list[str]:
    """Dropout layers become :class:`Noise`, or nothing where no member drops out; returns the
    names of the noise buffers, in the model's order."""
    names = []
    for name, module in list(model.named_modules()):
        if not isinstance(module, nn.Dropout):
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, Noise() if noisy else nn.Identity())
        if noisy:
            names.append(f"{name}.noise")
    return names
