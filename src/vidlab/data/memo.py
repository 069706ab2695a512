"""Per-file measurements made once per process: the recipe's fingerprint and the data-stats
baseline decode the same clips on every run, so `vidlab tune`'s trials (and the test suite's
many runs on one dataset) would otherwise decode them again for each run.

A result is kept under its job and its file's identity (device, inode, size, mtime, ctime): an
edited or replaced file is measured again. A file changed within the last `RACY_S` seconds is
not kept at all (as git does with its index: a second edit in the same clock tick would leave
the identity unchanged).
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from vidlab.data.parallel import Engine, as_engine, parallel_map

MAX_RESULTS = 20_000
RACY_S = 2.0
_RESULTS: OrderedDict[str, Any] = OrderedDict()


def file_map(fn: Callable[[Any], Any], jobs: list[Any], workers: int | None = None,
             keep: Callable[[Any], bool] | None = None,
             engine: Engine | str | None = None, **parallel: Any) -> list[Any]:
    """`parallel_map(fn, jobs, workers, engine=engine, **parallel)` for jobs `path` or
    `(path, *args)` whose result depends only on the file and the args: a job already run in
    this process on the unchanged file is not run again (its result is returned as a copy).
    `keep(result)` False leaves a result out of the memo (a transient failure, say). Another
    engine than the local one always runs every job: it is asked for to run the work there."""
    if as_engine(engine).name != "local":
        return parallel_map(fn, jobs, workers, engine=engine, **parallel)
    keys = [_key(fn, job) for job in jobs]
    results: list[Any] = [None] * len(jobs)
    todo = []
    for i, key in enumerate(keys):
        if key is not None and key in _RESULTS:
            _RESULTS.move_to_end(key)
            results[i] = copy.deepcopy(_RESULTS[key])
        else:
            todo.append(i)
    if todo:
        done = parallel_map(fn, [jobs[i] for i in todo], workers, **parallel)
        for i, result in zip(todo, done, strict=True):
            results[i] = result
            if keys[i] is not None and (keep is None or keep(result)):
                _RESULTS[keys[i]] = copy.deepcopy(result)
        while len(_RESULTS) > MAX_RESULTS:
            _RESULTS.popitem(last=False)
    return results


def _key(fn: Callable[[Any], Any], job: Any) -> str | None:
    """The job's key, or None when its file cannot be identified safely (missing, or changed
    too recently to tell a second change apart)."""
    path, args = (job[0], list(job[1:])) if isinstance(job, tuple) else (job, [])
    try:
        st = os.stat(path)
    except (OSError, TypeError, ValueError):
        return None
    if time.time() - max(st.st_mtime, st.st_ctime) < RACY_S:
        return None
    identity = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
    return (f"{fn.__module__}.{fn.__qualname__}|{path}|{identity}|"
            f"{json.dumps(args, sort_keys=True, default=str)}")
