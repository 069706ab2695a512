"""Video enhancement: restore compressed video and upscale it 2x with a small spatio-temporal
network trained on degraded/clean pairs made from clean clips (`docs/enhance.md`).

Names are imported lazily so `import vidlab.enhance` (and its torch-free `gate`) stays cheap.
"""

from __future__ import annotations

from vidlab.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    infer=("enhance_stream", "enhance_window", "load_enhancer"),
    model=("EnhanceNet", "build_enhancer"),
    train=("EnhanceTrainConfig", "train_enhancer"),
    video=("enhance_video",),
)
