"""Open Inference Protocol v2 routes (KServe, Triton, Seldon and BentoML clients speak it).

`GET /v2` (server metadata), `GET /v2/health/live`, `GET /v2/health/ready`,
`GET /v2/models/{name}[/versions/{v}]` (inputs and outputs with shape and datatype),
`GET /v2/models/{name}[/versions/{v}]/ready` and `POST /v2/models/{name}[/versions/{v}]/infer`.
The input is one tensor `clip` of preprocessed clips, `FP32 [B, 3, T, S, S]` (the bundle's
preprocessing, as `vidlab.data.transforms.Preprocess` makes it), sent as JSON or with the
binary tensor extension; the clips join the same micro-batcher as uploads. Outputs are
`probabilities` (`FP32 [B, K]`, softmax) and `logits` (`FP32 [B, K]`, normalised: the
log-probabilities, which equal the model's logits up to a constant per row).
Errors follow the protocol: `{"error": "message"}` with the HTTP status.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from vidlab import versions
from vidlab.serve.oip_codec import (
    DATATYPES,
    HEADER_LENGTH,
    ProtocolError,
    infer_response,
    parse_infer_request,
)
from vidlab.serve.problems import HTTPProblem
from vidlab.serve.registry import ModelRegistry, ServedModel, UnknownModelError
from vidlab.serve.upload import Pace, paced_chunks

INPUT = "clip"
OUTPUTS = ("probabilities", "logits")


def oip_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def short_version(model: ServedModel) -> str:
    """The OIP version of a model: the content hash of its bundle (`NAME@HASH` → `HASH`)."""
    return model.service.predictor.version.rpartition("@")[2]


def model_metadata(model: ServedModel) -> dict[str, Any]:
    predictor = model.service.predictor
    pre = predictor.preprocess
    k = len(predictor.labels)
    return {"name": model.name, "versions": [short_version(model)],
            "platform": f"vidlab_{predictor.runtime}",
            "inputs": [{"name": INPUT, "datatype": "FP32",
                        "shape": [-1, 3, pre.num_frames, pre.crop_size, pre.crop_size]}],
            "outputs": [{"name": name, "datatype": "FP32", "shape": [-1, k]} for name in OUTPUTS],
            "parameters": {"labels": predictor.labels, "preprocess": pre.to_dict()}}


def oip_router(registry: ModelRegistry, draining: Any = lambda: False) -> APIRouter:
    """The `/v2` routes over `registry`; `draining()` true turns readiness off."""
    router = APIRouter(prefix="/v2")

    def find(name: str, version: str | None) -> ServedModel:
        model = registry.get(name)
        if version is not None and version != short_version(model):
            raise UnknownModelError(f"model '{name}' has no version '{version}' "
                                    f"(serving {short_version(model)})")
        return model

    @router.get("")
    async def server_metadata() -> dict[str, Any]:
        return {"name": "vidlab", "version": versions()["vidlab"], "extensions": ["binary_tensor_data"]}

    @router.get("/health/live")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @router.get("/health/ready")
    async def ready() -> Response:
        ok = registry.ready and not draining()
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    @router.get("/models/{name}")
    @router.get("/models/{name}/versions/{version}")
    async def metadata(name: str, version: str | None = None) -> Response:
        try:
            return JSONResponse(model_metadata(find(name, version)))
        except UnknownModelError as exc:
            return oip_error(404, str(exc))

    @router.get("/models/{name}/ready")
    @router.get("/models/{name}/versions/{version}/ready")
    async def model_ready(name: str, version: str | None = None) -> Response:
        try:
            service = find(name, version).service
        except UnknownModelError as exc:
            return oip_error(404, str(exc))
        ok = service.ready and service.batcher.running and not draining()
        return JSONResponse({"name": name, "ready": ok}, status_code=200 if ok else 503)

    @router.post("/models/{name}/infer")
    @router.post("/models/{name}/versions/{version}/infer")
    async def infer(name: str, request: Request, version: str | None = None) -> Response:
        try:
            find(name, version)
            with registry.use(name) as service:
                return await _infer(service, name, request)
        except UnknownModelError as exc:
            return oip_error(404, str(exc))
        except ProtocolError as exc:
            return oip_error(400, str(exc))
        except HTTPProblem as problem:
            return oip_error(problem.status, problem.message, problem.headers)

    return router


async def _infer(service: Any, name: str, request: Request) -> Response:
    encoding = request.headers.get("content-encoding", "identity").lower()
    if encoding != "identity":
        raise HTTPProblem(415, "unsupported_media", f"Content-Encoding {encoding} is not "
                          "supported; send the request uncompressed")
    body = await read_body(request, int(service.limits.max_upload_mb * 2**20),
                           service.limits.pace)
    header_length = request.headers.get(HEADER_LENGTH.lower())
    if header_length is not None and not header_length.isdigit():
        raise ProtocolError(f"{HEADER_LENGTH} must be a number of bytes")
    req = parse_infer_request(body, None if header_length is None else int(header_length))
    clips = _clips(req.inputs, service)
    for output in req.outputs:
        if output not in OUTPUTS:
            raise ProtocolError(f"unknown output '{output}' (outputs: {', '.join(OUTPUTS)})")
    probs = await service.infer_tensor(clips)
    outputs = {"probabilities": probs.astype(np.float32),
               "logits": np.log(np.maximum(probs, np.finfo(np.float64).tiny)).astype(np.float32)}
    content, headers = infer_response(name, service.predictor.version.rpartition("@")[2], req,
                                      outputs)
    return Response(content, headers=headers)


def _clips(inputs: dict[str, np.ndarray], service: Any) -> np.ndarray:
    """The `clip` input, checked against the model's preprocessing and the request limits."""
    pre = service.predictor.preprocess
    expected = [3, pre.num_frames, pre.crop_size, pre.crop_size]
    if set(inputs) != {INPUT}:
        raise ProtocolError(f"expected exactly one input, '{INPUT}' (got "
                            f"{', '.join(inputs) or 'none'})")
    clips = inputs[INPUT]
    if clips.ndim != 5 or list(clips.shape[1:]) != expected or clips.shape[0] < 1:
        raise ProtocolError(f"input '{INPUT}' must have shape [B, {', '.join(map(str, expected))}]"
                            f", got {list(clips.shape)}")
    if clips.shape[0] > service.limits.max_clips:
        raise HTTPProblem(413, "too_many_clips", f"{clips.shape[0]} clips in one request; at most "
                          f"{service.limits.max_clips} (--max-clips)")
    if clips.dtype != DATATYPES["FP32"]:
        clips = clips.astype(np.float32)
    if not np.isfinite(clips).all():
        raise ProtocolError(f"input '{INPUT}' holds NaN or infinite values")
    return clips


async def read_body(request: Request, max_bytes: int, pace: Pace | None = None) -> bytes:
    """The request body, refused with 413 as soon as it passes `max_bytes` and with 408 as soon
    as it falls behind `pace` (as uploads are: `--body-timeout-s`, `--min-upload-kb-s`)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks, size = [], 0
    async for chunk in request.stream() if pace is None else paced_chunks(request, pace):
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(max_bytes: int) -> HTTPProblem:
    return HTTPProblem(413, "request_too_large", f"request body is larger than the limit of "
                       f"{max_bytes / 2**20:.3g} MB (--max-upload-mb)")
