"""Video generation: a conditional video GAN, its trainer, sampling and quality metrics.

Heavy imports stay inside the submodules: `import vidlab.gen` is cheap.
"""

from __future__ import annotations

from vidlab.lazy import lazy_getattr

_LAZY = {
    "GanConfig": "vidlab.gen.config",
    "train_gan": "vidlab.gen.trainer",
    "evaluate_generator": "vidlab.gen.eval",
    "generate": "vidlab.gen.sampling",
    "load_generator": "vidlab.gen.sampling",
}

__all__ = sorted(_LAZY)

__getattr__ = lazy_getattr(__name__, _LAZY)
