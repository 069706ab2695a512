"""Open Inference Protocol v2 (KServe / Triton HTTP) request and response bodies.

An infer request is JSON (`{"inputs": [{"name", "shape", "datatype", "data"}], "outputs": ...}`)
or, with the binary tensor extension, that JSON header followed by raw little-endian tensor
bytes; the header's length is in the `Inference-Header-Content-Length` HTTP header and each
binary input says its byte size in `parameters.binary_data_size`. Answers use the same form:
outputs are JSON `data` unless the request asked for binary (`parameters.binary_data` on an
output, or `binary_data_output` on the request). Everything here is pure: bytes in, arrays out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

HEADER_LENGTH = "Inference-Header-Content-Length"

DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_), "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"), "UINT64": np.dtype("<u8"), "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"), "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
}
"""The numeric tensor types of the protocol (BYTES, strings, is not accepted as input)."""


class ProtocolError(ValueError):
    """A request that does not follow the protocol: answered 400 with this message."""


@dataclass
class InferRequest:
    """A parsed infer request: its id, input tensors by name, and how outputs are wanted."""

    id: str | None
    inputs: dict[str, np.ndarray]
    outputs: list[str] = field(default_factory=list)  # [] = every output
    binary: dict[str, bool] = field(default_factory=dict)  # output name -> send as bytes
    binary_default: bool = False


def parse_infer_request(body: bytes, header_length: int | None = None) -> InferRequest:
    """Decode an infer request body; `header_length` from `Inference-Header-Content-Length`."""
    if header_length is not None and not 0 <= header_length <= len(body):
        raise ProtocolError(f"{HEADER_LENGTH} is {header_length} but the body has "
                            f"{len(body)} bytes")
    split = len(body) if header_length is None else header_length
    try:
        header = json.loads(body[:split])
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"the request header is not JSON ({exc})") from None
    if not isinstance(header, dict) or not isinstance(header.get("inputs"), list):
        raise ProtocolError("the request must be a JSON object with a list of 'inputs'")
    binary = memoryview(body)[split:]
    inputs: dict[str, np.ndarray] = {}
    offset = 0
    for spec in header["inputs"]:
        name, array, used = _input_tensor(spec, binary[offset:])
        if name in inputs:
            raise ProtocolError(f"input '{name}' is given twice")
        inputs[name] = array
        offset += used
    if offset != len(binary):
        raise ProtocolError(f"{len(binary) - offset} bytes of binary data belong to no input")
    params = header.get("parameters") or {}
    request = InferRequest(id=_optional_str(header.get("id"), "id"), inputs=inputs,
                           binary_default=bool(params.get("binary_data_output", False)))
    for spec in header.get("outputs") or []:
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise ProtocolError("each requested output needs a 'name'")
        request.outputs.append(spec["name"])
        out_params = spec.get("parameters") or {}
        if "binary_data" in out_params:
            request.binary[spec["name"]] = bool(out_params["binary_data"])
    return request


def _optional_str(value: Any, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ProtocolError(f"'{what}' must be a string")


def _input_tensor(spec: Any, binary: memoryview) -> tuple[str, np.ndarray, int]:
    """One input's `(name, array, binary bytes used)`."""
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ProtocolError("each input needs a 'name'")
    name = spec["name"]
    dtype = DATATYPES.get(spec.get("datatype", ""))
    if dtype is None:
        raise ProtocolError(f"input '{name}': datatype {spec.get('datatype')!r} is not one of "
                            f"{', '.join(DATATYPES)}")
    shape = spec.get("shape")
    if (not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape)):
        raise ProtocolError(f"input '{name}': 'shape' must be a list of non-negative integers")
    count = int(np.prod(shape, dtype=np.int64))
    size = (spec.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size != count * dtype.itemsize:
            raise ProtocolError(f"input '{name}': binary_data_size {size!r} does not match "
                                f"shape {shape} of {spec['datatype']} "
                                f"({count * dtype.itemsize} bytes)")
        if size > len(binary):
            raise ProtocolError(f"input '{name}': {size} bytes of binary data announced, "
                                f"{len(binary)} sent")
        array = np.frombuffer(binary[:size], dtype).reshape(shape)
        return name, array, size
    if "data" not in spec:
        raise ProtocolError(f"input '{name}' has neither 'data' nor binary_data_size")
    try:
        array = np.asarray(spec["data"], dtype=dtype)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ProtocolError(f"input '{name}': data is not {spec['datatype']} ({exc})") from None
    if array.size != count:
        raise ProtocolError(f"input '{name}': {array.size} values for shape {shape} "
                            f"({count} expected)")
    return name, array.reshape(shape), 0


def infer_response(model: str, version: str, request: InferRequest,
                   outputs: dict[str, np.ndarray]) -> tuple[bytes, dict[str, str]]:
    """The answer body and its headers: JSON, or JSON then raw bytes when binary was asked."""
    names = request.outputs or list(outputs)
    header: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": []}
    if request.id is not None:
        header["id"] = request.id
    chunks: list[bytes] = []
    for name in names:
        array = np.ascontiguousarray(outputs[name])
        datatype = next(k for k, v in DATATYPES.items() if v == array.dtype.newbyteorder("<"))
        out: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if request.binary.get(name, request.binary_default):
            raw = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
            out["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            out["data"] = array.ravel().tolist()
        header["outputs"].append(out)
    text = json.dumps(header, separators=(",", ":")).encode()
    if not chunks:
        return text, {"content-type": "application/json"}
    return text + b"".join(chunks), {"content-type": "application/octet-stream",
                                     HEADER_LENGTH: str(len(text))}
