"""Video enhancement: restore compressed video and upscale it 2x with a small spatio-temporal
network trained on degraded/clean pairs made from clean clips (`docs/enhance.md`).

Names are imported lazily so `import vidlab.enhance` (and its torch-free `gate`) stays cheap.
"""

from __future__ import annotations

from vidlab.lazy import lazy_getattr

_LAZY = {
    "EnhanceNet": "vidlab.enhance.model",
    "EnhanceTrainConfig": "vidlab.enhance.train",
    "build_enhancer": "vidlab.enhance.model",
    "enhance_stream": "vidlab.enhance.infer",
    "enhance_video": "vidlab.enhance.video",
    "enhance_window": "vidlab.enhance.infer",
    "load_enhancer": "vidlab.enhance.infer",
    "train_enhancer": "vidlab.enhance.train",
}

__all__ = sorted(_LAZY)

__getattr__ = lazy_getattr(__name__, _LAZY)
