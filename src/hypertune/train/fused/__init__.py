"""Fused packs: the trials of a pack trained as one batched model (:mod:`.fit`).

- :mod:`.fit`: which trials may share a pack (:func:`pack_key`) and the pack's training loop;
- :mod:`.pack`: a pack's stacked weights, masks, generators and optimizer state;
- :mod:`.padding`: members of different width and depth laid into the pack's largest shape;
- :mod:`.dense`: an MLP's layers as batched products; :mod:`.recurrent`: GRU and LSTM steps;
- :mod:`.dropout`: each member's dropout masks, from its own generator.
"""

from hypertune.train.fused.fit import (
    FUSED_ARCHITECTURES,
    MEMBER_KEYS,
    RECURRENT,
    drops_between_layers,
    fit_pack,
    member_keys,
    pack_key,
)

__all__ = [
    "FUSED_ARCHITECTURES",
    "MEMBER_KEYS",
    "RECURRENT",
    "drops_between_layers",
    "fit_pack",
    "member_keys",
    "pack_key",
]
