"""The GAN run's typed config (YAML-loadable, `--set`-overridable like every vidlab config)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class GanConfig(BaseModel):
    """Everything a `vidlab gan train` run depends on; saved as `RUN/config.yaml`."""

    model_config = ConfigDict(extra="forbid")

    data: str = ""
    out: str = ""
    labels: list[str] | None = None
    # clips
    num_frames: int = Field(16, ge=2)
    size: int = Field(32, ge=8)
    stride: int = Field(2, ge=1)
    target_fps: float | None = 12.0
    clips_per_video: int = Field(4, ge=1)
    max_memory_gb: float = 4.0
    # networks
    generator: Literal["mocogan", "layered"] = "mocogan"
    """mocogan: every frame decoded from content + motion latents (free-form video);
    layered: background + sprite moved by per-frame similarity warps (object motion)."""
    content_dim: int = 64
    motion_dim: int = 16
    hidden_dim: int = 64
    embed_dim: int = 32
    g_width: int = 32
    d_width: int = 16
    image_frames: int = Field(4, ge=1)
    # optimisation
    steps: int = Field(2000, ge=1)
    batch_size: int = Field(16, ge=2)
    lr_g: float = 2e-4
    lr_d: float = 4e-4
    beta1: float = 0.0
    beta2: float = 0.99
    aux_weight: float = Field(1.0, ge=0.0)
    r1_gamma: float = Field(0.0, ge=0.0)
    r1_every: int = Field(4, ge=1)
    diffaug: str = "color,translation"
    ema_decay: float = 0.999
    ema_warmup: int = 200
    seed: int = 0
    max_minutes: float | None = None
    threads: int | None = None
    """torch CPU threads for the run (None: torch's default). On a shared, oversubscribed CPU
    one thread can be several times faster than two (no spinning at thread barriers)."""
    # bookkeeping
    log_every: int = Field(10, ge=1)
    checkpoint_every: int = Field(50, ge=1)
    sample_every: int = Field(250, ge=1)
    samples_per_class: int = Field(4, ge=1)
    classifier: str | None = None
    eval_every: int = Field(250, ge=1)
    eval_samples: int = Field(128, ge=8)

    @field_validator("size")
    @classmethod
    def _power_of_two(cls, v: int) -> int:
        if v & (v - 1):
            raise ValueError(f"size must be a power of two (16, 32, 64…), got {v}")
        return v

    @field_validator("diffaug")
    @classmethod
    def _policy(cls, v: str) -> str:
        unknown = {p.strip() for p in v.split(",") if p.strip()} - {"color", "translation"}
        if unknown:
            raise ValueError(f"unknown DiffAugment policy {sorted(unknown)} (color, translation)")
        return v
