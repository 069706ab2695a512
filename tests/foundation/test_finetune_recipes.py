"""Fine-tuning recipes of foundation models: layer-wise LR decay, frozen first blocks, LoRA
(on an hf: model and on a zoo transformer), merged adapters computing the same function."""

from __future__ import annotations

import pytest
import torch

from vidlab.errors import ConfigError
from vidlab.models import create
from vidlab.models.blocks import freeze_first_blocks, layer_ids
from vidlab.models.lora import apply_lora, has_lora, merged, parameter_counts
from vidlab.train.config import TrainConfig
from vidlab.train.optim import Schedule, build_optimizer


def test_layer_ids_put_embeddings_first_blocks_in_order_and_the_head_last(videomae_dir):
    model = create(f"hf:{videomae_dir}", num_classes=8)
    ids, depth = layer_ids(model)
    assert depth == 2
    assert ids["backbone.videomae.embeddings.patch_embeddings.projection.weight"] == 0
    assert ids["backbone.videomae.encoder.layer.0.attention.attention.query.weight"] == 1
    assert ids["backbone.videomae.encoder.layer.1.output.dense.weight"] == 2
    assert ids["backbone.fc_norm.weight"] == ids["head.weight"] == 3


def test_layer_decay_scales_each_groups_rate_and_the_schedule_keeps_the_ratios(videomae_dir):
    model = create(f"hf:{videomae_dir}", num_classes=8)
    optim = TrainConfig().optim.model_copy(update={"layer_decay": 0.5, "lr": 1e-3})
    opt = build_optimizer(model, optim)
    by_param = {id(p): g for g in opt.param_groups for p in g["params"]}
    lr = {name: by_param[id(p)]["lr"] for name, p in model.named_parameters()}
    assert lr["head.weight"] == pytest.approx(1e-3)
    assert lr["backbone.videomae.encoder.layer.1.output.dense.weight"] == pytest.approx(5e-4)
    assert lr["backbone.videomae.encoder.layer.0.output.dense.weight"] == pytest.approx(2.5e-4)
    assert lr["backbone.videomae.embeddings.patch_embeddings.projection.weight"] == \
        pytest.approx(1.25e-4)
    schedule = Schedule(opt, TrainConfig().schedule, steps_per_epoch=4, total_steps=40)
    for _ in range(10):
        schedule.step()
    rates = {g["lr_scale"]: g["lr"] for g in opt.param_groups}
    assert rates[0.5] == pytest.approx(0.5 * rates[1.0])


def test_frozen_first_blocks_do_not_change_when_the_rest_trains(videomae_dir):
    model = create(f"hf:{videomae_dir}", num_classes=8)
    freeze_first_blocks(model, 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = build_optimizer(model, TrainConfig().optim.model_copy(update={"lr": 1e-2}))
    for _ in range(2):
        model(torch.randn(2, 3, 4, 32, 32)).logsumexp(1).mean().backward()
        opt.step()
        opt.zero_grad()
    after = model.state_dict()
    for key in ("backbone.videomae.embeddings.patch_embeddings.projection.weight",
                "backbone.videomae.encoder.layer.0.output.dense.weight"):
        assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["backbone.videomae.encoder.layer.1.output.dense.weight"],
                           after["backbone.videomae.encoder.layer.1.output.dense.weight"])
    with pytest.raises(ConfigError, match="has 2 blocks"):
        freeze_first_blocks(model, 3)


def test_lora_on_a_zoo_transformer_merges_into_the_same_function():
    torch.manual_seed(0)
    model = create("timesformer_tiny", num_classes=4, num_frames=4)
    apply_lora(model, r=4, alpha=8)
    assert has_lora(model) and parameter_counts(model)["trainable_fraction"] < 0.2
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    clip = torch.randn(2, 3, 4, 64, 64)
    for _ in range(2):  # move the adapters away from their zero init
        model(clip).logsumexp(1).mean().backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    plain = merged(model)
    assert not has_lora(plain) and has_lora(model)  # a merged copy; the original keeps training
    assert set(plain.state_dict()) == set(create("timesformer_tiny", 4, 4).state_dict())
    with torch.no_grad():
        torch.testing.assert_close(plain(clip), model(clip), atol=1e-5, rtol=1e-4)


def test_lora_target_names_that_match_nothing_are_a_config_error(videomae_dir):
    model = create(f"hf:{videomae_dir}", num_classes=8)
    with pytest.raises(ConfigError, match="target_modules"):
        apply_lora(model, r=4, alpha=8, target_modules=["no_such_layer"])


def test_the_example_lora_config_builds_a_frozen_model_with_adapters(videomae_dir):
    from pathlib import Path

    from vidlab.config import load_config
    from vidlab.train.run import build_model, resolve_config

    example = Path(__file__).resolve().parents[2] / "configs" / "videomae_lora.yaml"
    cfg = resolve_config(load_config(TrainConfig, example, [f"model.name=hf:{videomae_dir}"]))
    assert (cfg.data.num_frames, cfg.data.crop_size, cfg.data.stride) == (4, 32, 4)
    model = build_model(cfg, num_classes=8)
    assert has_lora(model) and parameter_counts(model)["trainable_fraction"] < 0.2
