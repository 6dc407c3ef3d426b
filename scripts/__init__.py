"""Command-line entry points: the dev stack, the demo, the ENG5 NP runner, benchmarks.

Importing this package (``python -m scripts.…``) puts the repository root and ``libs/`` on
``sys.path``, so the entry points work even in an environment that the bootstrap
(``run.py``, which writes a .pth file) did not set up.
"""

import sys
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[1]
for _path in (str(_REPO_ROOT), str(_REPO_ROOT / "libs")):
    if _path not in sys.path:
        sys.path.insert(0, _path)
