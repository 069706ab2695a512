"""Does each runtime file of a classifier bundle fit its config.json? Checked before serving.

- `weights.safetensors`: its tensor names and shapes (read from the header, no tensor loaded)
  against the model config.json names, built on the meta device (no memory, no compute);
- `model.onnx` / `model.int8.onnx`: one `B×3×T×H×W` input (batch free, T and H×W as the
  preprocessing says) and `B×num_classes` outputs, read from the graph;
- the runtime finally chosen runs one zero clip (`dry_run_runner`), which finds what a static
  look cannot (an operator ONNX Runtime lacks, model arguments that fail at run time).

Every failure is one `BundleError` naming the file and the config field it disagrees with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vidlab.bundle import CONFIG_FILE, WEIGHTS_FILE, Bundle, fit_shapes
from vidlab.errors import BundleError


def check_runtime_file(bundle: Bundle, runtime: str, file_name: str) -> None:
    """Raise `BundleError` unless the file of `runtime` fits config.json."""
    if file_name == WEIGHTS_FILE:  # torch and torch-bf16
        check_weights(bundle)
    else:
        check_onnx(bundle, bundle.file(file_name))


def check_weights(bundle: Bundle) -> None:
    """The weights' names and shapes are those of the model config.json describes."""
    import torch
    from safetensors import safe_open

    path = bundle.file(WEIGHTS_FILE)
    try:
        with safe_open(str(path), "pt") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors raises its own error types
        raise BundleError(f"not a readable safetensors file ({first_line(exc)})", path) from exc
    if not shapes:
        raise BundleError("holds no tensors", path)
    model = _meta_model(bundle)
    spec = bundle.model_spec
    if spec.get("pruned_channels"):  # a pruned model has fewer channels than its name says
        fit_shapes(model, {k: torch.empty(s, device="meta") for k, s in shapes.items()})
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    what = f"config.json's model ({spec['name']}, model.num_classes {bundle.num_classes})"
    wrong = [k for k in expected if k in shapes and shapes[k] != expected[k]]
    if wrong:
        k = wrong[0]
        more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        raise BundleError(f"does not fit {what}: {k} has shape {list(shapes[k])}, the model "
                          f"expects {list(expected[k])}{more}", path)
    missing = sorted(expected.keys() - shapes.keys())
    unexpected = sorted(shapes.keys() - expected.keys())
    if missing or unexpected:
        raise BundleError(f"does not fit {what}: {len(missing)} tensors missing "
                          f"{missing[:2]}, {len(unexpected)} unexpected {unexpected[:2]}", path)


def _meta_model(bundle: Bundle) -> Any:
    import torch

    from vidlab.models import create

    spec = bundle.model_spec
    kwargs = spec.get("kwargs", {})
    try:
        with torch.device("meta"):
            return create(spec["name"], num_classes=bundle.num_classes, **kwargs)
    except Exception as exc:  # unknown name (ModelError), bad kwargs (TypeError, ValueError)
        raise BundleError(f"model: cannot build {spec['name']!r} with model.kwargs {kwargs} "
                          f"({first_line(exc)})", bundle.path / CONFIG_FILE) from exc


def check_onnx(bundle: Bundle, path: Path) -> None:
    """The graph takes one clip batch of the bundle's preprocessing and gives its classes."""
    import onnx

    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:  # protobuf DecodeError and friends for junk files
        raise BundleError(f"not an ONNX model ({first_line(exc)})", path) from exc
    weights = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]
    if len(inputs) != 1 or not graph.output:
        raise BundleError(f"has {len(inputs)} inputs and {len(graph.output)} outputs; a vidlab "
                          "model takes one B×3×T×H×W clip batch and gives B×classes", path)
    pre = bundle.preprocess()
    dims = _dims(inputs[0])
    if len(dims) != 5:
        raise BundleError(f"input {inputs[0].name!r} has {len(dims)} dimensions; expected "
                          "B×3×T×H×W", path)
    if dims[0] is not None:
        raise BundleError(f"input batch dimension is fixed at {dims[0]}; vidlab runs batches "
                          "of any size (export it with a dynamic batch axis)", path)
    wanted = [(3, "channels"), (pre.num_frames, "frames (config.json preprocess.num_frames)"),
              (pre.crop_size, "height (config.json preprocess.crop_size)"),
              (pre.crop_size, "width (config.json preprocess.crop_size)")]
    for got, (want, what) in zip(dims[1:], wanted, strict=True):
        if got is not None and got != want:
            raise BundleError(f"input {what} is {got}, config.json says {want}", path)
    out = _dims(graph.output[0])
    if len(out) != 2 or (out[1] is not None and out[1] != bundle.num_classes):
        shape = "×".join("?" if d is None else str(d) for d in out)
        raise BundleError(f"output is {shape}; config.json has {bundle.num_classes} classes "
                          "(model.num_classes / labels)", path)


def _dims(value_info: Any) -> list[int | None]:
    """Static dimensions of a graph input/output (`None` for a named or unknown one)."""
    return [d.dim_value if d.HasField("dim_value") else None
            for d in value_info.type.tensor_type.shape.dim]


def dry_run_runner(runner: Any, bundle: Bundle, file_name: str) -> None:
    """Run one zero clip of the bundle's preprocessing; `BundleError` if that fails."""
    pre = bundle.preprocess()
    clip = np.zeros((1, 3, pre.num_frames, pre.crop_size, pre.crop_size), np.float32)
    path = bundle.file(file_name)
    try:
        out = np.asarray(runner(clip))
    except Exception as exc:  # whatever the runtime raises: the bundle cannot run
        raise BundleError(f"cannot run one clip of 3×{pre.num_frames}×{pre.crop_size}×"
                          f"{pre.crop_size} (config.json preprocess): {first_line(exc)}",
                          path) from exc
    check_output(out, 1, bundle.num_classes, path)


def check_output(out: np.ndarray, batch: int, num_classes: int, path: Path) -> None:
    """`out` is `batch × num_classes` and finite, else `BundleError` naming `path`."""
    if out.shape != (batch, num_classes):
        raise BundleError(f"gives outputs of shape {list(out.shape)} for {batch} clip(s); "
                          f"config.json has {num_classes} classes (model.num_classes / labels)",
                          path)
    if not np.isfinite(out).all():
        raise BundleError(f"gives non-finite outputs (NaN/inf) for {batch} zero clip(s)", path)


def first_line(exc: BaseException) -> str:
    """An exception's first line (runtimes write paragraphs), or its type when empty."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
