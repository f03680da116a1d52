"""Configurable models from plain values: `create_model(config, input_shape, num_classes)`.

Architectures: `mlp`, `cnn` (plain | residual | squeeze_excite | inception blocks), `gru`,
`lstm`, and mltrainer's course models `mltrainer_gru` and `mltrainer_mlp`. Each builder's keyword
parameters are its keys, with their defaults and types (`architectures()[name].defaults`); unknown
names and keys are errors listing the valid ones. A user's own builder is named `module:callable`
(:mod:`hypertune.models.user`) and is read the same way.
"""

from hypertune.models import conv, dense, recurrent  # noqa: F401  (registers architectures)
from hypertune.models.registry import (
    ACTIVATIONS,
    TRAINER_KEYS,
    Architecture,
    TrainerKeys,
    architectures,
    count_parameters,
    create_model,
    register_architecture,
    register_model,
    resolve_config,
)
from hypertune.models.user import use_model, use_recorded_model

__all__ = [
    "ACTIVATIONS",
    "TRAINER_KEYS",
    "Architecture",
    "TrainerKeys",
    "architectures",
    "count_parameters",
    "create_model",
    "register_architecture",
    "register_model",
    "resolve_config",
    "use_model",
    "use_recorded_model",
]
