"""How far fused and alone float32 training part, against the noise of the seeds.

The 16 trials of an MLP study (2x64, Adam, digits, lr 1e-3:l4:1e-1 x dropout 0.1, 0.3 x seeds
0, 1, 15 epochs), with and without batchnorm, trained fused (as a study trains them) and alone
(`--no-fuse`) in float32, in one process. Prints each trial's final accuracy both ways, how far
the two modes part (median, largest), how far the two seeds of one configuration part (the
noise any answer carries), and the best configuration (mean valid_loss_best over the seeds)
each mode picks. In float64 the two modes agree to 1e-9 (tests/test_fused.py): what differs
in float32 is rounding, which training at a high learning rate amplifies.

    python benchmarks/fused_rounding.py
"""

from __future__ import annotations

import itertools
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from hypertune.data import load_dataset
from hypertune.train import TrainSettings, fit
from hypertune.train.fused import fit_pack

BASE = {"architecture": "mlp", "hidden_size": 64, "num_layers": 2, "batch_size": 64,
        "activation": "relu", "optimizer": "adam"}  # fmt: skip
CASES = list(itertools.product([0.001, 0.004642, 0.02154, 0.1], [0.1, 0.3], [0, 1]))
SETTINGS = TrainSettings(epochs=15)


def train(batchnorm: bool, fused: bool) -> list[dict[str, float]]:
    data = load_dataset("digits")
    configs = [
        {**BASE, "batchnorm": batchnorm, "lr": lr, "dropout": dropout} for lr, dropout, _ in CASES
    ]
    seeds = [seed for *_, seed in CASES]
    if fused:
        return fit_pack(configs, data, SETTINGS, seeds)
    return [fit(c, data, SETTINGS, seed=s) for c, s in zip(configs, seeds, strict=True)]


def best(metrics: list[dict[str, float]]) -> tuple[float, float]:
    by_config: dict[tuple[float, float], list[float]] = {}
    for (lr, dropout, _), m in zip(CASES, metrics, strict=True):
        by_config.setdefault((lr, dropout), []).append(m["valid_loss_best"])
    return min(by_config, key=lambda k: statistics.mean(by_config[k]))


def main() -> None:
    for batchnorm in (True, False):
        fused, alone = train(batchnorm, True), train(batchnorm, False)
        print(f"\nbatchnorm = {batchnorm}\nlr        dropout seed  fused    alone    |diff|")
        for (lr, dropout, seed), f, a in zip(CASES, fused, alone, strict=True):
            diff = abs(f["accuracy"] - a["accuracy"])
            print(f"{lr:<9g} {dropout:<7g} {seed:<5d} {f['accuracy']:.4f}   "
                  f"{a['accuracy']:.4f}   {diff:.4f}")  # fmt: skip
        apart = [abs(f["accuracy"] - a["accuracy"]) for f, a in zip(fused, alone, strict=True)]
        seeds = [abs(alone[i]["accuracy"] - alone[i + 1]["accuracy"]) for i in range(0, 16, 2)]
        print(f"fused vs alone: accuracy |diff| median {statistics.median(apart):.4f}, "
              f"max {max(apart):.4f}")  # fmt: skip
        print(f"seed 0 vs seed 1 (alone): accuracy |diff| median {statistics.median(seeds):.4f}, "
              f"max {max(seeds):.4f}")  # fmt: skip
        print(f"best: fused {best(fused)}, alone {best(alone)}")


if __name__ == "__main__":
    main()
