"""Progress bars (tqdm) that stay quiet when logging is quiet or output is not a terminal."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

T = TypeVar("T")


def progress_enabled() -> bool:
    """Bars show unless VIDLAB_PROGRESS=0 or the root logger is at ERROR (`--quiet`)."""
    if os.environ.get("VIDLAB_PROGRESS") == "0":
        return False
    return logging.getLogger().getEffectiveLevel() < logging.ERROR


def progress(iterable: Iterable[T] | None = None, total: int | None = None, desc: str = "",
             enabled: bool | None = None, **kwargs: Any):
    """A tqdm bar on stderr (a no-op bar when disabled); use `.set_postfix` for live figures."""
    from tqdm.auto import tqdm

    show = progress_enabled() if enabled is None else enabled
    return tqdm(iterable, total=total, desc=desc, disable=not show, file=sys.stderr,
                dynamic_ncols=True, leave=False, **kwargs)
