"""`train_gan`: the conditional video GAN's training loop, visible top to bottom.

One step = one discriminator update (video + image critics, hinge loss, optional R1 and an
auxiliary class loss on the video critic) then one generator update; DiffAugment on every
critic input; an EMA copy of the generator is what samples, evaluations and the bundle use.
The run directory holds `config.yaml`, `metrics.jsonl` + TensorBoard, `checkpoints/last.pt`
(atomic, with every RNG state, so `resume` reproduces an uninterrupted run), `samples/`
(MP4 + GIF grids: one row per class), `quality.png` when a classifier is given, and finally
`generator.vidlab`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from vidlab.data.clips import ClipSet
from vidlab.gen.augment import diff_augment
from vidlab.gen.clips import real_clips, to_model_range, to_uint8
from vidlab.gen.config import GanConfig
from vidlab.gen.generators import build_generator
from vidlab.gen.losses import d_hinge, g_hinge, r1_penalty
from vidlab.gen.nets import GeneratorBase, ImageDiscriminator, VideoDiscriminator, sample_frames

log = logging.getLogger(__name__)
BUNDLE_NAME = "generator.vidlab"
SAMPLE_SEED = 1234


class GanModels:
    """The generator, both critics, their optimisers and the EMA generator."""

    def __init__(self, cfg: GanConfig, num_classes: int):
        from vidlab.train.ema import ModelEma

        self.g = build_generator(cfg.generator, num_classes, num_frames=cfg.num_frames,
                                 size=cfg.size, content_dim=cfg.content_dim,
                                 motion_dim=cfg.motion_dim, hidden_dim=cfg.hidden_dim,
                                 embed_dim=cfg.embed_dim, width=cfg.g_width)
        self.dv = VideoDiscriminator(num_classes, cfg.d_width, cfg.size)
        self.di = ImageDiscriminator(num_classes, cfg.d_width, cfg.size)
        betas = (cfg.beta1, cfg.beta2)
        self.opt_g = torch.optim.Adam(self.g.parameters(), cfg.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam([*self.dv.parameters(), *self.di.parameters()], cfg.lr_d,
                                      betas=betas)
        self.ema = ModelEma(self.g, decay=cfg.ema_decay, warmup_steps=cfg.ema_warmup)

    def state_dict(self) -> dict[str, Any]:
        return {"g": self.g.state_dict(), "dv": self.dv.state_dict(), "di": self.di.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "ema": self.ema.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.g.load_state_dict(state["g"])
        self.dv.load_state_dict(state["dv"])
        self.di.load_state_dict(state["di"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.ema.load_state_dict(state["ema"])


def train_step(m: GanModels, real_u8: torch.Tensor, labels: torch.Tensor, cfg: GanConfig,
               step: int) -> dict[str, float]:
    """One critic update and one generator update; returns the losses."""
    k = min(cfg.image_frames, cfg.num_frames)
    real = to_model_range(real_u8)
    b = real.shape[0]
    fake_labels = torch.randint(0, m.g.num_classes, (b,))

    # --- critics ---
    _requires_grad(m.dv, True), _requires_grad(m.di, True)
    with torch.no_grad():
        fake = m.g(*m.g.sample_latents(b), fake_labels)
    use_r1 = cfg.r1_gamma > 0 and step % cfg.r1_every == 0
    real_in = real.detach().requires_grad_(use_r1)
    real_aug, fake_aug = diff_augment(real_in, cfg.diffaug), diff_augment(fake, cfg.diffaug)
    sv_real, cls_real = m.dv(real_aug, labels)
    sv_fake, _ = m.dv(fake_aug, fake_labels)
    fr_real, owner_r = sample_frames(real_aug, k)
    fr_fake, owner_f = sample_frames(fake_aug, k)
    si_real, _ = m.di(fr_real, labels[owner_r])
    si_fake, _ = m.di(fr_fake, fake_labels[owner_f])
    loss_dv, loss_di = d_hinge(sv_real, sv_fake), d_hinge(si_real, si_fake)
    loss_cls = F.cross_entropy(cls_real, labels)
    loss_d = loss_dv + loss_di + cfg.aux_weight * loss_cls
    r1 = torch.zeros(())
    if use_r1:
        r1 = r1_penalty(sv_real + si_real.view(b, k).mean(1), real_in)
        loss_d = loss_d + cfg.r1_gamma / 2 * r1 * cfg.r1_every
    m.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    m.opt_d.step()

    # --- generator ---
    _requires_grad(m.dv, False), _requires_grad(m.di, False)
    fake = m.g(*m.g.sample_latents(b), fake_labels)
    fake_aug = diff_augment(fake, cfg.diffaug)
    sv, cls_fake = m.dv(fake_aug, fake_labels)
    fr, owner = sample_frames(fake_aug, k)
    si, _ = m.di(fr, fake_labels[owner])
    loss_g_cls = F.cross_entropy(cls_fake, fake_labels)
    loss_g = g_hinge(sv) + g_hinge(si) + cfg.aux_weight * loss_g_cls
    m.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    m.opt_g.step()
    m.ema.update(m.g)
    return {"loss_d_video": loss_dv.item(), "loss_d_image": loss_di.item(),
            "loss_d_cls": loss_cls.item(), "loss_g": loss_g.item(),
            "loss_g_cls": loss_g_cls.item(), "r1": r1.item()}


def train_gan(cfg: GanConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train a conditional video GAN on `cfg.data`; returns the generator bundle's path.

    Raises `OutputExistsError` when `cfg.out` already holds a run and `resume` is false, and
    `CheckpointError` when `resume` finds no checkpoint (`vidlab.train.bookkeeping.RunDir`).
    `max_minutes` (0/None: none) ends the run after the step that uses it up.
    """
    from vidlab.config import save_config
    from vidlab.data.manifest import labels_of, load_entries
    from vidlab.progress import progress as bar
    from vidlab.train.bookkeeping import RunDir, TimeBudget
    from vidlab.train.checkpoint import seed_everything
    from vidlab.train.runlog import RunLogger

    run = Path(cfg.out)
    rundir = RunDir(run, "GAN", (BUNDLE_NAME,))
    rundir.claim(resume)
    save_config(cfg, run / "config.yaml")

    entries = load_entries(cfg.data)
    label_names = labels_of(entries, cfg.labels)
    data = real_clips(entries, label_names, num_frames=cfg.num_frames, size=cfg.size,
                      stride=cfg.stride, target_fps=cfg.target_fps,
                      clips_per_video=cfg.clips_per_video,
                      max_bytes=int(cfg.max_memory_gb * 2**30), progress=progress)
    log.info("GAN data: %d clips of %d classes in memory (%.0f MB)", len(data),
             len(label_names), data.clips.nbytes / 2**20)
    real, targets = torch.from_numpy(data.clips), torch.from_numpy(data.targets)

    seed_everything(cfg.seed)
    models = GanModels(cfg, len(label_names))
    logger = RunLogger(run)
    step = 0
    if resume:
        state = rundir.load()
        models.load_state_dict(state["models"])
        step = int(state["step"])
        logger.truncate_after(step)
    monitor = _QualityMonitor(cfg, data, run) if cfg.classifier else None

    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    budget = TimeBudget(cfg.max_minutes)
    bar_ = bar(total=cfg.steps, initial=step, desc="gan", enabled=None if progress else False)
    try:
        while step < cfg.steps:
            idx = torch.randint(0, len(data), (cfg.batch_size,))
            losses = train_step(models, real[idx], targets[idx], cfg, step)
            step += 1
            bar_.update(1)
            if step % cfg.log_every == 0:
                logger.log({"phase": "train", "step": step, **losses}, step=step)
                bar_.set_postfix(d=f"{losses['loss_d_video']:.2f}", g=f"{losses['loss_g']:.2f}")
            out_of_time = budget.over()
            last = step == cfg.steps or out_of_time
            if step % cfg.sample_every == 0 or last:
                write_samples(models.ema.module, label_names, cfg, run / "samples" / f"step_{step:06d}")
            if monitor and (step % cfg.eval_every == 0 or last):
                record = monitor.evaluate(models.ema.module, step)
                if record:
                    logger.log({"phase": "eval", "step": step, **record}, step=step)
                    monitor.plot(logger.records())
            if step % cfg.checkpoint_every == 0 or last:
                rundir.save({"models": models.state_dict(), "step": step,
                             "config": cfg.model_dump(mode="json")})
            if out_of_time:
                log.warning("stopping at step %d: max_minutes=%s reached", step, cfg.max_minutes)
                break
    finally:
        torch.set_num_threads(threads)
        bar_.close()
        logger.close()
    metrics = monitor.last if monitor else {}
    return save_generator(run / BUNDLE_NAME, models.ema.module, label_names, cfg, step, metrics)


def write_samples(g: GeneratorBase, label_names: list[str], cfg: GanConfig, stem: Path) -> None:
    """A grid with one row per class (`samples_per_class` columns) as `stem.mp4` and `.gif`."""
    from vidlab.gen.media import make_grid, write_clip

    labels = torch.arange(len(label_names)).repeat_interleave(cfg.samples_per_class)
    clips = to_uint8(g.eval().generate(labels, seed=SAMPLE_SEED)).numpy()
    grid = make_grid(clips, cols=cfg.samples_per_class)
    fps = cfg.target_fps or 12.0
    stem.parent.mkdir(parents=True, exist_ok=True)
    for suffix in (".mp4", ".gif"):
        write_clip(stem.with_suffix(suffix), grid, fps, overwrite=True)


def save_generator(path: Path, g: GeneratorBase, label_names: list[str], cfg: GanConfig,
                   step: int, metrics: dict[str, Any]) -> Path:
    """Write the EMA generator as a bundle with `task: "generate"`."""
    from vidlab.bundle import save_bundle

    config = {
        "task": "generate",
        "model": {"name": "video_gan", "generator": g.kind, "num_classes": len(label_names),
                  "kwargs": g.arch_kwargs()},
        "labels": list(label_names),
        "clip": {"num_frames": cfg.num_frames, "size": cfg.size, "fps": cfg.target_fps or 12.0,
                 "stride": cfg.stride, "target_fps": cfg.target_fps},
        "train": {"steps": step, "config": cfg.model_dump(mode="json")},
    }
    save_bundle(path, config=config, state_dict=g.state_dict(), metrics=metrics, overwrite=True)
    return path


class _QualityMonitor:
    """Periodic Fréchet distance and class consistency of the EMA generator during training."""

    def __init__(self, cfg: GanConfig, data: ClipSet, run: Path):
        self.cfg, self.run, self.data = cfg, run, data
        self.space: Any = None
        self.last: dict[str, Any] = {}
        if Path(cfg.classifier or "").exists():
            self._setup()  # fail fast on a bad bundle; one still being trained is loaded later

    def _setup(self) -> None:
        """Load the classifier and score the real baselines, once, at the first evaluation."""
        from vidlab.bundle import load_bundle
        from vidlab.gen.eval import FeatureSpace, real_baselines

        self.space = FeatureSpace(load_bundle(self.cfg.classifier))
        self.reference, self.baselines = real_baselines(self.space, self.data,
                                                        self.cfg.eval_samples, seed=self.cfg.seed)

    def evaluate(self, g: GeneratorBase, step: int) -> dict[str, Any]:
        from vidlab.gen.eval import score_generator

        if self.space is None:
            if not Path(self.cfg.classifier or "").exists():
                log.warning("step %d: classifier %s not there yet, evaluation skipped", step,
                            self.cfg.classifier)
                return {}
            self._setup()

        figures = score_generator(self.space, g, self.reference, self.cfg.eval_samples,
                                  seed=SAMPLE_SEED)
        self.last = {**figures, "baselines": self.baselines, "step": step}
        flat = {k: v for k, v in figures.items() if isinstance(v, int | float)}
        for name, b in self.baselines.items():
            flat.update({f"{name}_{k}": v for k, v in b.items() if isinstance(v, int | float)})
        return flat

    def plot(self, records: list[dict[str, Any]]) -> None:
        from vidlab.gen.plot import plot_quality

        plot_quality(records, self.run / "quality.png")


def _requires_grad(module: torch.nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)
