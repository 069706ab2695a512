"""The prediction service behind the HTTP routes: upload, admission, decode, batch, log.

A request's upload streams to a temp file first, at the pace the upload limits allow, holding
no inference slot: slow clients cost a connection, never other clients' answers. Then it is
admitted only while fewer than `queue_size` are in flight (else a 503 with `Retry-After`,
which the client can read since its body has been received), so memory cannot grow with load.
A pool thread decodes it (several uploads decode in parallel), its clips join the
micro-batcher's queue, and the answer is assembled from their rows. Decode and inference run
under one timeout; the temp file is removed when the request ends, whatever the outcome.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from starlette.requests import Request

from vidlab.errors import BundleError, VidlabError
from vidlab.runtime import check_output, first_line, runtime_file
from vidlab.serve.batcher import MicroBatcher
from vidlab.serve.limits import Limits
from vidlab.serve.log import PredictionLog
from vidlab.serve.metrics import ServeMetrics
from vidlab.serve.predict import DecodedVideo, Predictor
from vidlab.serve.problems import HTTPProblem, problem_for
from vidlab.serve.upload import Upload, save_upload

log = logging.getLogger(__name__)


class PredictionService:
    """Owns the model, the batcher, the decode pool, the metrics and the prediction log."""

    def __init__(self, predictor: Predictor, *, max_batch: int = 8, max_wait_ms: float = 10.0,
                 limits: Limits | None = None, db: str | Path | None = None,
                 retention_days: float | None = 30.0, temp_dir: str | Path | None = None,
                 decode_workers: int | None = None, window: float = 2.0, stride: float = 1.0):
        self.predictor = predictor
        self.limits = limits or Limits()
        self.window, self.stride = window, stride
        self.max_batch, self.max_wait_ms = max_batch, max_wait_ms
        self.metrics = ServeMetrics(max_batch)
        self.batcher = MicroBatcher(predictor.probabilities, max_batch, max_wait_ms / 1000.0,
                                    on_batch=self._on_batch)
        self.metrics.clips_waiting.set_function(self.batcher.pending)
        workers = decode_workers or max(1, len(os.sched_getaffinity(0)))
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="vidlab-decode")
        self.log = PredictionLog(db, retention_days) if db else None
        self._own_temp = temp_dir is None  # made last: nothing after it can fail
        self.temp_dir = Path(temp_dir or tempfile.mkdtemp(prefix="vidlab-uploads-"))
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        self.in_flight = 0
        self.uploading = 0
        self.warm = False
        self.ready = False

    # --- lifecycle --------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Run the model at every batch size once; `BundleError` if it cannot (wrong outputs).

        Runtimes build kernels per input shape (oneDNN primitives, ORT memory plans); doing
        that now keeps the first requests of each batch size from paying for it.
        """
        pre = self.predictor.preprocess
        clip = (3, pre.num_frames, pre.crop_size, pre.crop_size)
        model_file = self.predictor.bundle.file(runtime_file(self.predictor.runtime))
        for n in range(1, self.max_batch + 1):
            try:
                out = self.predictor.probabilities(np.zeros((n, *clip), np.float32))
            except Exception as exc:  # whatever the runtime raises: this bundle cannot serve
                raise BundleError(f"cannot run a batch of {n} clip(s) ({first_line(exc)})",
                                  model_file) from exc
            check_output(out, n, len(self.predictor.labels), model_file)
        self.warm = True

    async def start(self) -> None:
        """Warm up (unless done), start the batcher, then report ready."""
        if not self.warm:
            await asyncio.to_thread(self.warm_up)
        self.batcher.start()
        self.ready = True
        self.metrics.ready.set(1)

    @property
    def saturated(self) -> bool:
        """Every inference slot is taken: a new upload would be answered 503."""
        return self.in_flight >= self.limits.queue_size

    def stop(self) -> None:
        self.ready = False
        self.metrics.ready.set(0)
        self.batcher.stop()
        self.pool.shutdown(wait=True, cancel_futures=True)
        if self.log is not None:
            self.log.close()
        if self._own_temp:
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    # --- one request ------------------------------------------------------------------------

    async def handle(self, request: Request, top_k: int, window: float | None,
                     stride: float | None) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Answer one `POST /v1/predict`: `(status, JSON body, extra headers)`."""
        t0 = time.perf_counter()
        row: dict[str, Any] = {"model_version": self.predictor.version,
                               "runtime": self.predictor.runtime}
        upload = None
        try:
            upload = await self._receive(request)
            self._admit()
            try:
                work = self._predict(upload, top_k, window, stride, row)
                body = await asyncio.wait_for(work, self.limits.timeout_s)
            finally:
                self.in_flight -= 1
                self.metrics.queue_depth.dec()
            return await self._finish(t0, row, None, body)
        except asyncio.TimeoutError:
            problem = HTTPProblem(504, "timeout", f"the prediction took longer than "
                                  f"{self.limits.timeout_s:g} s (--timeout-s)")
            return await self._finish(t0, row, problem)
        except HTTPProblem as problem:
            return await self._finish(t0, row, problem)
        except Exception:
            log.exception("unexpected failure in /v1/predict")
            problem = HTTPProblem(500, "internal_error",
                                  "the server failed on this video; see its log")
            return await self._finish(t0, row, problem)
        finally:
            if upload is not None:  # a decode still running holds the file open: safe
                upload.path.unlink(missing_ok=True)

    async def _receive(self, request: Request) -> Upload:
        """The upload, saved at the pace the limits allow (no inference slot is held)."""
        self.uploading += 1
        self.metrics.uploads.inc()
        try:
            return await save_upload(request, self.temp_dir,
                                     int(self.limits.max_upload_mb * 2**20), self.limits.pace)
        finally:
            self.uploading -= 1
            self.metrics.uploads.dec()

    def _admit(self) -> None:
        """Take an inference slot, or raise the 503 a client should retry after."""
        if self.saturated:
            raise HTTPProblem(503, "overloaded",
                              f"the server is busy ({self.in_flight} requests in flight, "
                              "--queue-size); retry shortly", {"Retry-After": "1"})
        self.in_flight += 1
        self.metrics.queue_depth.inc()

    async def reject(self, problem: HTTPProblem) -> None:
        """Count and log a predict request refused before it reached `handle` (bad query)."""
        row = {"model_version": self.predictor.version, "runtime": self.predictor.runtime}
        await self._finish(time.perf_counter(), row, problem)

    async def _predict(self, upload: Upload, top_k: int, window: float | None,
                       stride: float | None, row: dict[str, Any]) -> dict[str, Any]:
        try:
            decoded = await self._decode(upload.path, window, stride)
        except VidlabError as exc:
            raise problem_for(exc, upload.filename) from None
        row.update(decoded.info)
        row.update(decoded.features, decode_ms=decoded.decode_s * 1e3,
                   num_clips=len(decoded.clips))
        t = time.perf_counter()
        probs = await self._infer(decoded.clips)
        row["inference_ms"] = (time.perf_counter() - t) * 1e3
        result = self.predictor.result(upload.filename, decoded.plans, decoded.windowed, probs,
                                       top_k)
        result["video"] = {k: decoded.info.get(k) for k in
                           ("width", "height", "fps", "duration", "num_frames", "codec")}
        result["input"] = decoded.features
        row.update(top_label=result["top"][0]["label"], confidence=result["top"][0]["prob"])
        return result

    async def _decode(self, path: Path, window: float | None,
                      stride: float | None) -> DecodedVideo:
        """Decode in the pool (a cancelled request leaves the job to finish on its own)."""
        job: Future = self.pool.submit(self.predictor.decode, path, window, stride,
                                       self.limits.max_duration_s, self.limits.max_clips)
        decoded = await asyncio.wrap_future(job)
        self.metrics.decode_time.observe(decoded.decode_s)
        info = decoded.info
        self.metrics.input_width.observe(info["width"])
        self.metrics.input_height.observe(info["height"])
        self.metrics.input_duration.observe(info["duration"])
        return decoded

    async def _infer(self, clips: list[np.ndarray]) -> np.ndarray:
        jobs = [self.batcher.submit(c) for c in clips]
        try:
            rows = await asyncio.gather(*(asyncio.wrap_future(j) for j in jobs))
        finally:
            for j in jobs:
                j.cancel()  # a timed-out request's clips are skipped by the batcher
        return np.stack(rows)

    async def infer_tensor(self, clips: np.ndarray) -> np.ndarray:
        """Probabilities (`B×K`) of preprocessed clips (`float32 B×C×T×H×W`): admitted, batched,
        timed, counted and logged like an upload's clips (the OIP v2 infer route)."""
        t0 = time.perf_counter()
        row: dict[str, Any] = {"model_version": self.predictor.version,
                               "runtime": self.predictor.runtime, "num_clips": len(clips)}
        try:
            self._admit()
        except HTTPProblem as problem:
            await self._finish(t0, row, problem)
            raise
        try:
            probs = await asyncio.wait_for(self._infer(list(clips)), self.limits.timeout_s)
        except asyncio.TimeoutError:
            problem = HTTPProblem(504, "timeout", f"the inference took longer than "
                                  f"{self.limits.timeout_s:g} s (--timeout-s)")
            await self._finish(t0, row, problem)
            raise problem from None
        finally:
            self.in_flight -= 1
            self.metrics.queue_depth.dec()
        row["inference_ms"] = (time.perf_counter() - t0) * 1e3
        mean = probs.mean(axis=0)
        top = int(np.argmax(mean))
        row.update(top_label=self.predictor.labels[top], confidence=float(mean[top]))
        self.metrics.predictions.labels(row["top_label"]).inc()
        await self._finish(t0, row, None)
        return probs

    def _on_batch(self, size: int, seconds: float) -> None:
        self.metrics.batch_size.observe(size)
        self.metrics.inference_time.observe(seconds)

    async def _finish(self, t0: float, row: dict[str, Any], problem: HTTPProblem | None,
                      body: dict[str, Any] | None = None
                      ) -> tuple[int, dict[str, Any], dict[str, str]]:
        latency = time.perf_counter() - t0
        status = problem.status if problem else 200
        self.metrics.requests.labels(str(status)).inc()
        self.metrics.latency.observe(latency)
        if problem is None and body is not None:
            self.metrics.predictions.labels(body["top"][0]["label"]).inc()
            body["timing_ms"] = {"total": round(latency * 1e3, 2),
                                 "decode": round(row.get("decode_ms", 0.0), 2),
                                 "inference": round(row.get("inference_ms", 0.0), 2)}
        row.update(status=status, latency_ms=latency * 1e3, error=problem.kind if problem else None)
        if self.log is not None:
            try:
                await asyncio.to_thread(self.log.append, row)
            except Exception:  # a full disk must not turn answers into errors
                log.exception("could not append to the prediction log")
        if problem is not None:
            return status, problem.body(), problem.headers
        return status, body or {}, {}
