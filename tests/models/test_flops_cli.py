"""FLOP counting, model cards and `vidlab models --json`."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from vidlab.cli import main
from vidlab.models import create, model_entry
from vidlab.models.flops import count_gflops, model_card


def test_count_gflops_matches_a_hand_count():
    conv = nn.Conv3d(3, 8, kernel_size=3, padding=1, bias=False)
    # 2 FLOPs per multiply-add: 2 · C_out · C_in · k³ · T·H·W
    assert count_gflops(conv, 4, 16) == pytest.approx(2 * 8 * 3 * 27 * 4 * 16 * 16 / 1e9)


def test_meta_card_agrees_with_a_real_model():
    card = model_card("r2plus1d_tiny")
    model = create("r2plus1d_tiny", num_classes=400)
    assert card["params"] == sum(p.numel() for p in model.parameters())
    assert card["gflops"] == pytest.approx(count_gflops(model, 16, 64), rel=1e-3)
    entry = model_entry("r2plus1d_tiny")
    assert (card["num_frames"], card["size"], card["family"]) == (entry.num_frames, entry.size,
                                                                  "video_resnet")


def test_cli_lists_models_as_json(capsys):
    main(["models", "--json", "r*"])
    cards = json.loads(capsys.readouterr().out)
    names = [c["name"] for c in cards]
    assert "r3d_18" in names and "r2plus1d_tiny" in names and "tsn_tiny" not in names
    for card in cards:
        assert {"name", "family", "params", "gflops", "num_frames", "size"} <= set(card)
        assert card["params"] > 0 and card["gflops"] > 0


def test_tuning_picks_a_format_and_leaves_the_model_untouched():
    from vidlab.models.tuning import pick_memory_format

    model = create("r3d_tiny", num_classes=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fmt = pick_memory_format(model, torch.randn(2, 3, 8, 32, 32), train=True, iters=1)
    assert fmt in (torch.contiguous_format, torch.channels_last_3d)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(p.grad is None for p in model.parameters())


def test_cli_prints_a_table_for_people(capsys):
    main(["models", "tsn*"])
    out = capsys.readouterr().out
    assert "tsn_r18" in out and "tsn_tiny" in out and "GFLOPs" in out and "r3d_18" not in out
