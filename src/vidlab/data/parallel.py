"""One helper for per-file work: map a function over items, spread by an *engine*.

An engine is how the work is spread, never a second copy of it: `local` runs it in a process
pool on this machine, `ray` as Ray tasks on a Ray cluster (a local one when no address is
given). Scanning, cleaning, transcoding, sharding and indexing all call `parallel_map`, so the
same function of one file runs whatever the engine, and the outputs are the same.

Ray is used through plain tasks (`ray.remote` on a chunk of items), not Ray Data: the per-file
results here are nested Python objects (reason tuples, 64-bit unsigned hashes, dicts of
metadata) gathered into one report, which Ray Data's Arrow blocks would have to convert and
back, and Ray Data would pull pandas and pyarrow into the install for no gain.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from vidlab.errors import EngineError

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")

@dataclass(frozen=True)
class Engine:
    """How per-file work is spread: `name` "local" (process pool) or "ray" (Ray tasks on the
    cluster at `address`; None starts or joins a local Ray instance)."""

    name: str = "local"
    address: str | None = None

    def __post_init__(self) -> None:
        if self.name not in ENGINES:
            raise EngineError(f"unknown engine {self.name!r} (choose one of: {', '.join(ENGINES)})")


def as_engine(engine: Engine | str | None, address: str | None = None) -> Engine:
    """An `Engine` from a name (default "local"; an `address` means Ray), keeping an `Engine`
    as it is."""
    if isinstance(engine, Engine):
        return engine
    return Engine("ray" if address else (engine or "local"), address)


def parallel_map(fn: Callable[[Any], Any], items: list[Any], workers: int | None = None,
                 progress: bool = False, desc: str = "working", chunksize: int = 4,
                 engine: Engine | str | None = None,
                 on_error: Callable[[Any, BaseException], Any] | None = None) -> list[Any]:
    """`[fn(x) for x in items]`, order kept, spread by `engine` (default: local processes).

    `workers` caps the local pool (default: all cores; unused by Ray, which schedules on the
    cluster's CPUs). `on_error(item, exc)`, when given, turns an item whose work raised (or,
    with Ray, whose worker process died) into a result row instead of failing the whole map.
    """
    engine = as_engine(engine)
    if on_error is not None:
        fn = _Guarded(fn, on_error)
    if engine.name == "ray":
        return _ray_map(fn, items, engine, progress, desc, chunksize, on_error)
    workers = max(1, min(workers or (os.cpu_count() or 1), len(items) or 1))
    if workers == 1 or len(items) < 4:
        return list(_progress(map(fn, items), len(items), progress, desc))
    import multiprocessing as mp

    # fork: workers inherit imported modules, so start-up is milliseconds, not seconds.
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
    with fork_safe(), ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        return list(_progress(pool.map(fn, items, chunksize=chunksize), len(items), progress, desc))


class _Guarded:
    """`fn`, with an exception turned into `on_error(item, exc)` (picklable for any engine)."""

    def __init__(self, fn: Callable[[Any], Any], on_error: Callable[[Any, BaseException], Any]):
        self.fn, self.on_error = fn, on_error

    def __call__(self, item: Any) -> Any:
        try:
            return self.fn(item)
        except Exception as exc:  # the item's failure is a row of the report
            return self.on_error(item, exc)


def _run_chunk(fn: Callable[[Any], Any], chunk: list[Any]) -> list[Any]:
    return [fn(x) for x in chunk]


def ray_module(engine: Engine):
    """The `ray` module, connected to `engine.address` (or a local instance, started once)."""
    try:
        import ray
    except ImportError:
        raise EngineError("--engine ray needs Ray: pip install -c constraints.txt "
                          "'vidlab[ray]'") from None
    # a local start can miss Ray's 30 s raylet registration on a loaded machine: retry it
    attempts = 1 if engine.address else 3
    for attempt in range(attempts):
        if ray.is_initialized():
            break
        try:
            # workers must import vidlab as this process does (the same source tree)
            env = {"env_vars": {k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}}
            ray.init(address=engine.address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False, runtime_env=env)
        except Exception as exc:
            ray.shutdown()
            if attempt == attempts - 1:
                where = engine.address or "a local instance"
                raise EngineError(f"cannot start or reach Ray at {where} "
                                  f"({type(exc).__name__}: {exc})") from None
    return ray


def _ray_map(fn: Callable[[Any], Any], items: list[Any], engine: Engine, progress: bool,
             desc: str, chunksize: int,
             on_error: Callable[[Any, BaseException], Any] | None) -> list[Any]:
    """`parallel_map` on Ray: one task per chunk of items; results in item order."""
    if not items:
        return []
    ray = ray_module(engine)
    task = ray.remote(num_cpus=1, max_retries=1)(_run_chunk)
    chunks = [items[i:i + chunksize] for i in range(0, len(items), chunksize)]
    fn_ref = ray.put(fn)
    pending = {task.remote(fn_ref, chunk): k for k, chunk in enumerate(chunks)}
    results: list[list[Any] | None] = [None] * len(chunks)

    def finished() -> Iterator[Any]:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                k = pending.pop(ref)
                try:
                    results[k] = ray.get(ref)
                except Exception as exc:  # a lost worker (a crash in FFmpeg, a killed node)
                    results[k] = _one_by_one(ray, task, fn_ref, chunks[k], exc, on_error)
                yield from results[k]

    for _ in _progress(finished(), len(items), progress, desc):
        pass
    return [r for chunk in results for r in chunk]


def _one_by_one(ray: Any, task: Any, fn_ref: Any, chunk: list[Any], exc: BaseException,
                on_error: Callable[[Any, BaseException], Any] | None) -> list[Any]:
    """Rerun a failed chunk's items alone, so one bad file costs one row, not the chunk."""
    log.warning("a Ray task failed (%s: %s); retrying its %d items one by one",
                type(exc).__name__, exc, len(chunk))
    out = []
    for item in chunk:
        try:
            out += ray.get(task.options(max_retries=0).remote(fn_ref, [item]))
        except Exception as item_exc:
            if on_error is None:
                raise EngineError(f"Ray task for {item!r} failed: {item_exc}") from None
            out.append(on_error(item, item_exc))
    return out


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
