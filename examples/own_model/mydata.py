"""Data of your own for hypertune: `data = "mydata:load"` in the study file.

Return the train and validation split as arrays (NumPy or torch): features first, then class
indices 0..C-1. hypertune derives the classes, the input shape and the fingerprint.
"""

import numpy as np


def load(noise: float = 0.05, examples: int = 1200) -> tuple[np.ndarray, ...]:
    """Three interleaved spirals in 2-D, split 80/20 with a fixed seed."""
    rng = np.random.default_rng(0)
    labels = np.arange(examples) % 3
    radius = rng.uniform(0.2, 1.0, examples)
    angle = 4.0 * np.pi * radius + labels * 2.0 * np.pi / 3.0
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    points += rng.normal(0.0, noise, points.shape)
    cut = int(0.8 * examples)
    return points[:cut], labels[:cut], points[cut:], labels[cut:]
