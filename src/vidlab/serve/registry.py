"""Several models in one server, each replaceable while it serves (hot reload).

Each served model is a name (its bundle's directory name without `.vidlab`) bound to one
`PredictionService` (its predictor, micro-batcher, decode pool and metrics). A request takes a
*lease* on the service it starts with and keeps it to the end, whatever happens meanwhile.

A reload loads the bundle again beside the running version, warms it up, and only then rebinds
the name (one assignment in the event loop: atomic for every request that starts after it).
The old service is *retired*: it keeps running until its last lease is returned (or
`retire_timeout_s` passes), then stops. A bundle that fails to load or warm up is rejected with
a `BundleError` and the old version keeps serving. `watch` polls the bundles on disk and
reloads one whose files changed and then stayed the same for one poll (a copy in progress is
never loaded half-written).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidlab.errors import BundleError, VidlabError
from vidlab.serve.service import PredictionService

log = logging.getLogger(__name__)

BUNDLE_SUFFIX = ".vidlab"


class UnknownModelError(VidlabError):
    """A request named a model this server does not serve."""


def bundle_paths(paths: list[str | Path]) -> list[Path]:
    """The bundles to serve: each path is a bundle, or a directory holding `*.vidlab` bundles."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir() and not (p / "config.json").exists():
            inner = sorted(q for q in p.iterdir() if q.is_dir() and q.name.endswith(BUNDLE_SUFFIX))
            if not inner:
                raise BundleError(f"neither a bundle nor a directory of {BUNDLE_SUFFIX} bundles",
                                  p)
            found.extend(inner)
        else:
            found.append(p)
    return found


def model_name(path: Path) -> str:
    return path.name.removesuffix(BUNDLE_SUFFIX)


def disk_signature(path: Path) -> tuple | None:
    """What changes when a bundle is rewritten or replaced (None while it is missing)."""
    try:
        top = path.stat()
        files = sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns)
                       for e in os.scandir(path) if e.is_file())
    except OSError:
        return None
    return (top.st_ino, top.st_mtime_ns, tuple(files))


@dataclass
class ServedModel:
    """One name and the service currently answering for it."""

    name: str
    path: Path
    service: PredictionService
    signature: tuple | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ModelRegistry:
    """The served models by name (their services not started yet); `load(path)` makes a
    service for a bundle path, as a reload needs."""

    def __init__(self, services: list[PredictionService],
                 load: Callable[[Path], PredictionService], retire_timeout_s: float = 120.0):
        self._load = load
        self.retire_timeout_s = retire_timeout_s
        self.models: dict[str, ServedModel] = {}
        self.retiring: list[PredictionService] = []
        self._leases: dict[int, int] = {}
        self._pinned: set[int] = set()
        self._tasks: set[asyncio.Task] = set()
        for service in services:
            path = service.predictor.bundle.path
            name = model_name(path)
            if name in self.models:
                for s in services:
                    s.stop()
                raise BundleError(f"two bundles are named '{name}' (the second is this one); "
                                  "models are served by their directory name", path)
            self.models[name] = ServedModel(name, path, service, disk_signature(path))
        if not self.models:
            raise BundleError("no bundle to serve", Path("."))
        self.default = next(iter(self.models))

    # --- lookup -----------------------------------------------------------------------------

    def get(self, name: str | None = None) -> ServedModel:
        """The model called `name` (the first one served when `None`)."""
        model = self.models.get(self.default if name is None else name)
        if model is None:
            raise UnknownModelError(f"no model named '{name}' (served: "
                                    f"{', '.join(self.models)})")
        return model

    @contextmanager
    def use(self, name: str | None = None) -> Iterator[PredictionService]:
        """Hold the service of `name` for one request: a reload meanwhile does not stop it."""
        service = self.get(name).service
        key = id(service)
        self._leases[key] = self._leases.get(key, 0) + 1
        try:
            yield service
        finally:
            self._leases[key] -= 1
            if not self._leases[key]:
                del self._leases[key]

    def pin(self, service: PredictionService) -> PredictionService:
        """Keep `service` running until the server stops, even once a reload replaced it
        (live streams hold their batcher for the whole run)."""
        self._pinned.add(id(service))
        return service

    def services(self) -> list[tuple[str, PredictionService]]:
        """Every running service: the current ones, then the retiring ones."""
        current = [(m.name, m.service) for m in self.models.values()]
        return current + [(model_name(s.predictor.bundle.path), s) for s in self.retiring]

    @property
    def ready(self) -> bool:
        return all(m.service.ready and m.service.batcher.running for m in self.models.values())

    def in_use(self) -> int:
        """Requests holding a lease right now (on any version)."""
        return sum(self._leases.values())

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        for model in self.models.values():
            await model.service.start()

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for model in self.models.values():
            model.service.stop()
        for service in self.retiring:
            service.stop()
        self.retiring.clear()

    def spawn(self, coro: Any) -> asyncio.Task:
        """Run `coro` in the background, kept referenced until it ends, cancelled at stop."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- reload -----------------------------------------------------------------------------

    async def reload(self, name: str) -> dict[str, Any]:
        """Load `name`'s bundle again and switch to it once warm; `BundleError` keeps the old.

        Returns `{"model", "previous_version", "version", "reloaded"}`; `reloaded` is false
        when the files on disk hold the version already serving.
        """
        model = self.get(name)
        async with model.lock:
            signature = disk_signature(model.path)
            old = model.service
            try:
                new = await asyncio.to_thread(self._load, model.path)
            except VidlabError:
                raise
            except Exception as exc:  # whatever a broken bundle makes the loaders raise
                raise BundleError(f"cannot load ({type(exc).__name__}: {exc})",
                                  model.path) from exc
            model.signature = signature
            result = {"model": name, "previous_version": old.predictor.version,
                      "version": new.predictor.version, "reloaded": False}
            if new.predictor.version == old.predictor.version:
                await asyncio.to_thread(new.stop)
                return result
            try:
                await new.start()
            except Exception as exc:
                await asyncio.to_thread(new.stop)
                raise BundleError(f"the new version failed its warm-up ({exc})",
                                  model.path) from exc
            model.service = new  # from here on, new requests get the new version
            self.retiring.append(old)
            self.spawn(self._retire(old))
            log.info("model %s reloaded: %s -> %s", name, old.predictor.version,
                     new.predictor.version)
            result["reloaded"] = True
            return result

    async def _retire(self, service: PredictionService) -> None:
        """Stop a replaced service once no request holds it (or after the retire timeout);
        a pinned one runs on until `stop`."""
        if id(service) in self._pinned:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retire_timeout_s
        while self._leases.get(id(service)) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if service in self.retiring:
            self.retiring.remove(service)
        await asyncio.to_thread(service.stop)

    async def watch(self, poll_s: float) -> None:
        """Reload a bundle whose files changed on disk and then held still for one poll."""
        seen = {m.name: m.signature for m in self.models.values()}
        while True:
            await asyncio.sleep(poll_s)
            for model in list(self.models.values()):
                now = disk_signature(model.path)
                before, seen[model.name] = seen.get(model.name), now
                if now is None or now != before or now == model.signature:
                    continue  # missing, still changing, or the version already loaded
                try:
                    await self.reload(model.name)
                except VidlabError as exc:
                    model.signature = now  # retried only once the files change again
                    log.error("reload of %s rejected, the old version keeps serving: %s",
                              model.name, exc)
