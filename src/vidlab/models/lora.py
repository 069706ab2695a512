"""LoRA adapters (the `peft` library) on any vidlab model, and merging them back for deployment.

`apply_lora` injects low-rank adapters into the named linear layers in place (peft's
`inject_adapter_in_model`), so the model keeps vidlab's interface and the trainer, EMA and DDP
see an ordinary module; everything but the adapters and the classifier head is frozen.
`merged` returns a copy with every adapter folded into its base weight, whose state dict has the
plain model's keys: a bundle of it loads and runs without `peft`.
"""

from __future__ import annotations

import copy
import logging

from torch import nn

from vidlab.errors import ConfigError, ModelError

log = logging.getLogger(__name__)

DEFAULT_TARGETS = ("query", "value", "qkv", "q_proj", "v_proj")
"""Attention projections LoRA adapts by default (HF ViT-style names and vidlab's `qkv`)."""


def _peft():
    try:
        import peft
    except ImportError as exc:
        raise ConfigError(f"model.lora needs the `peft` library ({exc}); install the Hugging "
                          "Face extra: pip install 'vidlab[hf]'") from None
    return peft


def default_targets(model: nn.Module) -> list[str]:
    """The `DEFAULT_TARGETS` names that are linear layers of `model`."""
    names = {name.rsplit(".", 1)[-1] for name, m in model.named_modules()
             if isinstance(m, nn.Linear)}
    return [t for t in DEFAULT_TARGETS if t in names]


def apply_lora(model: nn.Module, r: int, alpha: float, dropout: float = 0.0,
               target_modules: list[str] | None = None) -> nn.Module:
    """Inject rank-`r` LoRA adapters (scale `alpha / r`) into `target_modules`, in place.

    Leaves only the adapters and the classifier head (`get_classifier()`) trainable. Raises
    `ConfigError` when no layer matches the targets.
    """
    peft = _peft()
    targets = list(target_modules or default_targets(model))
    if not targets:
        raise ConfigError(f"model.lora: {type(model).__name__} has none of the default target "
                          f"layers {', '.join(DEFAULT_TARGETS)}; set model.lora.target_modules")
    config = peft.LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout,
                             target_modules=targets, bias="none")
    try:
        peft.inject_adapter_in_model(config, model)
    except ValueError as exc:  # peft: "Target modules ... not found in the base model"
        raise ConfigError(f"model.lora.target_modules {targets}: {str(exc).splitlines()[0]}") \
            from None
    for name, p in model.named_parameters():
        p.requires_grad_("lora_" in name)
    head = getattr(model, "get_classifier", None)
    if head is None:
        raise ModelError(f"{type(model).__name__} has no classifier head to train beside LoRA")
    for p in head().parameters():
        p.requires_grad_(True)
    return model


def has_lora(model: nn.Module) -> bool:
    return any("lora_" in name for name, _ in model.named_parameters())


def merged(model: nn.Module) -> nn.Module:
    """`model` itself when it has no adapters, else a copy with them merged and removed."""
    if not has_lora(model):
        return model
    from peft.tuners.tuners_utils import BaseTunerLayer

    out = copy.deepcopy(model)
    for name, module in list(out.named_modules()):
        if isinstance(module, BaseTunerLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            parent = out.get_submodule(parent_name) if parent_name else out
            setattr(parent, child, module.get_base_layer())
    return out


def parameter_counts(model: nn.Module) -> dict[str, float]:
    """`{"params_total", "params_trainable", "trainable_fraction"}` (adapters counted)."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"params_total": total, "params_trainable": trainable,
            "trainable_fraction": trainable / max(1, total)}
