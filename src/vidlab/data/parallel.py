"""One helper for per-file work: map a function over items, spread by an *engine*.

An engine is how the work is spread, never a second copy of it: `local` runs it in a process
pool on this machine, `ray` as Ray Data tasks on a Ray cluster (a local one when no address is
given). Scanning, cleaning, transcoding, sharding and indexing all call `parallel_map`, so the
same function of one file runs whatever the engine, and the outputs are the same.

With Ray the items stream through Ray Data (`ray.data.from_items` → `map_batches`, one CPU a
task, one block a chunk of items): it schedules on the cluster's CPUs with backpressure, and it
is what clusters run for batch work. Items and results cross Ray Data's Arrow blocks as pickled
bytes (our own objects between our own processes, never a user's file): the results are nested
Python objects (reason tuples, 64-bit unsigned hashes, dicts of metadata, arrays) that must come
back exactly as the local engine returns them.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import pickle
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from vidlab.errors import EngineError

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")

@dataclass(frozen=True)
class Engine:
    """How per-file work is spread: `name` "local" (process pool) or "ray" (Ray Data tasks on the
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
    with process_pool(workers) as pool:
        return list(_progress(pool.map(fn, items, chunksize=chunksize), len(items), progress, desc))


@contextlib.contextmanager
def process_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of `workers` forked processes that start safely from a process that has already
    trained or run a model.

    Fork, because workers then inherit the imported modules and start in milliseconds, not
    seconds. Two things make a fork after work unsafe, and both are handled here: FFmpeg's
    garbage (`fork_safe`), and PyTorch's OpenMP pool — a child forked after the parent ran a
    parallel region hangs for ever at its own first one (GNU OpenMP keeps the parent's
    threads' state), so each worker runs PyTorch on one thread, which is also what a pool of
    one process per core should do.
    """
    import multiprocessing as mp

    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
    with fork_safe(), ProcessPoolExecutor(workers, mp_context=ctx,
                                          initializer=_one_thread_worker) as pool:
        yield pool


def _one_thread_worker() -> None:
    """Start of a pool worker: PyTorch (when the parent imported it) on one thread."""
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


class _Guarded:
    """`fn`, with an exception turned into `on_error(item, exc)` (picklable for any engine)."""

    def __init__(self, fn: Callable[[Any], Any], on_error: Callable[[Any, BaseException], Any]):
        self.fn, self.on_error = fn, on_error

    def __call__(self, item: Any) -> Any:
        try:
            return self.fn(item)
        except Exception as exc:  # the item's failure is a row of the report
            return self.on_error(item, exc)


def ray_module(engine: Engine):
    """The `ray` module, connected to `engine.address` (or a local instance, started once)."""
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data needs pandas and pyarrow: the `ray` extra)
    except ImportError:
        raise EngineError("--engine ray needs Ray Data: pip install -c constraints.txt "
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
    """`parallel_map` on Ray Data; results in item order.

    A block whose task fails twice (its worker died: a crash in FFmpeg, a killed node) is
    skipped, not fatal; its items are then rerun one per block, so one bad file costs one row
    (`on_error`), not its chunk and not the map.
    """
    if not items:
        return []
    ray_module(engine)
    results: dict[int, Any] = {}
    todo = list(range(len(items)))
    lost: dict[int, BaseException] = {}
    passes = (chunksize, 1) if chunksize > 1 else (1,)
    with _progress_counter(len(items), progress, desc) as advance:
        for n, per_block in enumerate(passes):
            errors = _run_blocks(fn, items, todo, per_block, results, advance)
            todo = [k for k in todo if k not in results]
            if not todo:
                break
            lost = dict.fromkeys(todo, errors[-1] if errors else EngineError("no result"))
            if n + 1 < len(passes):
                log.warning("%d Ray Data task(s) failed (%s); rerunning their %d items one "
                            "by one", len(errors), _describe(errors), len(todo))
    for k in todo:
        if on_error is None:
            raise EngineError(f"the Ray task for {items[k]!r} failed: {_describe([lost[k]])}")
        results[k] = on_error(items[k], lost[k])
        advance()
    return [results[k] for k in range(len(items))]


def _run_blocks(fn: Callable[[Any], Any], items: list[Any], keys: list[int], per_block: int,
                results: dict[int, Any], advance: Callable[[int], None]) -> list[BaseException]:
    """Run `fn` on `items[k]` for `k` in `keys` as one Ray Data dataset of `per_block` items a
    block; fill `results[k]` as blocks finish and return the errors of the blocks that failed."""
    import warnings

    import ray.data

    rows = [{"k": k, "item": pickle.dumps(items[k])} for k in keys]
    ds = ray.data.from_items(rows, override_num_blocks=-(-len(rows) // per_block))
    ds.context.max_errored_blocks = -1  # a failed block is reported below, not fatal
    ds.context.enable_progress_bars = False
    ds.context.print_on_execution_start = False
    with warnings.catch_warnings():
        # Ray Data retries a dead task forever by default; `max_retries` is only reachable
        # through the remote args that Ray 2.60 marks deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        ds = ds.map_batches(functools.partial(_run_batch, fn), batch_size=None,
                            batch_format="numpy", num_cpus=1, max_retries=1)
    with _ray_data_errors() as errors:
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for k, result in zip(batch["k"], batch["result"], strict=True):
                results[int(k)] = pickle.loads(result)
            advance(len(batch["k"]))
    return errors


def _run_batch(fn: Callable[[Any], Any], batch: dict[str, Any]) -> dict[str, Any]:
    """One Ray Data block: `fn` on each pickled item, results pickled back."""
    import numpy as np

    out = np.empty(len(batch["item"]), dtype=object)
    for i, item in enumerate(batch["item"]):
        out[i] = pickle.dumps(fn(pickle.loads(item)))
    return {"k": batch["k"], "result": out}


@contextlib.contextmanager
def _ray_data_errors() -> Iterator[list[BaseException]]:
    """The errors of the blocks Ray Data skipped, collected from its log instead of being
    printed with a traceback on the console (the caller reports them as rows)."""
    logger = logging.getLogger("ray.data")
    errors: list[BaseException] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.ERROR and record.exc_info and record.exc_info[1]:
                errors.append(record.exc_info[1])

    consoles = [h for h in logger.handlers if type(h) is not logging.FileHandler
                and isinstance(h, logging.StreamHandler)]
    levels = [h.level for h in consoles]
    collect = Collect()
    logger.addHandler(collect)
    for h in consoles:
        h.setLevel(logging.CRITICAL)
    try:
        yield errors
    finally:
        logger.removeHandler(collect)
        for h, level in zip(consoles, levels, strict=True):
            h.setLevel(level)


def _describe(errors: list[BaseException]) -> str:
    return "; ".join(sorted({f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                             for e in errors})) or "no error reported"


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


@contextlib.contextmanager
def _progress_counter(total: int, show: bool, desc: str) -> Iterator[Callable[..., None]]:
    """`advance(n=1)` moves vidlab's progress bar (stderr, quiet under `--quiet`) when `show`."""
    from vidlab.progress import progress

    with progress(total=total, desc=desc, enabled=None if show else False) as bar:
        yield lambda n=1: bar.update(n)
