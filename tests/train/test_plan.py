"""The recipe's plan: rules on fingerprints, the user's settings kept, `vidlab plan` and
`vidlab train` showing and applying it."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from vidlab.config import load_config
from vidlab.train.config import TrainConfig
from vidlab.train.plan import apply_plan, explicit_keys, make_plan
from vidlab.train.rules import MAX_INPUT_COST, MAX_VIEWS


def q(p50: float, p90: float | None = None, p10: float | None = None) -> dict[str, float]:
    return {"min": p10 or p50, "p10": p10 or p50, "p50": p50, "p90": p90 or p50,
            "max": p90 or p50}


def fingerprint(duration=(3.0, 4.0), filled=1.0, action=3.0, area=0.2, short=120,
                labels: list[str] | None = None, n=400, imbalance=1.0,
                decorrelation=0.15) -> dict[str, Any]:
    from vidlab.data.label_words import label_report

    labels = labels or ["a", "b", "c"]
    return {"clips": {"num_clips": n, "num_classes": len(labels), "imbalance": imbalance,
                      "class_counts": {k: n // len(labels) for k in labels}},
            "duration": q(*duration), "fps": q(25), "short_side": q(short, p10=short),
            "motion": {"clips_measured": 32, "moving_area": q(area),
                       "active_fraction": q(filled), "action_seconds": q(action),
                       "decorrelation_s": q(decorrelation)},
            "labels": label_report(labels)}


def planned(fp: dict[str, Any], *overrides: str, info: dict | None = None) -> dict[str, Any]:
    plan = make_plan(fp, load_config(TrainConfig, None, list(overrides)), info)
    return {s.key: (s.value, s.by) for s in plan.settings}


def test_short_clips_that_motion_fills_are_sampled_whole():
    p = planned(fingerprint(duration=(3.5, 4.8), filled=0.8))
    assert p["data.sampling"] == ("segments", "plan")
    assert p["data.num_frames"] == (16, "plan")


def test_fast_motion_keeps_contiguous_clips_at_the_default_stride():
    # whole-clip frames 3.5/16 = 0.22 s apart: more than 4 x 0.04 s, fast motion would alias
    p = planned(fingerprint(duration=(3.5, 4.0), decorrelation=0.04))
    assert p["data.sampling"][0] != "segments"
    assert p["data.stride"][0] == 2 and p["data.target_fps"][0] is None
    assert p["data.test_views"][0] == [3, 1]


def test_motion_filling_the_clip_keeps_contiguous_clips_unless_it_is_slow():
    # 3 s / 16 = 0.19 s between whole-clip frames: 2.4 x 0.08 s, and motion never stops
    plan = make_plan(fingerprint(duration=(3.0, 3.8), filled=1.0, decorrelation=0.08),
                     load_config(TrainConfig, None, []))
    p = {s.key: s for s in plan.settings}
    assert p["data.sampling"].value != "segments" and p["data.stride"].value == 2
    assert "any window shows it" in p["data.sampling"].reason
    # the same clips where the action starts and stops inside them: the whole clip
    assert planned(fingerprint(duration=(3.0, 3.8), filled=0.8,
                               decorrelation=0.08))["data.sampling"][0] == "segments"
    # slow motion that never stops (a pan over the whole clip): still the whole clip
    assert planned(fingerprint(duration=(3.0, 3.8), filled=1.0,
                               decorrelation=0.2))["data.sampling"][0] == "segments"


def test_long_clips_get_windows_around_the_action_and_views_that_tile_them():
    p = planned(fingerprint(duration=(40.0, 58.0), filled=0.08, action=3.0))
    assert p["data.sampling"][0] != "segments"
    assert p["data.target_fps"][0] == pytest.approx(16 / 4.5, rel=0.01)  # 1.5 actions
    clips, crops = p["data.test_views"][0]
    assert clips == MAX_VIEWS and crops == 1  # 58 s / 4.5 s > 12: capped
    assert 1 <= p["data.val_views"][0][0] <= MAX_VIEWS


def test_a_short_action_inside_short_clips_also_gets_windows():
    p = planned(fingerprint(duration=(8.0, 9.0), filled=0.2, action=1.5))
    assert p["data.sampling"][0] != "segments"
    assert p["data.target_fps"][0] == pytest.approx(16 / 2.25, rel=0.01)


def test_small_moving_things_get_a_larger_input_within_the_cost_limit():
    """Only where the model cannot take frame differences: with them the default input won
    (more epochs at 64 px beat 96 px)."""
    from vidlab.models import model_entry
    from vidlab.train.plan import _input_cost

    assert planned(fingerprint(area=0.003, short=160))["data.crop_size"][0] == 64
    p = planned(fingerprint(area=0.003, short=400), "model.name=x3d_xs")
    crop, size = p["data.crop_size"][0], model_entry("x3d_xs").size
    assert size < crop <= 2 * size
    assert p["data.short_side"][0] >= crop
    assert _input_cost("x3d_xs", 4, size)(4, crop) <= MAX_INPUT_COST


def test_large_motion_keeps_the_model_input_and_small_videos_are_not_upsampled():
    assert planned(fingerprint(area=0.3))["data.crop_size"][0] == 64
    assert planned(fingerprint(area=0.003, short=48))["data.crop_size"][0] <= 48


def test_flip_map_read_from_class_names():
    p = planned(fingerprint(labels=["pan_left", "pan_right", "zoom_in"]))
    assert p["data.flip_map"][0] == {"pan_left": "pan_right", "pan_right": "pan_left",
                                     "zoom_in": "zoom_in"}
    # name-read mirror pairs gained nothing in the recipe benchmark: off, the map kept for
    # --set data.hflip=0.5
    assert p["data.direction_sensitive"][0] is True and p["data.hflip"][0] == 0.0
    p = planned(fingerprint(labels=["pan_left", "pan_right", "zoom_in"]), "data.hflip=0.5")
    assert p["data.hflip"] == (0.5, "you") and p["data.flip_map"][0]["pan_left"] == "pan_right"


def test_no_flip_when_no_direction_has_a_mirror_class():
    p = planned(fingerprint(labels=["left_then_up", "up_then_left"]))
    assert p["data.hflip"][0] == 0.0


def test_direction_free_names_flip_freely_and_dataset_json_wins():
    p = planned(fingerprint(labels=["walk", "run"]))
    assert p["data.direction_sensitive"][0] is False and p["data.hflip"][0] == 0.5
    info = {"flip_map": {"walk": "run", "run": "walk"}, "direction_sensitive": True}
    p = planned(fingerprint(labels=["walk", "run"]), info=info)
    assert p["data.flip_map"][0] == {"walk": "run", "run": "walk"}


def test_few_clips_get_smaller_batches_and_imbalance_picks_mean_class_accuracy():
    p = planned(fingerprint(n=40, imbalance=4.0))
    assert p["train.batch_size"][0] * 4 <= 40
    assert p["optim.lr"][0] < 2e-3
    assert p["train.monitor"][0] == "val_mean_class_acc"
    # a batch size the user chose keeps the default rate (a DDP run with half the batch per
    # rank and a 1-process run must train alike)
    for batch in ("2", "4"):
        p = planned(fingerprint(n=10), f"train.batch_size={batch}")
        assert p["train.batch_size"] == (int(batch), "you") and p["optim.lr"][0] == 2e-3


def test_what_the_user_set_is_kept_and_shown_beside_the_plan():
    fp = fingerprint(duration=(40.0, 58.0), filled=0.08)
    cfg = load_config(TrainConfig, None, ["data.sampling=segments", "data.crop_size=48",
                                          "data.short_side=56"])
    assert {"data.sampling", "data.crop_size"} <= explicit_keys(cfg)
    plan = make_plan(fp, cfg)
    by = {s.key: s for s in plan.settings}
    assert by["data.sampling"].by == "you" and by["data.sampling"].value == "segments"
    assert by["data.sampling"].planned != "segments"
    resolved = apply_plan(cfg, plan)
    assert resolved.data.sampling == "segments" and resolved.data.crop_size == 48
    assert resolved.data.target_fps == by["data.target_fps"].value
    assert any("yours" in line for line in plan.lines())


def test_a_stride_the_user_chose_is_not_replaced_by_a_planned_frame_rate():
    fp = fingerprint(duration=(40.0, 58.0), filled=0.08)
    resolved = apply_plan(load_config(TrainConfig, None, ["data.stride=3"]),
                          make_plan(fp, load_config(TrainConfig, None, ["data.stride=3"])))
    assert resolved.data.target_fps is None and resolved.data.stride == 3


def test_vidlab_plan_json_on_a_real_folder(motion_data):
    out = subprocess.run([sys.executable, "-m", "vidlab", "plan", "--data", str(motion_data),
                          "--json", "--set", "dataset.clean=false"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    keys = {s["key"]: s for s in report["settings"]}
    # 2-4 s clips full of motion, but fast (rotations alias when frames are 0.2 s apart):
    # contiguous clips at the default stride, today's fixed default
    assert keys["data.sampling"]["value"] != "segments" and keys["data.stride"]["value"] == 2
    assert "fast" in keys["data.sampling"]["reason"]
    assert all(s["reason"] for s in report["settings"])
    assert report["fingerprint"]["clips"]["num_classes"] == 8
    assert report["config"]["data"]["sampling"] == keys["data.sampling"]["value"]
    assert any(o.startswith("data.sampling=") for o in report["overrides"])
    # the built-in dataset ships its flip map in dataset.json
    assert keys["data.flip_map"]["value"]["move_left"] == "move_right"


def test_vidlab_plan_without_a_dataset_is_one_line_error(tmp_path):
    out = subprocess.run([sys.executable, "-m", "vidlab", "plan", "--data",
                          str(tmp_path / "nothing")], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert out.stderr.strip().count("\n") == 0 and "DatasetError" in out.stderr


def test_upside_down_flip_and_time_reversal_stay_off_unless_the_dataset_says_so():
    p = planned(fingerprint(labels=["tilt_up", "tilt_down", "zoom_in"]))
    assert p["data.vflip"][0] == 0.0
    assert p["data.vflip_map"][0]["tilt_up"] == "tilt_down"  # ready for --set data.vflip=0.5
    assert p["data.time_reverse"][0] == 0.0
    p = planned(fingerprint(labels=["wave", "clap"]), info={"time_reversible": True})
    assert p["data.time_reverse"][0] == 0.5


def test_a_streamed_split_is_planned_with_its_own_counts_and_dataset_info(motion_manifest):
    """Shards: the fingerprint's clips are a preview; counts and flips come from the split."""
    from vidlab.data.manifest import labels_of, read_manifest
    from vidlab.train.dataset import TrainShards
    from vidlab.train.plan import plan_for

    entries = read_manifest(motion_manifest)
    train, labels = [e for e in entries if e["split"] == "train"], labels_of(entries)
    counts = {name: 500 for name in labels}
    info = {"flip_map": {name: name for name in labels}, "direction_sensitive": False}
    shards = TrainShards([], 500 * len(labels), counts, info)
    plan = plan_for(load_config(TrainConfig, None, []), train[:12], labels, shards=shards)
    assert plan.fingerprint["clips"]["num_clips"] == 500 * len(labels)
    by = {s.key: s.value for s in plan.settings}
    assert by["train.batch_size"] == 16  # not shrunk for a 12-clip preview
    assert by["data.flip_map"] == info["flip_map"] and by["data.direction_sensitive"] is False


def test_video_resnets_from_scratch_get_frame_differences_and_nothing_else_does(tmp_path):
    small, large = fingerprint(area=0.006), fingerprint(area=0.2)
    assert planned(small)["model.frame_diff"] == (True, "plan")
    assert planned(large)["model.frame_diff"] == (True, "plan")
    weights = tmp_path / "w.safetensors"
    assert planned(small, f"model.weights={weights}")["model.frame_diff"] == (False, "plan")
    assert "model.frame_diff" not in planned(small, "model.name=x3d_xs")
    assert planned(large, "model.frame_diff=false")["model.frame_diff"] == (False, "you")
    cfg = load_config(TrainConfig, None, [])
    assert apply_plan(cfg, make_plan(large, cfg)).model.frame_diff is True
