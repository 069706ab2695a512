"""The typed training config: every knob of `vidlab train`, with defaults that train well.

Loaded with `vidlab.config.load_config(TrainConfig, path, overrides)`; the resolved config is
saved in the run directory and in the bundle, so a run can be repeated from its own output.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vidlab.data.config import DataConfig


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class LoraSection(_Section):
    """LoRA adapters (`peft`): only they and the new head train; bundles get them merged."""

    r: int = Field(8, ge=1)
    alpha: float = Field(16.0, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | None = None
    """Names of the linear layers to adapt (None: the attention projections the model has)."""


class ModelSection(_Section):
    """What `vidlab.models.create` builds: `name` (a zoo name or `hf:PATH`), optional local
    `weights`, builder `kwargs`; then LoRA (`lora.r=8`) and block freezing for fine-tuning."""

    name: str = "r2plus1d_tiny"
    weights: str | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)
    frame_diff: bool = False
    """Feed each frame's difference from the one before beside the frames (the VideoResNet
    family: `r3d_*`, `mc3_*`, `r2plus1d_*`); the plan turns it on when what moves is small and
    the model starts from scratch (docs/train.md)."""
    lora: LoraSection | None = None
    freeze_blocks: int = Field(0, ge=0)
    """Freeze the embeddings and the first N blocks (VideoMAE's fine-tuning recipe)."""


class OptimConfig(_Section):
    name: Literal["adamw", "sgd"] = "adamw"
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.05, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    betas: tuple[float, float] = (0.9, 0.999)
    l1: float = Field(0.0, ge=0)
    """L1 penalty on weights (not norms/biases), added to the loss."""
    grad_clip: float | None = Field(1.0, ge=0)
    """Clip the global gradient norm to this value (None or 0: no clipping)."""
    layer_decay: float | None = Field(None, gt=0, le=1)
    """Layer-wise LR decay (BEiT/VideoMAE fine-tuning, e.g. 0.75): block i of N trains at
    lr·decay^(N−i), the embeddings at lr·decay^(N+1), the head at lr."""


class ScheduleConfig(_Section):
    name: Literal["cosine", "step", "plateau", "constant"] = "cosine"
    warmup_epochs: float = Field(1.0, ge=0)
    warmup_start_factor: float = Field(0.01, ge=0, le=1)
    min_lr_factor: float = Field(0.01, ge=0, le=1)
    step_size: float = 10.0
    """Epochs between decays for `step`."""
    gamma: float = 0.1
    patience: int = 2
    """Epochs without improvement before `plateau` decays the learning rate."""


class RegularizationConfig(_Section):
    label_smoothing: float = 0.1
    drop_rate: float | None = None
    """Dropout before the classifier (None: the model's default)."""
    drop_path_rate: float | None = None
    freeze_bn: bool = False
    """Keep BatchNorm in eval mode (fine-tuning with small batches; BN-free DDP checks)."""
    distill_alpha: float = Field(0.0, ge=0.0, le=1.0)
    """Weight of knowledge distillation from a teacher model (`fit(teacher=...)`, e.g. the
    unpruned model while a pruned one is fine-tuned): loss = (1-α)·CE + α·T²·KL."""
    distill_temperature: float = Field(4.0, gt=0.0)


class EmaConfig(_Section):
    enabled: bool = True
    decay: float = 0.998
    warmup_steps: int = 100
    """The decay ramps up over these steps so early averages are not stuck at the init."""


class LoopConfig(_Section):
    epochs: int = Field(60, ge=1)
    max_minutes: float | None = Field(9.0, ge=0)
    """Time budget (None or 0: none): the schedule is fitted to it (epochs are cut to what fits,
    measured after the first epoch), so `vidlab train` ends in about this many minutes."""
    batch_size: int = Field(16, ge=1)
    accumulation: int = Field(1, ge=1)
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"
    """auto: bf16 (or fp16) autocast on CUDA, fp32 on CPU unless it has native bf16 units."""
    device: str = "auto"
    seed: int = 0
    deterministic: bool = False
    log_every: int = 10
    eval_every: int = 1
    checkpoint_every: int = 50
    """Steps between mid-epoch checkpoints (a checkpoint is also written after every epoch)."""
    early_stopping: int | None = 15
    """Stop after this many evaluations without improving the monitored metric."""
    monitor: Literal["val_top1", "val_loss", "val_mean_class_acc"] = "val_top1"
    memory_format: Literal["auto", "channels_last_3d", "contiguous"] = "auto"
    sync_bn: bool = True
    """Under DDP on CUDA, convert BatchNorm to SyncBatchNorm (gloo/CPU: not supported)."""
    strategy: Literal["ddp", "fsdp"] = "ddp"
    """Under torchrun: replicate the model (DDP) or shard it with FSDP2 (`fully_shard` per
    block; checkpoints become torch.distributed.checkpoint directories)."""
    activation_checkpointing: bool = False
    """Recompute each block's activations in the backward pass (less memory, ~30 % more time)."""
    compile: bool = False
    """`torch.compile` the training forward (pays off on long GPU runs; slow to start on CPU)."""
    plots: bool = True
    tensorboard: bool = True


class SearchConfig(_Section):
    """The `vidlab tune` search space: dotted key → distribution.

    Each value is `{"low": a, "high": b, "log": bool}` (float), `{"low": a, "high": b, "int": true}`
    or `{"choices": [...]}`; keys are config paths such as `optim.lr` or `model.kwargs.width`.
    """

    space: dict[str, dict[str, Any]] = Field(default_factory=lambda: {
        "optim.lr": {"low": 3e-4, "high": 5e-3, "log": True},
        "optim.weight_decay": {"low": 1e-3, "high": 0.1, "log": True},
        "regularization.drop_rate": {"low": 0.0, "high": 0.5},
    })
    epochs: int | None = None
    """Epochs per trial (None: `train.epochs`)."""
    max_minutes: float | None = None
    """Time budget per trial (None: no budget)."""
    metric: Literal["val_top1", "val_mean_class_acc"] = "val_top1"
    seed: int = 0


class DatasetSection(_Section):
    """Where the clips come from (`--data`): a folder-per-class tree or a manifest."""

    path: str | None = None
    val: float = Field(0.15, ge=0, lt=1)
    test: float = Field(0.15, ge=0, lt=1)
    split_seed: int = 0
    clean: bool = True
    """Folders only: drop duplicates/unreadable/too-short clips before splitting."""


class PlanSection(_Section):
    """The recipe (`vidlab.train.plan`): settings chosen from the dataset's fingerprint."""

    auto: bool = True
    """Plan what the user left unset from the fingerprint (false: the fixed defaults)."""
    fingerprint_clips: int = Field(32, ge=1)
    """Clips decoded (a few frames each) to measure motion for the fingerprint."""


class TrainConfig(_Section):
    """The whole training config (`vidlab train CONFIG.yaml --set key.path=value`)."""

    out: str | None = None
    """The run directory."""
    dataset: DatasetSection = Field(default_factory=DatasetSection)
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataConfig = Field(default_factory=DataConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    regularization: RegularizationConfig = Field(default_factory=RegularizationConfig)
    ema: EmaConfig = Field(default_factory=EmaConfig)
    train: LoopConfig = Field(default_factory=LoopConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    plan: PlanSection = Field(default_factory=PlanSection)

    @model_validator(mode="before")
    @classmethod
    def _data_path_alias(cls, values: Any) -> Any:
        """Accept `data.path` as a synonym of `dataset.path` (where users look for it first)."""
        if isinstance(values, dict) and isinstance(values.get("data"), dict) \
                and "path" in values["data"]:
            values = dict(values)
            data = dict(values["data"])
            path = data.pop("path")
            dataset = dict(values.get("dataset") or {})
            dataset.setdefault("path", path)
            values.update(data=data, dataset=dataset)
        return values
