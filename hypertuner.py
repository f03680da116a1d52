"""Entry point: `python hypertuner.py [command ...]` (see `--help`)."""

import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
NEEDED = ("torch", "ray", "pandas")  # found without importing them (cheap)

# Run under the checkout's .venv (made by `make install`) when started by another Python that
# lacks hypertune's packages, e.g. `python3 hypertuner.py` without activating the environment.
if any(importlib.util.find_spec(name) is None for name in NEEDED):
    python = VENV / "bin" / "python"
    if python.is_file() and Path(sys.prefix).resolve() != VENV.resolve():
        os.execv(python, [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    print(
        f"error: {sys.executable} lacks {', '.join(missing)}; run `make install` in {ROOT} "
        "(it makes .venv), then `source .venv/bin/activate`",
        file=sys.stderr,
    )
    sys.exit(2)

# Let a plain checkout run without installing: the package lives in src/.
sys.path.insert(0, str(ROOT / "src"))

from hypertune.cli import entry  # noqa: E402

if __name__ == "__main__":
    entry()
