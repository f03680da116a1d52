"""Entry point: `python hypertuner.py [command ...]` (see `--help`)."""

import sys
from pathlib import Path

# Let a plain checkout run without installing: the package lives in src/.
sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from hypertune.cli import entry

if __name__ == "__main__":
    entry()
