"""Configurable models from plain values: `create_model(config, input_shape, num_classes)`.

Architectures: `mlp`, `cnn` (plain | residual | squeeze_excite | inception blocks), `gru`,
`lstm`, and mltrainer's course models `mltrainer_gru` and `mltrainer_mlp`. Every key of each has
a default (`architectures()[name].defaults`); unknown names and keys are errors listing the valid
ones.
"""

from hypertune.models import conv, dense, recurrent  # noqa: F401  (registers architectures)
from hypertune.models.registry import (
    ACTIVATIONS,
    TRAINER_KEYS,
    Architecture,
    architectures,
    create_model,
    register_model,
    resolve_config,
)

__all__ = [
    "ACTIVATIONS",
    "TRAINER_KEYS",
    "Architecture",
    "architectures",
    "create_model",
    "register_model",
    "resolve_config",
]
