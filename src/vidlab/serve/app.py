"""The HTTP app: `create_app(bundles)` returns a FastAPI app serving one or several bundles.

Routes: `POST /v1/predict` (multipart field `file`; `?model=NAME`), `GET /v1/model`,
`GET /v1/models`, `GET /healthz`, `GET /readyz`, `GET /metrics` (Prometheus text), `GET /`
(the web page, no external assets) and the Open Inference Protocol v2 routes under `/v2`
(`vidlab.serve.oip`).
Every error is JSON: `{"error": {"status", "type", "message"}}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry, Counter
from starlette.exceptions import HTTPException as StarletteHTTPException

from vidlab.bundle import Bundle
from vidlab.errors import VidlabError
from vidlab.serve.auth import ApiKeys, RateLimiter
from vidlab.serve.gateway import Drain, Gateway
from vidlab.serve.limits import Limits
from vidlab.serve.model_metrics import exposition
from vidlab.serve.oip import oip_router
from vidlab.serve.oip_codec import HEADER_LENGTH
from vidlab.serve.predict import Predictor
from vidlab.serve.problems import HTTPProblem
from vidlab.serve.registry import ModelRegistry, UnknownModelError, bundle_paths
from vidlab.serve.service import PredictionService

STATIC = Path(__file__).with_name("static")


def create_app(bundle: Bundle | str | Path | Predictor | Sequence[Bundle | str | Path | Predictor],
               *, runtime: str = "auto",
               max_batch: int = 8, max_wait_ms: float = 10.0, max_upload_mb: float = Limits.max_upload_mb,
               max_duration_s: float = Limits.max_duration_s, timeout_s: float = Limits.timeout_s,
               queue_size: int = Limits.queue_size, max_clips: int = Limits.max_clips,
               db: str | Path | None = None, retention_days: float | None = 30.0,
               temp_dir: str | Path | None = None, decode_workers: int | None = None,
               window: float = 2.0, stride: float = 1.0, watch: list[str] | None = None,
               watch_options: dict[str, Any] | None = None,
               reload_poll_s: float = 0.0, api_keys: str | Path | ApiKeys | None = None,
               rate_limit: float = 0.0, rate_burst: int = 20, cors: Sequence[str] = (),
               access_log: bool = True,
               max_connections: int = Limits.max_connections,
               header_timeout_s: float = Limits.header_timeout_s,
               body_timeout_s: float = Limits.body_timeout_s,
               min_upload_kb_s: float = Limits.min_upload_kb_s) -> FastAPI:
    """A FastAPI app predicting with `bundle`: a path, a `Bundle`, a ready `Predictor`, a
    directory of `*.vidlab` bundles, or a list of those (several models, each by its name).

    `db` is the SQLite prediction log (none when `None`); `temp_dir` is where uploads are
    staged (a private temporary directory by default); `window`/`stride` (seconds) are the
    default timeline of long videos, overridable per request with query parameters. Memory is
    bounded by about `queue_size × max_clips` preprocessed clips per model, upload disk space by
    `max_connections × max_upload_mb`. The connection limits (`max_connections`,
    `header_timeout_s`) take effect in the server `vidlab.serve.server.server_config` makes.
    `reload_poll_s` > 0 checks the bundles on disk that often and reloads one that was replaced
    (`vidlab.serve.registry`). `watch` lists live sources to watch beside uploads, with the
    first model (`vidlab.serve.live`; `watch_options` are `WatchOptions` fields), shown by
    `GET /v1/streams` and the web page. Each bundle is checked whole here (`BundleError` naming
    the file and field); one that fails its warm-up makes the server fail to start, every
    upload directory removed.

    Security (`vidlab.serve.gateway`): `api_keys` (a key file or `ApiKeys`) requires
    `Authorization: Bearer KEY` on every route but liveness and the page's static files;
    `rate_limit` > 0 allows each key (or client address) that many requests per second, in
    bursts of `rate_burst`; `cors` lists the origins allowed to call from a browser (none by
    default). `app.state.drain` is what `vidlab.serve.drain.run_server` drains on SIGTERM.
    """
    keys = api_keys if isinstance(api_keys, ApiKeys) or api_keys is None else \
        ApiKeys.load(api_keys)
    limits = Limits(max_upload_mb, max_duration_s, timeout_s, queue_size, max_clips,
                    max_connections, header_timeout_s, body_timeout_s, min_upload_kb_s)

    def load(source: Bundle | str | Path | Predictor) -> PredictionService:
        predictor = source if isinstance(source, Predictor) else Predictor(source, runtime)
        return PredictionService(
            predictor, max_batch=max_batch, max_wait_ms=max_wait_ms, limits=replace(limits),
            db=db, retention_days=retention_days, temp_dir=temp_dir,
            decode_workers=decode_workers, window=window, stride=stride)

    services: list[PredictionService] = []
    try:
        for source in _sources(bundle):
            services.append(load(source))
    except BaseException:
        for service in services:
            service.stop()
        raise
    registry = ModelRegistry(services, load)

    streams = None
    if watch:
        from vidlab.serve.live import LiveStreams

        watcher = registry.pin(registry.get().service)  # streams keep this version until exit
        streams = LiveStreams(watcher.predictor, list(watch), watcher.batcher,
                              watcher.metrics.registry, timeout_s, db=db,
                              retention_days=retention_days, **(watch_options or {}))

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        try:
            await registry.start()
        except BaseException:
            registry.stop()  # never ready, and no upload directory left behind
            raise
        if streams is not None:
            streams.start()
        if reload_poll_s > 0:
            registry.spawn(registry.watch(reload_poll_s))
        try:
            yield
        finally:
            if streams is not None:
                streams.stop()
            registry.stop()

    first = registry.get().service
    # no Swagger/ReDoc pages: they load their assets from a CDN, and servers may be offline
    app = FastAPI(title="vidlab", version=first.predictor.version, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.registry = registry
    app.state.service = first  # the first model's service as loaded (before any reload)
    app.state.drain = drain = Drain()
    server_metrics = CollectorRegistry()
    refusals = Counter("vidlab_http_refusals", "Requests refused before any route, by reason "
                       "(unauthorized, forbidden, rate_limited, draining).", ["reason"],
                       registry=server_metrics)
    app.add_middleware(Gateway, drain=drain, keys=keys, log_access=access_log, refusals=refusals,
                       limiter=RateLimiter(rate_limit, rate_burst) if rate_limit > 0 else None)
    if cors:  # outermost, so that refusals carry CORS headers too
        app.add_middleware(CORSMiddleware, allow_origins=list(cors), allow_methods=["*"],
                           allow_headers=["Authorization", "Content-Type", "X-Request-ID",
                                          HEADER_LENGTH],
                           expose_headers=["X-Request-ID", "Retry-After", HEADER_LENGTH])
    _add_error_handlers(app, registry)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(oip_router(registry, lambda: drain.draining))
    model_query = Query(None, description="served model name (default: the first one)")

    @app.post("/v1/predict")
    async def predict(request: Request,
                      top_k: int = Query(5, ge=1, le=1000, description="labels to return"),
                      window: float | None = Query(None, ge=0, le=3600,
                                                   description="timeline window, s (0: none)"),
                      stride: float | None = Query(None, gt=0, le=3600,
                                                   description="timeline step, s"),
                      model: str | None = model_query) -> Response:
        """Predict the labels of one uploaded video (multipart field `file`)."""
        with registry.use(model) as service:
            status, body, headers = await service.handle(
                request, top_k, service.window if window is None else window,
                service.stride if stride is None else stride)
        return JSONResponse(body, status_code=status, headers=headers)

    @app.get("/v1/model")
    async def model_info(model: str | None = model_query) -> dict[str, Any]:
        """The served model: labels, preprocessing, version, runtime, metrics and limits."""
        served = registry.get(model)
        service = served.service
        predictor, b = service.predictor, service.predictor.bundle
        return {"name": b.path.name, "model_name": served.name, "version": predictor.version,
                "runtime": predictor.runtime, "skipped_runtimes": predictor.skipped_runtimes,
                "task": b.task, "labels": predictor.labels, "model": b.model_spec,
                "preprocess": predictor.preprocess.to_dict(), "metrics": b.metrics,
                "versions": b.config.get("versions", {}),
                "limits": vars(service.limits),
                "batching": {"max_batch": service.max_batch, "max_wait_ms": service.max_wait_ms},
                "timeline": {"window": service.window, "stride": service.stride}}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        """Every served model: name, version, runtime and labels (the first is the default)."""
        return {"default": registry.default,
                "models": [{"name": m.name, "version": m.service.predictor.version,
                            "runtime": m.service.predictor.runtime,
                            "labels": m.service.predictor.labels}
                           for m in registry.models.values()]}

    @app.get("/v1/streams")
    async def live_streams() -> dict[str, Any]:
        """The watched live streams (`--watch`): status, newest labels, open events."""
        return streams.snapshot() if streams is not None else {"streams": [], "events": []}

    @app.post("/v1/models/{name}/reload")
    async def reload_model(name: str) -> Response:
        """Load `name`'s bundle again and switch to it once warm (admin key only)."""
        try:
            return JSONResponse(await registry.reload(name))
        except UnknownModelError:
            raise
        except VidlabError as exc:
            return HTTPProblem(422, "reload_failed",
                               f"{exc} — the previous version keeps serving").response()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        """Readiness: every model warmed up, its batcher running, no drain started, and an
        inference slot free (503 with `"status": "saturated"` while a model's every slot is
        taken, so a balancer sends work elsewhere); `in_flight`, `queue_size`, `uploading` of
        the default model, and of each under `models`."""
        up = registry.ready and not drain.draining
        saturated = up and any(m.service.saturated for m in registry.models.values())
        status = "saturated" if saturated else "ready" if up else "not ready"
        first = registry.get().service
        return JSONResponse({"status": status, "in_flight": first.in_flight,
                             "queue_size": first.limits.queue_size,
                             "uploading": first.uploading,
                             "models": {m.name: {"in_flight": m.service.in_flight,
                                                 "queue_size": m.service.limits.queue_size,
                                                 "uploading": m.service.uploading,
                                                 "saturated": m.service.saturated}
                                        for m in registry.models.values()}},
                            status_code=200 if status == "ready" else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus metrics of this server, labelled by model and version."""
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(exposition(registry.services(), server_metrics),
                        media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    return app


def _sources(bundle: Any) -> list[Any]:
    """The bundles to serve, directories of bundles expanded."""
    items = list(bundle) if isinstance(bundle, (list, tuple)) else [bundle]
    out: list[Any] = []
    for item in items:
        out.extend(bundle_paths([item]) if isinstance(item, (str, Path)) else [item])
    return out


def _add_error_handlers(app: FastAPI, registry: ModelRegistry) -> None:
    """Every error, including FastAPI's own (404, bad query), in the one JSON shape."""

    @app.exception_handler(HTTPProblem)
    async def _problem(_: Request, exc: HTTPProblem) -> Response:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return HTTPProblem(exc.status_code, kind, str(exc.detail)).response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                 for e in exc.errors()]
        problem = HTTPProblem(422, "invalid_request", "; ".join(parts))
        if request.url.path == "/v1/predict":
            with suppress(UnknownModelError):
                await registry.get(request.query_params.get("model")).service.reject(problem)
        return problem.response()

    @app.exception_handler(UnknownModelError)
    async def _unknown_model(_: Request, exc: UnknownModelError) -> Response:
        return HTTPProblem(404, "unknown_model", str(exc)).response()
