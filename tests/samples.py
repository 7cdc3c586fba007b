"""Where the shared public sample messages live (never copied into the repository)."""

from __future__ import annotations

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent


def _find() -> Path:
    candidates = [
        os.environ.get("HUB_SAMPLES_DIR", ""),
        str(_ROOT.parent / "shared" / "samples"),
        "/work/shared/samples",
    ]
    for candidate in candidates:
        if candidate and Path(candidate, "README.md").is_file():
            return Path(candidate)
    raise RuntimeError(
        "sample messages not found: set HUB_SAMPLES_DIR to the shared samples folder"
    )


SAMPLES = _find()
