"""Video enhancement: restore compressed video and upscale it 2x with a small spatio-temporal
network trained on degraded/clean pairs made from clean clips (`docs/enhance.md`)."""

from vidlab.enhance.infer import enhance_stream, enhance_window, load_enhancer
from vidlab.enhance.model import EnhanceNet, build_enhancer
from vidlab.enhance.train import EnhanceTrainConfig, train_enhancer
from vidlab.enhance.video import enhance_video

__all__ = [
    "EnhanceNet",
    "EnhanceTrainConfig",
    "build_enhancer",
    "enhance_stream",
    "enhance_video",
    "enhance_window",
    "load_enhancer",
    "train_enhancer",
]
