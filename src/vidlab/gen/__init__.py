"""Video generation: a conditional video GAN, its trainer, sampling and quality metrics.

Heavy imports stay inside the submodules: `import vidlab.gen` is cheap.
"""

from __future__ import annotations

__all__ = ["GanConfig", "evaluate_generator", "generate", "load_generator", "train_gan"]


def __getattr__(name: str):
    if name == "GanConfig":
        from vidlab.gen.config import GanConfig

        return GanConfig
    if name == "train_gan":
        from vidlab.gen.trainer import train_gan

        return train_gan
    if name == "evaluate_generator":
        from vidlab.gen.eval import evaluate_generator

        return evaluate_generator
    if name in ("generate", "load_generator"):
        from vidlab.gen import sampling as mod

        return getattr(mod, name)
    raise AttributeError(name)
