"""GPU packing: trials per minute of plain Ray Tune against hypertune, side by side in one run.

The reference grid: a GRU over hidden_size 32-256 x num_layers 1-4 (16 trials; `--repeats 4`
makes the 64-trial version), 5 epochs, 2,600 synthetic sequences of 30 x 3 in 20 classes, batch
32. Both ways keep the whole data set on the GPU and reuse actors; each packs K trials on the one
GPU (`gpus_per_trial = 1/K`).

Usage (on a machine with a CUDA GPU): python benchmarks/gpu_bench.py [--packs 1 4 8 16]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

HIDDEN = [32, 64, 128, 256]
LAYERS = [1, 2, 3, 4]
EPOCHS = 5
BATCH = 32


def synthetic_sequences() -> Any:
    """2,600 sequences of 30 steps x 3 features, 20 classes, with a learnable class signal."""
    import numpy as np

    from hypertune.data import make_bundle

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 20, size=2600)
    steps = np.linspace(0, 1, 30)[None, :, None]
    signal = np.sin(2 * np.pi * (labels[:, None, None] + 1) * steps / 7.0)
    features = (signal + rng.normal(0, 0.5, size=(2600, 30, 3))).astype("float32")
    return make_bundle("synthetic-seq", features, labels, 20, np.full(2600, 30))


def plain_trainable(config: dict[str, Any], data: Any) -> None:
    """Plain Ray Tune: whole tensors on the GPU, index batching, one report per epoch."""
    import torch
    from ray import tune

    from hypertune.models import create_model

    device = torch.device("cuda")
    x, y = data.x_train.to(device), data.y_train.to(device)
    xv, yv = data.x_valid.to(device), data.y_valid.to(device)
    model = create_model(
        {
            "architecture": "gru",
            "hidden_size": config["hidden_size"],
            "num_layers": config["num_layers"],
        },
        data.input_shape,
        data.num_classes,
    ).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(EPOCHS):
        model.train()
        order = torch.randperm(len(y), device=device)
        for start in range(0, len(y), BATCH):
            idx = order[start : start + BATCH]
            optimizer.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            valid_loss = float(loss_fn(model(xv), yv))
        tune.report({"valid_loss": valid_loss})


def run_plain(data: Any, pack: int, repeats: int, storage: str) -> float:
    from ray import tune

    space = {
        "hidden_size": tune.grid_search(HIDDEN),
        "num_layers": tune.grid_search(LAYERS),
    }
    tuner = tune.Tuner(
        tune.with_resources(
            tune.with_parameters(plain_trainable, data=data), {"cpu": 1, "gpu": 1 / pack}
        ),
        param_space=space,
        tune_config=tune.TuneConfig(num_samples=repeats, reuse_actors=True),
        run_config=tune.RunConfig(name=f"plain{pack}", storage_path=storage, verbose=0),
    )
    start = time.perf_counter()
    tuner.fit()
    return time.perf_counter() - start


def run_hypertune(pack: int, repeats: int, storage: str) -> float:
    from hypertune.config import from_dict
    from hypertune.search import run_study

    config = from_dict(
        {
            "study": {
                "name": f"ht{pack}-{repeats}",
                "data": "synthetic-seq",
                "epochs": EPOCHS,
                "samples": repeats,
            },
            "model": {"architecture": "gru", "batch_size": BATCH, "lr": 1e-3},
            "space": {"hidden_size": HIDDEN, "num_layers": LAYERS},
            "resources": {"cpus_per_trial": 1, "gpus_per_trial": 1 / pack},
        }
    )
    start = time.perf_counter()
    run_study(config, storage)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packs", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--repeats", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    import ray
    import torch

    from hypertune.data import register_dataset

    data = synthetic_sequences()
    register_dataset("synthetic-seq")(lambda: data)
    ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    print(f"GPU: {torch.cuda.get_device_name(0)}; CPUs: {os.cpu_count()}")
    print("| trials | per GPU | plain Ray trials/min | hypertune trials/min | ratio |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as storage:
        for repeats in args.repeats:
            for pack in args.packs:
                trials = len(HIDDEN) * len(LAYERS) * repeats
                plain = trials / run_plain(data, pack, repeats, storage) * 60
                ours = trials / run_hypertune(pack, repeats, storage) * 60
                print(f"| {trials} | {pack} | {plain:.1f} | {ours:.1f} | {ours / plain:.2f} |")
                sys.stdout.flush()
    ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
