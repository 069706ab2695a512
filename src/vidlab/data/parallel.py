"""One helper: map a function over items in worker processes, with an optional progress bar."""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def parallel_map(fn: Callable[[Any], Any], items: list[Any], workers: int | None = None,
                 progress: bool = False, desc: str = "working", chunksize: int = 4) -> list[Any]:
    """`[fn(x) for x in items]`, in `workers` processes (default: all cores), order kept."""
    workers = max(1, min(workers or (os.cpu_count() or 1), len(items) or 1))
    if workers == 1 or len(items) < 4:
        return list(_progress(map(fn, items), len(items), progress, desc))
    import multiprocessing as mp

    # fork: workers inherit imported modules, so start-up is milliseconds, not seconds.
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
    with fork_safe(), ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        return list(_progress(pool.map(fn, items, chunksize=chunksize), len(items), progress, desc))


@contextlib.contextmanager
def fork_safe() -> Iterator[None]:
    """Fork worker processes inside this block so they never free the parent's garbage.

    FFmpeg objects (decoders, scalers) own threads; a forked child has none of them, and if its
    garbage collector frees such an object inherited from the parent (say, a frame kept alive by
    a reference cycle) the free joins a thread that does not exist and the child hangs forever.
    So: collect the parent's garbage first (where the threads exist), then freeze what is left
    so children never scan it.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _progress(items: Iterable[Any], total: int, show: bool, desc: str) -> Iterator[Any]:
    """`items` with vidlab's progress bar (stderr, quiet under `--quiet`) when `show`."""
    if not show:
        yield from items
        return
    from vidlab.progress import progress

    with progress(items, total=total, desc=desc) as bar:
        yield from bar
