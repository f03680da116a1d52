"""A model of your own for hypertune: `architecture = "mynet:build"` in the study file.

hypertune calls `build(input_shape=..., num_classes=..., **keys)`; the keyword parameters below
are the keys that [model] and [space] may set, and their defaults the values used otherwise.
"""

from torch import nn


def build(
    input_shape: tuple[int, ...],
    num_classes: int,
    width: int = 32,
    depth: int = 2,
    dropout: float = 0.0,
    activation: str = "relu",
) -> nn.Module:
    """A small MLP: `depth` hidden layers of `width` units."""
    act = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}[activation]
    features = 1
    for size in input_shape:
        features *= size
    layers: list[nn.Module] = [nn.Flatten()]
    for _ in range(depth):
        layers += [nn.Linear(features, width), act(), nn.Dropout(dropout)]
        features = width
    layers.append(nn.Linear(features, num_classes))
    return nn.Sequential(*layers)
