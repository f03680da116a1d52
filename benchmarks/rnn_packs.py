"""A pack of the default study's GRUs of one width (depths 3, 2, 1) against the three trained alone.

In this process, one torch thread, 8 epochs of digits read as 8 steps: `fit_pack` of the three
against `fit_module` of each (torch's `nn.GRU`), one width after another, the pack first.
`--tree` imports hypertune from another checkout (an older revision's `git worktree`), so two
revisions' packs compare in neighbouring runs. `--dropout P` drops out between the layers (and
before the head), the pack drawing each member's masks as torch's module draws them alone.

Usage: python benchmarks/rnn_packs.py [--tree DIR] [--widths 8,16,32,64] [--architecture gru]
       [--dropout P]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument("--widths", default="8,16,32,64")
    parser.add_argument("--architecture", default="gru", choices=("gru", "lstm"))
    parser.add_argument("--dropout", type=float, default=0.0)
    args = parser.parse_args()
    sys.path.insert(0, str(args.tree.resolve() / "src"))
    import torch

    from hypertune.config import load_config
    from hypertune.data import load_dataset
    from hypertune.train import TrainSettings, fit_module
    from hypertune.train.fused import fit_pack

    torch.set_num_threads(1)
    config = load_config(ROOT / "configs" / "default.toml", {})
    data = load_dataset(config.data)
    model = {**config.model, "architecture": args.architecture, "dropout": args.dropout}
    settings = TrainSettings(epochs=8)
    warm = [{**model, "num_layers": 1, "hidden_size": 8}] * 2
    fit_pack(warm, data, TrainSettings(epochs=1), [0, 1])  # the first step's imports
    print(f"{args.architecture} packs of depths 3, 2, 1, dropout {args.dropout}, from {args.tree}:")
    for width in (int(w) for w in args.widths.split(",")):
        configs = [{**model, "num_layers": d, "hidden_size": width} for d in (3, 2, 1)]
        start = time.perf_counter()
        fit_pack(configs, data, settings, [0, 0, 0])
        pack = time.perf_counter() - start
        start = time.perf_counter()
        for c in configs:
            fit_module(c, data, settings, seed=0)
        alone = time.perf_counter() - start
        print(f"  {width:4d} units: pack {pack:5.2f} s, alone {alone:5.2f} s, {pack / alone:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
