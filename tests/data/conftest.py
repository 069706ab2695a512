"""Fixtures of the data tests (helpers live in `data_helpers.py`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_helpers import distinct_frames, write


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A folder-per-class tree: 3 labels × 3 distinct clips (24 frames, ~100 px). Read-only."""
    root = tmp_path_factory.mktemp("tiny") / "ds"
    for c, label in enumerate(("a_left", "b_right", "c_still")):
        for i in range(3):
            write(root / label / f"{label}_{i}.mp4", distinct_frames(c * 10 + i))
    return root
