"""The training loop, visible top to bottom (nanoGPT's directness).

AMP, accumulation, EMA, clipping, DDP, checkpoints and the time budget are a few lines each
inside `Trainer.run`, switched by the config. Exact resume: a checkpoint after an optimizer step
holds the model, optimizer, schedule, EMA, scaler, every rank's RNG state and the position in
the epoch's sample order; the loader restarts from that position with the same per-epoch order.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vidlab.errors import CheckpointError, TrainingError
from vidlab.progress import progress
from vidlab.train.bf16 import locate_bf16_fault, probe_bf16
from vidlab.train.bookkeeping import RunDir, units_that_fit
from vidlab.train.checkpoint import capture_rng_state, restore_rng_state
from vidlab.train.config import TrainConfig
from vidlab.train.distributed import (
    DistInfo,
    ResumableShardSampler,
    all_gather_objects,
    all_reduce_mean,
    broadcast_object,
)
from vidlab.train.ema import ModelEma
from vidlab.train.hardware import (
    Precision,
    pick_precision,
    training_example,
    training_memory_format,
)
from vidlab.train.optim import Schedule, build_optimizer, l1_penalty
from vidlab.train.runlog import RunLogger

log = logging.getLogger(__name__)

SHARDED_CHECKPOINT = "checkpoints/last-{step:08d}.dcp"
"""Under FSDP: the torch.distributed.checkpoint directory of the model and optimizer shards,
one per saved step; `last.pt` names the one it belongs to, so a kill never pairs mismatches."""
MAX_NONFINITE_STEPS = 10
"""Consecutive NaN/inf updates after which training stops with `TrainingError`."""


class Trainer:
    """Trains `model` on `train_entries`, evaluating on `val_entries` after each epoch.

    `on_best(model, metrics, epoch)` is called (rank 0) whenever the monitored validation metric
    improves; `on_epoch(epoch, record)` after every epoch (tuning reports to Optuna there and
    may raise to prune). `precision` None resolves `train.amp` here, once the model and its
    memory format are known (`auto` may probe bf16 against fp32 on the real model).
    """

    def __init__(self, config: TrainConfig, model: nn.Module, train_entries: list[dict],
                 val_entries: list[dict], labels: list[str], run_dir: Path, info: DistInfo,
                 device: torch.device, precision: Precision | None, logger: RunLogger,
                 on_best: Callable[[nn.Module, dict, int], None] | None = None,
                 on_epoch: Callable[[int, dict], None] | None = None,
                 teacher: nn.Module | None = None, train_shards: list | None = None):

        self.cfg, self.labels, self.info = config, labels, info
        self.run_dir, self.device, self.logger = run_dir, device, logger
        self.rundir = RunDir(Path(run_dir))
        self.on_best, self.on_epoch = on_best, on_epoch
        self.val_entries = val_entries
        t = config.train
        self.sampler: ResumableShardSampler | None = None
        """The files' sampler; None when streaming `train_shards` (the stream plans epochs)."""
        if train_shards:
            from vidlab.data.stream import shard_loader

            self.loader = shard_loader(train_shards, labels, config.data, t.batch_size,
                                       seed=t.seed, rank=info.rank, world_size=info.world_size)
            self.batches_per_epoch = self.loader.dataset.batches
        else:
            from vidlab.data.loader import make_loader, num_batches

            self.sampler = ResumableShardSampler(len(train_entries), info, shuffle=True,
                                                 seed=t.seed)
            drop_last = self.sampler.per_rank >= t.batch_size  # never an empty epoch
            self.loader = make_loader(train_entries, labels, config.data, train=True,
                                      batch_size=t.batch_size, seed=t.seed,
                                      sampler=self.sampler, drop_last=drop_last)
            self.batches_per_epoch = num_batches(self.sampler.per_rank, t.batch_size, drop_last)
        self.steps_per_epoch = max(1, math.ceil(self.batches_per_epoch / t.accumulation))
        self.epochs = t.epochs

        self.model = model.to(device)
        self.memory_format = training_memory_format(self.model, t.memory_format, config.data,
                                                    t.batch_size, device)
        self.model = self.model.to(memory_format=self.memory_format)
        self.precision = precision or self._pick_precision()
        if info.enabled and device.type == "cuda" and t.sync_bn:
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        if t.activation_checkpointing:
            from vidlab.models.blocks import checkpoint_blocks

            checkpoint_blocks(self.model)
        self.fsdp = info.enabled and t.strategy == "fsdp"
        self.twin: nn.Module | None = None
        """Under FSDP, rank 0's unsharded CPU copy that receives the gathered weights."""
        if self.fsdp:  # shard per block instead of DDP; rank 0 keeps an unsharded CPU copy
            from vidlab.train.sharding import shard_for_training

            if config.ema.enabled:
                log.info("FSDP: EMA is off (an average of sharded weights is not kept)")
            self.twin = shard_for_training(self.model, device, self.precision.dtype, info.is_main)
        self.optimizer = build_optimizer(self.model, config.optim)
        self.schedule = Schedule(self.optimizer, config.schedule, self.steps_per_epoch,
                                 self.steps_per_epoch * self.epochs)
        self.ema = (ModelEma(self.model, config.ema.decay, config.ema.warmup_steps)
                    if config.ema.enabled and not self.fsdp else None)
        self.scaler = torch.amp.GradScaler(device.type) if self.precision.use_scaler else None
        self.ddp = (nn.parallel.DistributedDataParallel(
            self.model, device_ids=[device.index] if device.type == "cuda" else None)
            if info.enabled and not self.fsdp else None)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=config.regularization.label_smoothing)
        reg = config.regularization
        self.teacher = teacher.to(device).eval() if teacher is not None and reg.distill_alpha else None
        self.mix = _mixer(config, len(labels))

        self.epoch, self.batch_in_epoch, self.step = 0, 0, 0
        self.best, self.best_epoch, self.bad_evals = -math.inf, -1, 0
        self.nonfinite_steps = 0
        self.elapsed, self.epoch_times = 0.0, []
        self.acc = _fresh_sums()

    def gathered(self) -> nn.Module | None:
        """The evaluated model with its full weights, on rank 0 (None on the other ranks).

        Under FSDP every rank must call it (the weights are all-gathered into `twin`).
        """
        if not self.fsdp:
            return self.ema.module if self.ema else self.model
        from vidlab.train.sharding import gather_into

        return gather_into(self.twin, self.model)

    # ---- state ---------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        sharded = None
        if self.fsdp:  # weights and optimizer go to a DCP directory that last.pt names
            from vidlab.train.sharding import save_sharded

            sharded = SHARDED_CHECKPOINT.format(step=self.step)
            save_sharded(self.run_dir / sharded, self.model, self.optimizer, self.info)
        return {
            "model": None if self.fsdp else self.model.state_dict(),
            "optimizer": None if self.fsdp else self.optimizer.state_dict(),
            "sharded": sharded,
            "schedule": self.schedule.state_dict(),
            "ema": self.ema.state_dict() if self.ema else None,
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "step": self.step,
            "epochs": self.epochs, "best": self.best, "best_epoch": self.best_epoch,
            "bad_evals": self.bad_evals, "elapsed": self.elapsed,
            "epoch_times": list(self.epoch_times), "acc": dict(self.acc),
            "world_size": self.info.world_size, "precision": self.precision.name,
        }

    def save(self) -> None:
        rngs = all_gather_objects(capture_rng_state(), self.info)  # every rank takes part
        state = self.state()  # under FSDP every rank writes its shards here
        if self.info.is_main:
            self.rundir.save(state, rng=rngs)
            if state["sharded"]:  # last.pt now names the new shards: drop the older ones
                import shutil

                for old in self.rundir.checkpoint.parent.glob("last-*.dcp"):
                    if old.name != Path(state["sharded"]).name:
                        shutil.rmtree(old, ignore_errors=True)

    def resume(self) -> None:
        s = self.rundir.load(restore_rng=False)  # one RNG state per rank, restored below
        if s["world_size"] != self.info.world_size:
            log.warning("resuming a %d-process run with %d processes: the sample order changes",
                        s["world_size"], self.info.world_size)
        if self.fsdp != bool(s.get("sharded")):
            raise CheckpointError("was written with another train.strategy (FSDP shards vs one "
                                  "state dict): resume it as it was trained",
                                  self.rundir.checkpoint)
        if self.fsdp:
            from vidlab.train.sharding import load_sharded

            load_sharded(self.run_dir / s["sharded"], self.model, self.optimizer)
        else:
            self.model.load_state_dict(s["model"])
            self.optimizer.load_state_dict(s["optimizer"])
        self.schedule.load_state_dict(s["schedule"])
        if self.ema and s["ema"]:
            self.ema.load_state_dict(s["ema"])
        if s.get("precision", self.precision.name) != self.precision.name:
            log.info("resuming in %s, the precision the run started with (not %s)",
                     s["precision"], self.precision.name)
            self.precision = Precision.named(s["precision"], reason="the resumed run's")
            self.scaler = torch.amp.GradScaler(self.device.type) if self.precision.use_scaler else None
        if self.scaler and s["scaler"]:
            self.scaler.load_state_dict(s["scaler"])
        rngs = s["rng"]
        restore_rng_state(rngs[self.info.rank] if self.info.rank < len(rngs) else rngs[0])
        self.epoch, self.batch_in_epoch, self.step = s["epoch"], s["batch_in_epoch"], s["step"]
        self.epochs, self.best, self.best_epoch = s["epochs"], s["best"], s["best_epoch"]
        self.bad_evals, self.elapsed = s["bad_evals"], s["elapsed"]
        self.epoch_times, self.acc = list(s["epoch_times"]), dict(s["acc"])
        self.logger.truncate_after(self.step)
        log.info("resumed at epoch %d, batch %d (step %d)", self.epoch + 1, self.batch_in_epoch,
                 self.step)

    # ---- the loop ------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Train to the end (epochs, time budget or early stop); returns the last epoch record."""
        t = self.cfg.train
        net = self.ddp or self.model
        if t.compile:
            net = torch.compile(net)
        last: dict[str, Any] = {}
        while self.epoch < self.epochs:
            t0 = time.perf_counter()
            if self.sampler is None:  # shards: the stream skips what was trained on
                self.loader.set_epoch(self.epoch, skip_batches=self.batch_in_epoch)
            else:
                self.loader.set_epoch(self.epoch)  # the dataset's augmentation draws
                self.sampler.set_epoch(self.epoch, start=self.batch_in_epoch * t.batch_size)
            self._train_mode()
            bar = progress(total=self.batches_per_epoch, initial=self.batch_in_epoch,
                           desc=f"epoch {self.epoch + 1}/{self.epochs}", enabled=None
                           if self.info.is_main else False)
            batches = self.batches_per_epoch
            for clips, targets in self.loader:
                x = clips.to(self.device, non_blocking=True).to(memory_format=self.memory_format)
                y = targets.to(self.device, non_blocking=True)
                soft = self.mix(x, y, self.epoch, self.batch_in_epoch) if self.mix else None
                if soft is not None:
                    x, y_loss = soft[0], soft[1].to(self.device)
                else:
                    y_loss = y
                self.batch_in_epoch += 1
                self.last_batch = (x, y_loss)  # recomputed if its step goes NaN/inf
                boundary = self.batch_in_epoch % t.accumulation == 0 or self.batch_in_epoch == batches
                sync = nullcontext() if boundary or self.ddp is None else self.ddp.no_sync()
                if self.fsdp:  # accumulate locally; reduce-scatter on the boundary micro-batch
                    self.model.set_requires_gradient_sync(boundary)
                with sync:
                    with self._autocast():
                        logits = net(x)
                        loss = self.criterion(logits.float(), y_loss)
                        if self.teacher is not None:
                            loss = self._distilled(loss, logits.float(), x)
                    total = loss / t.accumulation
                    if self.cfg.optim.l1 > 0:
                        total = total + self.cfg.optim.l1 * l1_penalty(self.model)
                    (self.scaler.scale(total) if self.scaler else total).backward()
                n = int(y.shape[0])
                hard = y if y.ndim == 1 else y.argmax(dim=1)
                self.acc["loss"] += float(loss.detach()) * n
                self.acc["correct"] += int((logits.detach().argmax(1) == hard).sum())
                self.acc["n"] += n
                if boundary:
                    self._optimizer_step()
                    if self.step % t.log_every == 0 and self.info.is_main:
                        self.logger.log({"phase": "train", "epoch": self.epoch + 1,
                                         "step": self.step, "loss": float(loss.detach()),
                                         "lr": self.schedule.lr()}, step=self.step)
                    if t.checkpoint_every and self.step % t.checkpoint_every == 0 \
                            and self.batch_in_epoch < batches:
                        self.elapsed_add(t0)
                        t0 = time.perf_counter()
                        self.save()
                if self._out_of_time(t0):
                    log.warning("time budget of %.1f min used up mid-epoch: stopping",
                                t.max_minutes)
                    self.epochs = self.epoch + 1  # a resume must not continue either
                    break
                bar.update(1)
                seen = max(1, self.acc["n"])
                rate = self.acc["n"] / max(1e-9, self.elapsed - sum(self.epoch_times)
                                           + time.perf_counter() - t0)
                bar.set_postfix(loss=f"{self.acc['loss'] / seen:.3f}",
                                acc=f"{self.acc['correct'] / seen:.3f}",
                                clips_s=f"{rate * self.info.world_size:.1f}",
                                lr=f"{self.schedule.lr():.2e}")
            bar.close()
            self.elapsed_add(t0)
            last = self._end_epoch()
            if last.get("stop"):
                break
        return last

    def _distilled(self, hard_loss: torch.Tensor, logits: torch.Tensor,
                   x: torch.Tensor) -> torch.Tensor:
        """Hinton et al.'s mix: (1-α)·CE + α·T²·KL(teacher‖student) at temperature T."""
        reg = self.cfg.regularization
        temp = reg.distill_temperature
        with torch.no_grad():
            target = torch.log_softmax(self.teacher(x).float() / temp, dim=1)
        kl = nn.functional.kl_div(torch.log_softmax(logits / temp, dim=1), target,
                                  reduction="batchmean", log_target=True)
        return (1 - reg.distill_alpha) * hard_loss + reg.distill_alpha * temp * temp * kl

    def _out_of_time(self, t0: float) -> bool:
        """Past `train.max_minutes` (rank 0's clock decides, so every rank stops together)."""
        budget = self.cfg.train.max_minutes
        if not budget:
            return False
        late = self.elapsed + time.perf_counter() - t0 > budget * 60
        return bool(broadcast_object(late, self.info))

    def elapsed_add(self, t0: float) -> None:
        self.elapsed += time.perf_counter() - t0

    def _optimizer_step(self) -> None:
        clip = self.cfg.optim.grad_clip
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        # The norm is needed anyway to catch NaN/inf (max_norm=inf leaves the gradients as they
        # are); gradients are already all-reduced, so every rank reaches the same verdict.
        norm = nn.utils.clip_grad_norm_(self.model.parameters(), clip or math.inf)
        if self.fsdp:
            from vidlab.train.sharding import local_norm

            norm = local_norm(norm)
        if self.scaler is None and not torch.isfinite(norm):
            if self.precision.dtype is torch.bfloat16:
                self._check_bf16_fault()
            self._skip_nonfinite_step()
            return
        self.nonfinite_steps = 0
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.schedule.step()
        if self.ema:
            self.ema.update(self.model)
        self.step += 1

    def _check_bf16_fault(self) -> None:
        """A NaN/inf step in bf16: if fp32 computes the same batch finitely, bf16 is at fault
        (an op or kernel that fails in bf16): name it and train in fp32 from here on."""
        where = (locate_bf16_fault(self.model, *self.last_batch, self.criterion)
                 if self.info.is_main else None)
        where = broadcast_object(where, self.info)
        if where is None:
            return
        log.warning("step %d: bf16 gave NaN/inf in %s on a batch that fp32 computes finitely: "
                    "training in fp32 from here on", self.step + 1, where)
        self.precision = Precision(None, reason=f"fp32 from step {self.step + 1}: bf16 gave "
                                                f"NaN/inf in {where}, fp32 did not")

    def _skip_nonfinite_step(self) -> None:
        """Drop an update whose gradients are NaN/inf; give up with a clear error if it keeps
        happening (the weights are then left as they were before the first bad step)."""
        self.optimizer.zero_grad(set_to_none=True)
        self.nonfinite_steps += 1
        log.warning("step %d: gradients are NaN/inf: update skipped", self.step + 1)
        if self.nonfinite_steps >= MAX_NONFINITE_STEPS:
            raise TrainingError(
                f"the loss or gradients were NaN/inf for {self.nonfinite_steps} steps in a row "
                f"(epoch {self.epoch + 1}); lower optim.lr, keep optim.grad_clip, or set "
                f"train.amp=off")

    def _end_epoch(self) -> dict[str, Any]:
        """Evaluate, log, keep the best, fit the time budget, checkpoint; may ask to stop."""
        t, e = self.cfg.train, self.epoch
        epoch_time = sum(self.epoch_times) + 0.0  # before this epoch
        train_time = self.elapsed - epoch_time
        n = all_reduce_mean(self.acc["n"], self.info) * self.info.world_size
        record: dict[str, Any] = {
            "phase": "epoch", "epoch": e + 1, "step": self.step, "lr": self.schedule.lr(),
            "train_loss": all_reduce_mean(self.acc["loss"] / max(1, self.acc["n"]), self.info),
            "train_top1": all_reduce_mean(self.acc["correct"] / max(1, self.acc["n"]), self.info),
            "train_clips_per_s": n / max(train_time, 1e-9), "epoch_time_s": train_time,
        }
        evaluate_now = self.val_entries and ((e + 1) % t.eval_every == 0 or e + 1 == self.epochs)
        if evaluate_now:
            from vidlab.train.evaluation import evaluate_module

            t_eval = time.perf_counter()
            shown = self.ema.module if self.ema else self.model
            val = evaluate_module(shown, self.val_entries, self.labels, self.cfg.data,
                                  views=tuple(self.cfg.data.val_views), info=self.info,
                                  device=self.device, batch_size=t.batch_size,
                                  memory_format=self.memory_format, autocast=self._autocast)
            record.update({"val_loss": val["loss"], "val_top1": val["top1"],
                           "val_top5": val["top5"], "val_mean_class_acc": val["mean_class_acc"]})
            self.elapsed += time.perf_counter() - t_eval
            metric = -val["loss"] if t.monitor == "val_loss" else record[t.monitor]
            self.schedule.observe(metric)
            if metric > self.best + 1e-9:
                self.best, self.best_epoch, self.bad_evals = metric, e + 1, 0
                if self.on_best:
                    full = self.gathered() if self.fsdp else shown  # FSDP: every rank gathers
                    if self.info.is_main:
                        self.on_best(full, {**record, "confusion_matrix": val["confusion_matrix"]},
                                     e + 1)
            else:
                self.bad_evals += 1
        self.epoch_times.append(self.elapsed - epoch_time)
        self._fit_budget()
        record["epochs_planned"] = self.epochs
        if self.info.is_main:
            self.logger.log(record, step=self.step)
        stop = bool(t.early_stopping and self.bad_evals >= t.early_stopping)
        if stop:
            log.info("early stop: no improvement of %s in %d evaluations", t.monitor, self.bad_evals)
        self.epoch, self.batch_in_epoch, self.acc = e + 1, 0, _fresh_sums()
        self.save()
        if self.on_epoch:
            self.on_epoch(e + 1, record)
        return {**record, "stop": stop}

    def _fit_budget(self) -> None:
        """Cut the planned epochs to what fits `train.max_minutes` and re-fit the cosine to it."""
        budget = self.cfg.train.max_minutes
        if not budget or not self.epoch_times:
            return
        done, spent = len(self.epoch_times), sum(self.epoch_times)
        per_epoch = spent / done
        fits = units_that_fit(done, per_epoch, budget * 60.0 - spent, self.cfg.train.epochs,
                              self.epoch + 1)
        # ranks must agree on the plan (their clocks differ slightly)
        planned = int(all_gather_objects(fits, self.info)[0])
        if planned != self.epochs:
            log.info("time budget %.1f min: %d epochs of %.1f s fit", budget, planned, per_epoch)
            self.epochs = planned
            self.schedule.refit(self.steps_per_epoch * planned)

    def _train_mode(self) -> None:
        self.model.train()
        if self.cfg.regularization.freeze_bn:
            for m in self.model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def _pick_precision(self) -> Precision:
        """`train.amp` for this device; `auto` on a CPU with bf16 units probes the real model
        (rank 0 decides, so every DDP rank trains in the same precision). A deterministic run
        is not probed: its precision must not depend on a timing."""
        t = self.cfg.train

        def probe():
            example = training_example(self.model, self.cfg.data, min(8, t.batch_size), self.device)
            return probe_bf16(self.model, example.contiguous(memory_format=self.memory_format),
                              len(self.labels))

        chosen = (pick_precision(t.amp, self.device, None if t.deterministic else probe)
                  if self.info.is_main else None)
        return broadcast_object(chosen, self.info)

    def _autocast(self):
        if self.precision.dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.precision.dtype)


def _fresh_sums() -> dict[str, float]:
    return {"loss": 0.0, "correct": 0, "n": 0}


def _mixer(config: TrainConfig, num_classes: int):
    """Mixup/CutMix on the batch (data.mixup_alpha / data.cutmix_alpha), or None."""
    d = config.data
    if not (d.mixup_alpha > 0 or d.cutmix_alpha > 0):
        return None
    from vidlab.data.mix import mix_batch

    def mix(x: torch.Tensor, y: torch.Tensor, epoch: int, batch: int):
        # seeded by the position, so a resumed run mixes exactly as an uninterrupted one would
        rng = np.random.default_rng([config.train.seed, epoch, batch])
        return mix_batch(x, y, num_classes=num_classes, mixup_alpha=d.mixup_alpha,
                         cutmix_alpha=d.cutmix_alpha, generator=rng)

    return mix
