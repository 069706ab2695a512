"""Fixtures of the io tests: the test videos of `io_clips`, made once per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from io_clips import BUILDERS


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """`clip(name)`: the path of one of `BUILDERS`' videos, encoded on first use."""
    root = tmp_path_factory.mktemp("io_clips")
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            made[name] = BUILDERS[name](root / name)
        return made[name]

    return get
