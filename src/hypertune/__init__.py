"""hypertune: how do two hyperparameters of my PyTorch model interact?"""

__version__ = "0.1.0"
