"""Public sample messages from other projects, kept in the repository under tests/data/.

Each file's source, commit and licence are listed in tests/data/README.md. Nothing here reads a
path outside the repository: the suite must pass on a fresh clone.
"""

from __future__ import annotations

from pathlib import Path

SAMPLES = Path(__file__).resolve().parent / "data"
