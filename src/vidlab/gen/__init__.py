"""Video generation: a conditional video GAN, its trainer, sampling and quality metrics.

Heavy imports stay inside the submodules: `import vidlab.gen` is cheap.
"""

from __future__ import annotations

from vidlab.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__, config=("GanConfig",), eval=("evaluate_generator",), trainer=("train_gan",),
    sampling=("generate", "load_generator"))
