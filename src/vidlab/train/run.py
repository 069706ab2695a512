"""`fit(config)`: one training run from a dataset to `RUN_DIR/best.vidlab`.

Sets up devices/precision/DDP, resolves the data (scan, clean, split), builds the model, runs
the `Trainer`, then tests the best weights and writes the bundle, plots and final metrics.
Only rank 0 writes files.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidlab.config import load_config, save_config
from vidlab.data.samplers import views_label
from vidlab.errors import ConfigError, DatasetError
from vidlab.models.lora import parameter_counts
from vidlab.train.bookkeeping import RunDir
from vidlab.train.checkpoint import seed_everything
from vidlab.train.config import TrainConfig
from vidlab.train.dataset import SHARD_SAMPLES_DIR, PreparedData, prepare_data
from vidlab.train.distributed import (
    all_gather_objects,
    barrier,
    broadcast_object,
    init_distributed,
)
from vidlab.train.hardware import pick_device, prepare_cpu
from vidlab.train.runlog import RunLogger

log = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
MANIFEST_FILE = "manifest.jsonl"
DATA_STATS_FILE = "data_stats.json"
BUNDLE_DIR = "best.vidlab"
EXCLUDED_FILE = "excluded.jsonl"
_RUN_OUTPUTS = (CONFIG_FILE, MANIFEST_FILE, EXCLUDED_FILE, DATA_STATS_FILE, BUNDLE_DIR,
                SHARD_SAMPLES_DIR,
                "metrics.jsonl", "tensorboard", "checkpoints", "curves.png",
                "confusion_matrix.png", "plan.json")


@dataclass
class FitResult:
    run_dir: Path
    bundle: Path | None
    metrics: dict[str, Any] = field(default_factory=dict)
    model: nn.Module | None = None
    """The trained module (best weights), for callers that keep going in Python."""
    config: TrainConfig | None = None
    """The resolved config the run trained with."""


def fit(config: TrainConfig, *, resume: bool = False, overwrite: bool = False,
        model: nn.Module | None = None, data: PreparedData | None = None,
        say: Callable[[str], None] | None = None,
        on_epoch: Callable[[int, dict], None] | None = None,
        write_bundles: bool = True, teacher: nn.Module | None = None) -> FitResult:
    """Train per `config` into `config.out`; returns the run dir, best bundle and metrics.

    `model` starts from a given module (fine-tuning, e.g. a pruned model) instead of
    `config.model`; `data` skips dataset preparation; `write_bundles=False` keeps the best
    weights in memory only (a custom module `create` cannot rebuild); `teacher` is distilled
    from when `regularization.distill_alpha` > 0. Raises `OutputExistsError` (a
    `bookkeeping.RunExistsError`) for a run dir holding another run unless `resume` or
    `overwrite` (which removes only a run's own outputs).
    """
    say = say or log.info
    if not config.out:
        raise ConfigError("no run directory: set `out` (vidlab train --out RUN_DIR)")
    run_dir = Path(config.out)
    device_pref = config.train.device
    info = init_distributed("cuda" if device_pref.startswith("cuda") or
                            (device_pref == "auto" and torch.cuda.is_available()) else "cpu")
    started_pg = info.enabled
    try:
        device = pick_device(device_pref, info.local_rank)
        if device.type == "cpu":
            prepare_cpu()
        if info.is_main:
            found = run_dir_of(run_dir).claim(resume, overwrite, resume_needs_checkpoint=False)
            if resume and not found:  # allowed, so a scheduler can always pass --resume
                say(f"--resume: no checkpoint in {run_dir} yet, starting a new run")
        barrier(info)
        if config.train.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        seed_everything(config.train.seed)

        if data is None:
            data = _load_data(config, run_dir, resume, info, say)
        plan = None
        if model is None:
            config, plan = _plan(config, data, run_dir, resume, info, say)
        config = resolve_config(config, data.train, model_defaults=model is None,
                                dataset_info=data.shards.dataset_info if data.shards else None)
        if info.is_main:
            save_config(config, run_dir / CONFIG_FILE)
            _write_manifest(data, run_dir)
        if model is None:
            model = build_model(config, len(data.labels))
        counts = parameter_counts(model)
        trainable = ("" if counts["params_trainable"] == counts["params_total"] else
                     f" ({counts['params_trainable'] / 1e6:.3f} M trainable, "
                     f"{100 * counts['trainable_fraction']:.2f} %)")
        stats = _data_stats(data, config, run_dir) if info.is_main and write_bundles else {}

        from vidlab.train.trainer import Trainer

        bundle_path = run_dir / BUNDLE_DIR
        logger = RunLogger(run_dir, enabled=info.is_main, tensorboard=config.train.tensorboard)

        best_state: dict[str, Any] = {}

        def on_best(module: nn.Module, record: dict, epoch: int) -> None:
            if not write_bundles:
                best_state.update({k: v.detach().clone() for k, v in module.state_dict().items()})
                return
            val = {k: v for k, v in record.items() if k != "confusion_matrix"}
            val["views"] = views_label(config.data.val_views)
            write_bundle(bundle_path, module, config, data.labels,
                         {"val": val, "best_epoch": epoch}, stats, plan)

        trainer = Trainer(config, model, data.train, data.val, data.labels, run_dir, info,
                          device, None, logger, on_best=on_best, on_epoch=on_epoch,
                          teacher=teacher, train_shards=data.shards.refs if data.shards else None)
        say(f"model {config.model.name}: {counts['params_total'] / 1e6:.2f} M params{trainable}; "
            f"device {device}, {info.world_size} process(es); precision "
            f"{trainer.precision.name}: {trainer.precision.reason}")
        if resume and trainer.rundir.checkpoint.is_file():
            trainer.resume()
        last = trainer.run()
        final = trainer.gathered()  # FSDP: the full weights, on rank 0 only
        if trainer.fsdp:
            digests = [param_digest(final)] if final is not None else []
        else:
            digests = all_gather_objects(param_digest(trainer.model), info)
        if len(set(digests)) > 1:
            log.error("DDP ranks ended with different parameters: %s", digests)
        barrier(info)
        if best_state:
            final.load_state_dict(best_state)
        if write_bundles and info.is_main and not bundle_path.exists():  # no val split: last weights
            write_bundle(bundle_path, final, config, data.labels, {"val": {}}, stats, plan)
        barrier(info)
        metrics = _test_and_report(config, data, trainer, bundle_path, run_dir, info, logger, last)
        metrics["param_digests"] = digests  # one per rank: equal when DDP kept them in sync
        metrics.update(counts)
        metrics["precision"] = {"name": trainer.precision.name, "reason": trainer.precision.reason}
        logger.close()
        return FitResult(run_dir, bundle_path if bundle_path.exists() else None, metrics, final,
                         config)
    finally:
        if started_pg and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def run_dir_of(path: str | Path) -> RunDir:
    """A training run's directory (its outputs: config, manifest, logs, checkpoints, bundle)."""
    return RunDir(Path(path), "training", _RUN_OUTPUTS)


def param_digest(model: nn.Module) -> str:
    """SHA-256 of every parameter's bytes (compares replicas across DDP ranks)."""
    import hashlib

    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def resolve_config(config: TrainConfig, entries: list[dict[str, Any]] | None = None,
                   model_defaults: bool = True,
                   dataset_info: dict[str, Any] | None = None) -> TrainConfig:
    """The run's data settings, decided once (then saved in the run and the bundle, and never
    re-derived): clip frames and size from the model's default input (unless set; skipped
    with `model_defaults=False`, a given module), and flip safety from the `dataset.json` of
    the dataset holding `entries` (unless set), or the given `dataset_info` (shards carry it
    in their index)."""
    d = config.data
    if model_defaults:
        from vidlab.models import model_entry

        entry = model_entry(config.model.name)
        update: dict[str, Any] = {}
        if "num_frames" not in d.model_fields_set:
            update["num_frames"] = entry.num_frames
        if "crop_size" not in d.model_fields_set:
            update["crop_size"] = entry.size
            if "short_side" not in d.model_fields_set:
                update["short_side"] = max(entry.size, round(entry.size * 8 / 7))
        for key, value in (entry.preprocess or {}).items():  # a checkpoint's own input (hf:)
            if key not in d.model_fields_set and key in ("short_side", "mean", "std"):
                update[key] = tuple(value) if isinstance(value, list | tuple) else value
        d = d.model_copy(update=update)
    if dataset_info:
        d = d.with_dataset_info(dataset_info)
    if entries:
        d = d.for_entries(entries)
    return config.model_copy(update={"data": d})


def build_model(config: TrainConfig, num_classes: int) -> nn.Module:
    """`vidlab.models.create` with the config's name, weights, frames and regularization, then
    the fine-tuning surgery it asks for: frozen first blocks, LoRA adapters."""
    from vidlab.models import create

    model = create(config.model.name, num_classes=num_classes, weights=config.model.weights,
                   **model_kwargs(config))
    m = config.model
    if m.freeze_blocks:
        from vidlab.models.blocks import freeze_first_blocks

        freeze_first_blocks(model, m.freeze_blocks)
    if m.lora is not None:
        from vidlab.models.lora import apply_lora

        apply_lora(model, m.lora.r, m.lora.alpha, m.lora.dropout, m.lora.target_modules)
    return model


def model_kwargs(config: TrainConfig) -> dict[str, Any]:
    """Everything `create` needs besides name/classes (stored in the bundle)."""
    kw = dict(config.model.kwargs)
    kw["num_frames"] = config.data.num_frames
    if config.model.frame_diff:
        kw["frame_diff"] = True
    reg = config.regularization
    if reg.drop_rate is not None:
        kw["drop_rate"] = reg.drop_rate
    if reg.drop_path_rate is not None:
        kw["drop_path_rate"] = reg.drop_path_rate
    return kw


def write_bundle(path: Path, module: nn.Module, config: TrainConfig, labels: list[str],
                 metrics: dict[str, Any], data_stats: dict[str, Any], plan: Any = None) -> None:
    """Save `module` as a bundle: LoRA adapters merged, with what rebuilds it without its
    source files (an `hf:` model's HF config and input); with the run's `plan` its settings
    and fingerprint go into config.json."""
    from vidlab.bundle import save_bundle
    from vidlab.models.lora import merged

    module = merged(module)
    rebuild = getattr(module, "rebuild_kwargs", None)
    kwargs = {**model_kwargs(config), **(rebuild() if callable(rebuild) else {})}
    bundle_config = {
        "task": "classify",
        "model": {"name": config.model.name, "num_classes": len(labels), "kwargs": kwargs},
        "labels": list(labels),
        "preprocess": config.data.preprocess().to_dict(),
        "train": config.model_dump(mode="json"),
    }
    if plan is not None:
        bundle_config.update(plan=plan.to_dict()["settings"], fingerprint=plan.fingerprint)
    metrics = {**metrics, "params": sum(p.numel() for p in module.parameters())}
    save_bundle(path, config=bundle_config, state_dict=module.state_dict(), metrics=metrics,
                data_stats=data_stats, overwrite=True)


def _load_data(config: TrainConfig, run_dir: Path, resume: bool, info, say) -> PreparedData:
    from vidlab.data.shardset import is_shard_source

    saved = run_dir / MANIFEST_FILE
    shards = bool(config.dataset.path) and is_shard_source(config.dataset.path)
    if resume and saved.is_file() and not shards:  # the very same split as the interrupted run
        source: str | Path = saved
    elif config.dataset.path:
        source = config.dataset.path
    else:
        raise DatasetError("no dataset: pass --data ROOT_OR_MANIFEST (or set dataset.path)")
    data = None
    if info.is_main:
        ds = config.dataset
        data = prepare_data(source, ds.val, ds.test, ds.split_seed, ds.clean, say=say,
                            work_dir=run_dir / SHARD_SAMPLES_DIR)
    return broadcast_object(data, info)


def _plan(config: TrainConfig, data: PreparedData, run_dir: Path, resume: bool, info,
          say) -> tuple[TrainConfig, Any]:
    """The recipe's plan for this dataset (rank 0 makes it, every rank gets it)."""
    from vidlab.train.plan import plan_run

    planned = None
    if info.is_main:
        planned = plan_run(config, data.train, data.labels, run_dir, say, resume=resume,
                           shards=data.shards)
    return broadcast_object(planned, info)


def _write_manifest(data: PreparedData, run_dir: Path) -> None:
    from vidlab.data.manifest import write_manifest

    write_manifest(data.all_entries(), run_dir / MANIFEST_FILE, overwrite=True)
    if data.excluded:  # the dataset's unusable files, each with its reason
        write_manifest(data.excluded, run_dir / EXCLUDED_FILE, overwrite=True)


def _data_stats(data: PreparedData, config: TrainConfig, run_dir: Path) -> dict[str, Any]:
    """Training-data statistics (computed once per run; drift monitoring's baseline)."""
    path = run_dir / DATA_STATS_FILE
    if path.is_file():
        return json.loads(path.read_text())
    try:
        from vidlab.data.stats import compute_data_stats
    except ImportError:  # older vidlab.data without statistics
        log.warning("vidlab.data.stats is not available: the bundle gets no data statistics")
        return {}
    stats = compute_data_stats(data.train, data.labels, config.data.preprocess())
    if data.shards and data.shards.label_counts:  # the preview's clips, the whole split's counts
        stats["num_clips"] = data.shards.samples
        stats["class_counts"] = {n: data.shards.label_counts.get(n, 0) for n in data.labels}
    path.write_text(json.dumps(stats, indent=2, default=str))
    return stats


def _test_and_report(config: TrainConfig, data: PreparedData, trainer, bundle_path: Path,
                     run_dir: Path, info, logger: RunLogger, last: dict) -> dict[str, Any]:
    """Test the best weights with the test views; write metrics, plots and the bundle's metrics."""
    from vidlab.bundle import load_bundle
    from vidlab.models.lora import merged
    from vidlab.train.evaluation import evaluate_module
    from vidlab.train.plots import plot_confusion, plot_curves

    model = trainer.ema.module if trainer.ema else trainer.model
    if trainer.fsdp and bundle_path.exists():  # the best weights, sharded again
        from vidlab.train.sharding import shard

        model = shard(load_bundle(bundle_path).build_model(), trainer.device)
    elif bundle_path.exists():
        model = merged(model)  # the bundle holds LoRA adapters merged: test what it holds
        model.load_state_dict(load_bundle(bundle_path).state_dict())
    metrics: dict[str, Any] = {"val_best": trainer.best,
                               "val_views": views_label(config.data.val_views),
                               "best_epoch": trainer.best_epoch,
                               "epochs": trainer.epoch, "steps": trainer.step,
                               "train_minutes": trainer.elapsed / 60}
    split = data.test or data.val
    if split:
        name = "test" if data.test else "val"
        m = evaluate_module(model, split, data.labels, config.data,
                            views=tuple(config.data.test_views), info=info, device=trainer.device,
                            batch_size=config.train.batch_size, memory_format=trainer.memory_format)
        metrics[name] = {k: m[k] for k in ("top1", "top5", "mean_class_acc", "num_clips", "loss")}
        metrics[name]["views"] = views_label(config.data.test_views)
        metrics[name]["per_class"] = m["per_class"]
        if info.is_main:
            logger.log({"phase": name, "step": trainer.step, **{k: metrics[name][k] for k in
                        ("top1", "top5", "mean_class_acc", "num_clips")}}, step=trainer.step)
            if config.train.plots:
                plot_confusion(m["confusion_matrix"], data.labels, run_dir / "confusion_matrix.png",
                               title=f"{name} top-1 {m['top1']:.3f}")
    if info.is_main:
        if config.train.plots:
            plot_curves(logger.records(), run_dir / "curves.png")
        if bundle_path.exists():
            load_bundle(bundle_path).update_metrics({k: v for k, v in metrics.items()
                                                     if k in ("test", "val")} | {"train": metrics})
    return metrics


def load_run_config(run_dir: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """The resolved config a run saved (what `--resume` continues with)."""
    return load_config(TrainConfig, Path(run_dir) / CONFIG_FILE, overrides)


@dataclass
class PlanReport:
    """What `vidlab plan` prints: the plan, the data it was made from, the resolved config."""

    plan: Any  # vidlab.train.plan.Plan
    notes: list[str]
    config: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {**self.plan.to_dict(), "data_notes": self.notes, "config": self.config}


def plan_dataset(config: TrainConfig) -> PlanReport:
    """The plan `vidlab train` would make for `config.dataset.path`, without training (the
    dataset is scanned, cleaned and split as `vidlab train` would)."""
    from vidlab.train.plan import apply_plan, plan_for

    if not config.dataset.path:
        raise DatasetError("no dataset: pass --data ROOT_OR_MANIFEST")
    ds = config.dataset
    data = prepare_data(ds.path, ds.val, ds.test, ds.split_seed, ds.clean, say=lambda _m: None)
    plan = plan_for(config, data.train, data.labels, shards=data.shards)
    resolved = resolve_config(apply_plan(config, plan), data.train,
                              dataset_info=data.shards.dataset_info if data.shards else None)
    return PlanReport(plan, data.notes, resolved.model_dump(mode="json"))
