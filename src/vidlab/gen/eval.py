"""Generator quality in a vidlab classifier's feature space, with baselines that give it scale.

`frechet_distance` is the Fréchet distance between pooled classifier features
(`VideoModel.forward_features`) of generated and real clips — the FVD formula in the feature
space of a vidlab classifier bundle, *not* comparable to I3D FVD numbers from papers (its
`feature_space` field names the classifier). `class_consistency` is the fraction of generated
clips the classifier assigns to the label they were generated for.

Every clip — real, baseline or generated — takes the same path: uint8 at the generator's
resolution (real videos are decoded at that size), then the classifier bundle's own
`Preprocess` (resize to its short side, centre crop, mean/std). Real clips are split by video:
half are the reference set, the other half feed the two baselines, so no clip is compared with
itself:

- `wrong_class_real`: for each requested label, a real clip of another class (consistency
  near 0; its Fréchet distance is the real-vs-real noise floor at this sample size);
- `shuffled_real`: real clips of the requested class with their frames shuffled in time
  (perfect appearance, destroyed motion);
- `real` (extra): real clips of the requested class, unchanged — the ceiling: its consistency is
  the classifier's accuracy on clips at the generator's resolution, its Fréchet distance the
  real-vs-real floor at this sample size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidlab.data.clips import ClipSet
from vidlab.errors import BundleError
from vidlab.gen.clips import real_clips, to_uint8
from vidlab.gen.frechet import frechet_distance


class FeatureSpace:
    """A classifier bundle used as a feature extractor and judge of generated clips."""

    def __init__(self, bundle: Any, batch_size: int = 16):
        if bundle.task != "classify":
            raise BundleError(f"--classifier must be a classifier bundle, this one is "
                              f"task={bundle.task!r}", bundle.path)
        self.bundle, self.batch_size = bundle, batch_size
        self.model = bundle.build_model()
        self.preprocess = bundle.preprocess()
        self.labels = bundle.labels
        self.name = f"vidlab-classifier:{bundle.model_spec.get('name', '?')}"

    @torch.no_grad()
    def __call__(self, clips: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """uint8 `N×T×H×W×3` → (features `N×D`, predicted class names `N`)."""
        feats, preds = [], []
        nf = self.preprocess.num_frames
        for start in range(0, len(clips), self.batch_size):
            batch = clips[start:start + self.batch_size]
            t = batch.shape[1]
            if t != nf:  # bring the clip to the classifier's length, evenly over its time span
                batch = batch[:, np.round(np.linspace(0, t - 1, nf)).astype(int)]
            x = torch.stack([self.preprocess(c) for c in batch])
            f = self.model.forward_features(x)
            feats.append(f.float().numpy())
            preds.extend(self.labels[i] for i in self.model.forward_head(f).argmax(1).tolist())
        return np.concatenate(feats), np.array(preds)


def _balanced_labels(names: list[str], n: int) -> list[str]:
    return [names[i % len(names)] for i in range(n)]


def _pick(mask: np.ndarray, n: int, rng: np.random.Generator) -> torch.Tensor:
    """Indices of `n` clips where `mask` holds (with replacement only when there are too few)."""
    pool = np.flatnonzero(mask)
    return torch.from_numpy(rng.choice(pool, n, replace=len(pool) < n))


def _score(space: FeatureSpace, clips: torch.Tensor, requested: list[str],
           reference: np.ndarray) -> dict[str, float]:
    feats, preds = space(clips)
    return {"frechet_distance": frechet_distance(feats, reference),
            "class_consistency": float(np.mean(preds == np.array(requested)))}


def real_baselines(space: FeatureSpace, data: ClipSet, num_samples: int, seed: int = 0
                   ) -> tuple[np.ndarray, dict[str, dict[str, float]]]:
    """Reference features (even-numbered videos) and the two baselines (odd-numbered videos)."""
    rng = np.random.default_rng(seed)
    clips = torch.from_numpy(data.clips)
    ref_videos = data.video % 2 == 0
    ref_idx = _pick(ref_videos, num_samples, rng)
    reference, _ = space(clips[ref_idx])
    requested = _balanced_labels(data.labels, num_samples)
    wrong, same = [], []
    for name in requested:
        y = data.labels.index(name)
        wrong.append(_pick(~ref_videos & (data.targets != y), 1, rng)[0])
        same.append(_pick(~ref_videos & (data.targets == y), 1, rng)[0])
    wrong_clips = clips[torch.stack(wrong)]
    same_clips = clips[torch.stack(same)]
    shuffled_clips = same_clips.clone()
    t = shuffled_clips.shape[1]
    for i in range(len(shuffled_clips)):
        shuffled_clips[i] = shuffled_clips[i, torch.from_numpy(rng.permutation(t))]
    baselines = {"wrong_class_real": _score(space, wrong_clips, requested, reference),
                 "shuffled_real": _score(space, shuffled_clips, requested, reference),
                 "real": _score(space, same_clips, requested, reference)}
    return reference, baselines


def score_generator(space: FeatureSpace, g: Any, reference: np.ndarray, num_samples: int,
                    seed: int = 0, batch_size: int = 32) -> dict[str, Any]:
    """Fréchet distance and class consistency of `num_samples` clips, labels balanced."""
    names = list(g.label_names) if hasattr(g, "label_names") else None
    labels = torch.arange(num_samples) % g.num_classes
    clips = []
    for start in range(0, num_samples, batch_size):
        chunk = labels[start:start + batch_size]
        clips.append(to_uint8(g.generate(chunk, seed=seed + start)))
    requested = [(names or space.labels)[int(i)] for i in labels]
    unknown = set(requested) - set(space.labels)
    if unknown:
        raise BundleError(f"the classifier does not know the generator's labels "
                          f"{sorted(unknown)[:5]}", space.bundle.path)
    return {**_score(space, torch.cat(clips), requested, reference),
            "num_samples": num_samples, "feature_space": space.name}


def evaluate_generator(gen_bundle: Any, classifier_bundle: Any, entries: list[dict[str, Any]],
                       num_samples: int = 256, seed: int = 0, clips_per_video: int = 4,
                       progress: bool = False) -> dict[str, Any]:
    """Quality figures of a generator bundle against real clips (`entries`), with baselines.

    Returns `{"frechet_distance", "class_consistency", "num_samples", "feature_space",
    "baselines": {"wrong_class_real": {...}, "shuffled_real": {...}}}`.
    """
    from vidlab.bundle import load_bundle
    from vidlab.gen.sampling import load_generator

    gen_bundle = load_bundle(gen_bundle) if isinstance(gen_bundle, str | Path) else gen_bundle
    cls_bundle = (load_bundle(classifier_bundle) if isinstance(classifier_bundle, str | Path)
                  else classifier_bundle)
    g = load_generator(gen_bundle)
    clip = gen_bundle.config.get("clip", {})
    data = real_clips(entries, gen_bundle.labels, num_frames=clip.get("num_frames", g.num_frames),
                      size=clip.get("size", g.size), stride=clip.get("stride", 2),
                      target_fps=clip.get("target_fps"), clips_per_video=clips_per_video,
                      progress=progress)
    space = FeatureSpace(cls_bundle)
    reference, baselines = real_baselines(space, data, num_samples, seed=seed)
    figures = score_generator(space, g, reference, num_samples, seed=seed)
    return {**figures, "baselines": baselines}
