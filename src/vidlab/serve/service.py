"""The prediction service behind the HTTP routes: admission, upload, decode, batch, log.

A request is admitted only while fewer than `queue_size` are in flight (else 503 at once, before
its body is read), so memory cannot grow with load. Its upload streams to a temp file, a pool
thread decodes it (several uploads decode in parallel), its clips join the micro-batcher's
queue, and the answer is assembled from their rows. The whole request runs under one timeout;
the temp file is removed by whoever holds it last, even after a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from starlette.requests import Request

from vidlab.errors import VidlabError
from vidlab.serve.batcher import MicroBatcher
from vidlab.serve.log import PredictionLog
from vidlab.serve.metrics import ServeMetrics
from vidlab.serve.predict import DecodedVideo, Predictor
from vidlab.serve.problems import HTTPProblem, problem_for
from vidlab.serve.upload import save_upload

log = logging.getLogger(__name__)


@dataclass
class Limits:
    """What one request may cost; every field has a `vidlab serve` flag of the same name."""

    max_upload_mb: float = 100.0
    max_duration_s: float = 600.0
    timeout_s: float = 60.0
    queue_size: int = 16
    max_clips: int = 32  # timeline windows per video (the stride widens to fit)


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
        self._own_temp = temp_dir is None
        self.temp_dir = Path(temp_dir or tempfile.mkdtemp(prefix="vidlab-uploads-"))
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        self.log = PredictionLog(db, retention_days) if db else None
        self.in_flight = 0
        self.ready = False

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Warm the model up at every batch size, start the batcher, then report ready.

        Runtimes build kernels per input shape (oneDNN primitives, ORT memory plans); doing
        that now keeps the first requests of each batch size from paying for it.
        """
        pre = self.predictor.preprocess
        clip = (3, pre.num_frames, pre.crop_size, pre.crop_size)
        for n in range(1, self.max_batch + 1):
            await asyncio.to_thread(self.predictor.probabilities, np.zeros((n, *clip), np.float32))
        self.batcher.start()
        self.ready = True
        self.metrics.ready.set(1)

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
        if self.in_flight >= self.limits.queue_size:
            problem = HTTPProblem(503, "overloaded",
                                  f"the server is busy ({self.in_flight} requests in flight, "
                                  "--queue-size); retry shortly", {"Retry-After": "1"})
            return await self._finish(t0, row, problem)
        self.in_flight += 1
        self.metrics.queue_depth.inc()
        try:
            work = self._predict(request, top_k, window, stride, row)
            body = await asyncio.wait_for(work, self.limits.timeout_s)
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
            self.in_flight -= 1
            self.metrics.queue_depth.dec()

    async def reject(self, problem: HTTPProblem) -> None:
        """Count and log a predict request refused before it reached `handle` (bad query)."""
        row = {"model_version": self.predictor.version, "runtime": self.predictor.runtime}
        await self._finish(time.perf_counter(), row, problem)

    async def _predict(self, request: Request, top_k: int, window: float | None,
                       stride: float | None, row: dict[str, Any]) -> dict[str, Any]:
        max_bytes = int(self.limits.max_upload_mb * 2**20)
        upload = await save_upload(request, self.temp_dir, max_bytes)
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
        """Decode in the pool; the temp file is removed when the job ends or is cancelled."""
        job: Future = self.pool.submit(self.predictor.decode, path, window, stride,
                                       self.limits.max_duration_s, self.limits.max_clips)
        job.add_done_callback(lambda _: path.unlink(missing_ok=True))
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
        if self.in_flight >= self.limits.queue_size:
            problem = HTTPProblem(503, "overloaded",
                                  f"the server is busy ({self.in_flight} requests in flight, "
                                  "--queue-size); retry shortly", {"Retry-After": "1"})
            await self._finish(t0, row, problem)
            raise problem
        self.in_flight += 1
        self.metrics.queue_depth.inc()
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
