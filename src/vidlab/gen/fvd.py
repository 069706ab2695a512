"""FVD (Unterthiner et al. 2018) with the I3D TorchScript detector the literature uses.

The detector file (`i3d_torchscript.pt`, as used by StyleGAN-V and its FVD comparison) cannot be
downloaded here: the user supplies a local copy. **TorchScript files execute code when loaded;
pass only a file you trust.** Protocol: 16-frame clips, values in [-1, 1], `B×3×T×H×W`,
resized to 224×224 by the detector (`rescale=False, resize=True, return_features=True`), 400-d
features, Fréchet distance between real and generated feature sets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidlab.errors import ModelError
from vidlab.gen.clips import real_clips, to_model_range
from vidlab.gen.frechet import frechet_distance

FVD_FRAMES = 16
DETECTOR_KWARGS = {"rescale": False, "resize": True, "return_features": True}


def load_i3d(path: str | Path, *, trust_code: bool = False) -> Any:
    """Load the I3D TorchScript detector; `ModelError` naming the file if that is impossible.

    Loading TorchScript runs the code the file holds, so it is refused unless the caller says
    the file is trusted (`trust_code=True`, `--trust-i3d-code` on the command line).
    """
    p = Path(path)
    if not p.is_file():
        raise ModelError("I3D detector file not found (pass a local i3d_torchscript.pt)", p)
    if not trust_code:
        raise ModelError("loading a TorchScript file runs the code it holds; pass "
                         "--trust-i3d-code (trust_code=True) if you trust this file", p)
    try:
        return torch.jit.load(str(p), map_location="cpu").eval()
    except Exception as exc:  # TorchScript raises RuntimeError and several internal types
        raise ModelError(f"not a loadable TorchScript I3D detector ({str(exc)[:120]})", p) from exc


@torch.no_grad()
def i3d_features(detector: Any, clips: torch.Tensor, batch_size: int = 8) -> np.ndarray:
    """Features of float `N×3×T×H×W` clips in [-1, 1] (T is brought to 16 frames)."""
    t = clips.shape[2]
    if t != FVD_FRAMES:
        clips = clips[:, :, np.round(np.linspace(0, t - 1, FVD_FRAMES)).astype(int)]
    out = [detector(clips[i:i + batch_size], **DETECTOR_KWARGS).float().numpy()
           for i in range(0, len(clips), batch_size)]
    return np.concatenate(out)


def fvd_of_generator(detector: Any, gen_bundle: Any, entries: list[dict[str, Any]],
                     num_samples: int = 256, seed: int = 0) -> float:
    """FVD between `num_samples` generated clips and as many real clips at the same size."""
    from vidlab.bundle import load_bundle
    from vidlab.gen.clips import to_uint8
    from vidlab.gen.sampling import load_generator

    b = load_bundle(gen_bundle) if isinstance(gen_bundle, str | Path) else gen_bundle
    g = load_generator(b)
    clip = b.config.get("clip", {})
    data = real_clips(entries, b.labels, num_frames=g.num_frames, size=g.size,
                      stride=clip.get("stride", 2), target_fps=clip.get("target_fps"),
                      progress=False)
    rng = np.random.default_rng(seed)
    real = torch.from_numpy(data.clips[rng.choice(len(data), num_samples,
                                                  replace=len(data) < num_samples)])
    fake = to_uint8(g.generate(torch.arange(num_samples) % g.num_classes, seed=seed))
    return frechet_distance(i3d_features(detector, to_model_range(real)),
                            i3d_features(detector, to_model_range(fake)))
