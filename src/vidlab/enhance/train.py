"""Training an enhancer: pairs from the cached pool, Charbonnier loss, AdamW + warm-up cosine,
EMA weights, exact resume, and a bundle (`RUN/enhancer.vidlab`) with measured PSNR.

The loop is the training engine's: its optimizer/schedule builders, EMA, atomic checkpoints
with RNG state and run log; only the data (degraded/clean pairs) and the loss are specific.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidlab.enhance.model import build_enhancer, check_lowcut
from vidlab.enhance.pool import PairPool, PoolSpec, build_pool
from vidlab.errors import CheckpointError, ConfigError
from vidlab.io.quality import LUMA_WEIGHTS
from vidlab.progress import progress

log = logging.getLogger(__name__)

TASKS = {"restore": 1, "sr2x": 2}
BUNDLE_NAME = "enhancer.vidlab"
CHECKPOINT = "checkpoints/last.pt"


@dataclass
class EnhanceTrainConfig:
    """Everything a run depends on (saved in the run and the bundle)."""

    task: str = "restore"
    steps: int = 2000
    batch_size: int = 16
    patch: int = 64
    num_frames: int = 5
    channels: int = 48
    num_blocks: int = 8
    context_blocks: int = 0
    """Residual blocks of the quarter-resolution context branch (0: none)."""
    align: bool = False
    """Warp the neighbour frames' features onto the centre frame's (`FlowAlign`) before fusing."""
    qp_cond: bool = False
    """Condition the model on the centre frame's QP as the decoder reports it (`QualityFiLM`);
    the pool then records every degraded frame's QP."""
    lowcut: int = 0
    """Remove the residual's box mean over this odd width (px; `EnhanceNet.lowcut`; 0: off)."""
    blind_share: float = 0.1
    """qp_cond: share of training samples shown without their QP (the blind mode for streams
    whose quantiser is unknown)."""
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    ema_decay: float = 0.999
    eval_every: int = 100
    checkpoint_every: int = 100
    seed: int = 0
    threads: int | None = None
    device: str = "auto"
    """`auto`: CUDA when present, else CPU; or any torch device name."""
    max_minutes: float | None = None
    """Wall-clock budget of one call: at every evaluation the planned steps are cut to what fits
    at the measured pace and the cosine is re-fitted to them (so the learning rate still anneals);
    the run then ends as if it had reached `steps` (EMA weights evaluated and bundled)."""
    pool_workers: int | None = None
    """Processes that make the pool (default: one per core, at most 8); not part of the result."""
    luma_weight: float = 0.0
    """Share of the loss measured on luma (BT.601) instead of RGB: PSNR is usually reported on
    luma, and heavy compression spends most of its bits there."""
    loss: str = "charbonnier"
    """`charbonnier` (a smooth L1: robust, sharp) or `mse` (what PSNR measures; for a short final
    fine-tune of a Charbonnier-trained model)."""
    init: str | None = None
    """A bundle to start from: every weight whose name and shape match is copied (a model grown
    with a context branch starts exactly where the bundle's model was)."""
    pool: dict[str, Any] = field(default_factory=dict)
    """Overrides of `PoolSpec` fields (windows, window_frames, quality_range, ...)."""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"unknown enhance task {self.task!r} (use restore or sr2x)")
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError("steps and batch_size must be >= 1")
        if self.lr <= 0 or self.weight_decay < 0 or self.warmup_steps < 0:
            raise ConfigError("lr must be > 0, weight_decay and warmup_steps >= 0")
        if self.patch % (2 * TASKS[self.task]):
            raise ConfigError(f"patch must be a multiple of {2 * TASKS[self.task]}")
        if not 0.0 <= self.luma_weight <= 1.0:
            raise ConfigError(f"luma_weight must be in [0, 1], got {self.luma_weight}")
        if self.context_blocks < 0:
            raise ConfigError("context_blocks must be >= 0")
        if not 0.0 <= self.blind_share <= 1.0:
            raise ConfigError(f"blind_share must be in [0, 1], got {self.blind_share}")
        if self.qp_cond and self.task != "restore":
            raise ConfigError("qp_cond is for restore models (sr2x inputs carry no QP)")
        if not 0.0 <= float(self.pool.get("tone_share", 0.0)) <= 1.0:
            raise ConfigError(f"tone_share must be in [0, 1], got {self.pool['tone_share']}")
        check_lowcut(self.lowcut, ConfigError)
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r} (use {' or '.join(LOSSES)})")

    @property
    def scale(self) -> int:
        return TASKS[self.task]

    def model_kwargs(self) -> dict[str, int]:
        kwargs = {"num_frames": self.num_frames, "channels": self.channels,
                  "num_blocks": self.num_blocks, "scale": self.scale}
        if self.context_blocks:  # absent from older bundles, whose models have no branch
            kwargs["context_blocks"] = self.context_blocks
        if self.align:
            kwargs["align"] = True
        if self.qp_cond:
            kwargs["qp_cond"] = True
        if self.lowcut:
            kwargs["lowcut"] = self.lowcut
        return kwargs

    def pool_spec(self) -> PoolSpec:
        kw = dict(self.pool)
        if self.qp_cond:
            kw["record_qp"] = True
        if "quality_range" in kw:
            kw["quality_range"] = tuple(kw["quality_range"])
        return PoolSpec(task=self.task, seed=self.seed, **kw)


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """A smooth L1: robust like L1, differentiable at zero."""
    return torch.sqrt((pred - target) ** 2 + eps * eps).mean()


LOSSES = {"charbonnier": charbonnier, "mse": torch.nn.functional.mse_loss}


def enhance_loss(pred: torch.Tensor, target: torch.Tensor, luma_weight: float = 0.0,
                 kind: str = "charbonnier") -> torch.Tensor:
    """`kind` (charbonnier or mse) on RGB, with `luma_weight` of it moved onto BT.601 luma."""
    fn = LOSSES[kind]
    loss = fn(pred, target)
    if luma_weight:
        weights = torch.tensor(LUMA_WEIGHTS, device=pred.device).view(1, 3, 1, 1)
        luma = fn((pred * weights).sum(1), (target * weights).sum(1))
        loss = (1 - luma_weight) * loss + luma_weight * luma
    return loss


def init_from_bundle(model: torch.nn.Module, bundle: str | Path) -> tuple[int, int]:
    """Copy the weights of `bundle` whose names and shapes match into `model`; returns
    `(copied, total)` tensors. A bundle of another task or with nothing in common is an error.

    Residual blocks the bundle has no weights for (a deeper trunk, a new context branch) start
    as the identity (last convolution zeroed), so the grown model starts exactly where the
    bundle's model was and its new blocks learn from there.
    """
    from vidlab.enhance.infer import load_enhance_bundle
    from vidlab.enhance.model import ResidualBlock
    from vidlab.errors import BundleError

    b = load_enhance_bundle(bundle)
    own = model.state_dict()
    matched = {k: v for k, v in b.state_dict().items()
               if k in own and own[k].shape == v.shape}
    if not matched:
        raise BundleError("no weight of this bundle fits the model being trained", b.path)
    model.load_state_dict(matched, strict=False)
    for name, module in model.named_modules():
        if isinstance(module, ResidualBlock) and f"{name}.conv2.weight" not in matched:
            torch.nn.init.zeros_(module.conv2.weight)
            torch.nn.init.zeros_(module.conv2.bias)
    return len(matched), len(own)


def train_enhancer(data: str | Path, out: str | Path, config: EnhanceTrainConfig | None = None,
                   resume: bool = False, stop_after: int | None = None) -> dict[str, Any]:
    """Train on clean clips under `data` (folder tree or manifest); write the run to `out`.

    `resume` continues from `out/checkpoints/last.pt` to the same result as an uninterrupted
    run. `stop_after` ends this call (with a checkpoint) after that many total steps, to split a
    run across sessions. Returns a summary with the bundle path and validation PSNR.
    """
    from vidlab.train.bookkeeping import RunDir, TimeBudget
    from vidlab.train.checkpoint import seed_everything
    from vidlab.train.config import OptimConfig, ScheduleConfig
    from vidlab.train.ema import ModelEma
    from vidlab.train.hardware import pick_device
    from vidlab.train.optim import Schedule, build_optimizer
    from vidlab.train.runlog import RunLogger

    cfg = config or EnhanceTrainConfig()
    run = Path(out)
    rundir = RunDir(run, "enhancement", checkpoint_name=CHECKPOINT)
    rundir.claim(resume)  # a CheckpointError either way: nothing to resume, or a run to clobber
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.set_flush_denormal(True)
    seed_everything(cfg.seed)

    device = pick_device(cfg.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # one patch size all run: pick the fastest kernels
    records = build_pool(run, data, cfg.pool_spec(), workers=cfg.pool_workers)
    train_pool = PairPool(run, records, "train", cfg.num_frames, cfg.scale,
                          blind_share=cfg.blind_share if cfg.qp_cond else 0.0)
    val_pool = PairPool(run, records, "val", cfg.num_frames, cfg.scale)

    model = build_enhancer(**cfg.model_kwargs())
    if cfg.init and not resume:
        copied, total = init_from_bundle(model, cfg.init)
        log.info("initialised %d of %d weight tensors from %s", copied, total, cfg.init)
    model.to(device)
    optimizer = build_optimizer(model, OptimConfig(lr=cfg.lr, weight_decay=cfg.weight_decay))
    schedule = Schedule(optimizer, ScheduleConfig(warmup_epochs=cfg.warmup_steps),
                        steps_per_epoch=1, total_steps=cfg.steps)
    ema = ModelEma(model, decay=cfg.ema_decay, warmup_steps=min(cfg.warmup_steps, cfg.steps))
    logger = RunLogger(run)
    step = 0
    if resume:
        state = rundir.load()
        if state.get("task") != cfg.task:
            raise CheckpointError(f"checkpoint is for task {state.get('task')!r}, not "
                                  f"{cfg.task!r}", rundir.checkpoint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        ema.load_state_dict(state["ema"])
        step = int(state["step"])
        schedule.load_state_dict({**state["schedule"], "total_steps": cfg.steps})
        logger.truncate_after(step)
    (run / "config.json").write_text(json.dumps(asdict(cfg), indent=2))

    def checkpoint() -> None:
        rundir.save({"task": cfg.task, "step": step, "model": model.state_dict(),
                     "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                     "ema": ema.state_dict()})

    last = min(cfg.steps, stop_after or cfg.steps)
    bar = progress(total=last, initial=step, desc=f"enhance train ({cfg.task})")
    budget, first_step = TimeBudget(cfg.max_minutes), step  # this session's budget
    planned = cfg.steps
    model.train()
    while step < min(last, planned) and not budget.over():
        inputs, targets, *quality = (t.to(device, non_blocking=True) for t in
                                     train_pool.batch(cfg.batch_size, cfg.patch, cfg.qp_cond))
        pred = model(inputs, *quality)
        loss = enhance_loss(pred, targets, cfg.luma_weight, cfg.loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        ema.update(model)
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        logger.log({"phase": "train", "step": step, "loss": float(loss.item()),
                    "lr": schedule.lr()}, step=step)
        if step % cfg.eval_every == 0 or step == cfg.steps:
            val = evaluate(ema.module, val_pool)
            logger.log({"phase": "val", "step": step, **val}, step=step)
            bar.set_postfix(loss=f"{loss.item():.4f}", psnr_gain=f"{val['psnr_gain_db']:+.2f}")
            model.train()
            if cfg.max_minutes:
                planned = steps_that_fit(step, step - first_step, budget.elapsed_s,
                                         budget.left_s(), cfg.steps)
                schedule.refit(planned)
        if step % cfg.checkpoint_every == 0 or step in (last, planned) or budget.over():
            checkpoint()
    bar.close()
    elapsed = budget.elapsed_s
    summary: dict[str, Any] = {"run": str(run), "task": cfg.task, "device": str(device), "step": step,
                               "steps": cfg.steps, "seconds": round(elapsed, 2),
                               "steps_per_s": round((step - first_step) / max(elapsed, 1e-9), 3)}
    out_of_time = step < last and (step >= planned or budget.over())
    if out_of_time:
        log.warning("max_minutes=%s spent at step %d of %d: ending the run here", cfg.max_minutes,
                    step, cfg.steps)
        summary["stopped_by_time_limit"] = True
    if step >= cfg.steps or out_of_time:
        val = evaluate(ema.module, val_pool, with_filters=cfg.task == "restore")
        bundle = _save(run, cfg, ema.module, val, records)
        summary.update(bundle=str(bundle.path), val=val)
    logger.close()
    return summary


def steps_that_fit(step: int, done: int, spent_s: float, left_s: float, steps: int) -> int:
    """The run's planned length under a time budget: `step` plus what fits in `left_s` at the
    pace of the `done` steps that took `spent_s`, never beyond `steps` nor before `step + 1`
    (`vidlab.train.bookkeeping.units_that_fit` in steps)."""
    from vidlab.train.bookkeeping import units_that_fit

    return units_that_fit(step, spent_s / max(done, 1), left_s, steps, step + 1)


@torch.no_grad()
def evaluate(model: torch.nn.Module, pool: PairPool, with_filters: bool = False) -> dict[str, Any]:
    """Mean luma PSNR on the held-out windows' centre frames: model vs its input baseline."""
    from vidlab.enhance.baselines import bicubic2x, ffmpeg_filter
    from vidlab.enhance.infer import enhance_window
    from vidlab.io import psnr

    model.eval()
    scores: dict[str, list[float]] = {"psnr": [], "psnr_input": []}
    if with_filters:
        scores.update(psnr_nlmeans=[])
    for i in range(len(pool)):
        window, clean = pool.window(i)
        centre = window[len(window) // 2]
        quality = pool.window_quality(i) if model.qp_conditioned else None
        scores["psnr"].append(psnr(clean, enhance_window(model, window, quality=quality)))
        base = bicubic2x(centre[None])[0] if pool.scale == 2 else centre
        scores["psnr_input"].append(psnr(clean, base))
        if with_filters:
            scores["psnr_nlmeans"].append(psnr(clean, ffmpeg_filter(window, "nlmeans")[
                len(window) // 2]))
    out = {k: round(float(np.mean(v)), 3) for k, v in scores.items()}
    out["psnr_gain_db"] = round(out["psnr"] - out["psnr_input"], 3)
    out["windows"] = len(pool)
    return out


def _save(run: Path, cfg: EnhanceTrainConfig, model: torch.nn.Module, val: dict[str, Any],
          records: list[dict[str, Any]]):
    from vidlab.bundle import save_bundle

    config = {
        "task": "enhance", "enhance_task": cfg.task, "num_frames": cfg.num_frames,
        "scale": cfg.scale, "labels": [],
        "model": {"name": "enhancenet", "kwargs": cfg.model_kwargs()},
        "train": {**asdict(cfg), "pool_spec": cfg.pool_spec().to_dict()},
    }
    clips = sorted({r["clip"] for r in records})
    stats = {"clips": len(clips), "windows": len(records),
             "degradations": sorted({f"{r.get('codec', 'downscale')}"
                                     f":{r.get('mode', '')}" for r in records})}
    metrics = {"val": val, "baseline": "bicubic" if cfg.scale == 2 else "degraded input"}
    return save_bundle(run / BUNDLE_NAME, config=config, state_dict=model.state_dict(),
                       metrics=metrics, data_stats=stats, overwrite=True)
