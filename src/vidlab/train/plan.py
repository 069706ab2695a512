"""The training plan: the recipe's settings for one dataset, each with its reason.

`vidlab train` fingerprints the training clips once (`vidlab.data.fingerprint`), applies the
rules of `vidlab.train.rules` to it and prints the plan before training; `vidlab plan --data X`
shows the same plan without training. A setting the user gave (a YAML file, `--set`, a CLI
shortcut) is never replaced: the plan only fills what was left to it, and says which is which.
`plan.auto=false` turns planning off (the fixed defaults of earlier versions).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from vidlab.train.config import TrainConfig
from vidlab.train.rules import Choice, Context, all_rules

log = logging.getLogger(__name__)

FRAME_DIFF_FAMILIES = ("video_resnet",)
"""Model families that take `model.frame_diff`."""
PLAN_FILE = "plan.json"
FINGERPRINT_FILE = "fingerprint.json"


@dataclass
class PlannedSetting:
    key: str
    value: Any
    reason: str
    by: str
    """"plan" (applied), or "you" (the user set it: kept, the plan's value shown beside it)."""
    planned: Any = None


@dataclass
class Plan:
    """The plan of one run: its settings and the fingerprint they came from."""

    settings: list[PlannedSetting]
    fingerprint: dict[str, Any] = field(default_factory=dict)

    def applied(self) -> dict[str, Any]:
        """Dotted key → value of the settings the plan decides."""
        return {s.key: s.value for s in self.settings if s.by == "plan"}

    def overrides(self) -> list[str]:
        """The plan as `--set` overrides (what to pass to reproduce it with planning off)."""
        return [f"{k}={json.dumps(v)}" for k, v in self.applied().items()]

    def to_dict(self) -> dict[str, Any]:
        return {"settings": [asdict(s) for s in self.settings], "overrides": self.overrides(),
                "fingerprint": self.fingerprint}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls([PlannedSetting(**s) for s in data.get("settings", [])],
                   data.get("fingerprint", {}))

    def lines(self) -> list[str]:
        """The plan as printed by `vidlab train` and `vidlab plan`."""
        clips = self.fingerprint.get("clips", {})
        out = [f"plan for {clips.get('num_clips', '?')} training clips, "
               f"{clips.get('num_classes', '?')} classes (change any line with --set KEY=VALUE):"]
        for s in self.settings:
            value = _short(s.value)
            if s.by == "you":
                out.append(f"  {s.key} = {value}  (yours; the plan would choose "
                           f"{_short(s.planned)}: {s.reason})")
            else:
                out.append(f"  {s.key} = {value}  ({s.reason})")
        return out


def _short(value: Any) -> str:
    if isinstance(value, dict):
        moved = {k: v for k, v in value.items() if k != v}
        return f"{{{len(moved)} swapped, {len(value) - len(moved)} unchanged}}"
    return json.dumps(value)


def explicit_keys(config: TrainConfig) -> set[str]:
    """Dotted keys the user set (YAML, overrides), from pydantic's record of given fields."""
    keys = set()
    for name in config.model_fields_set:
        section = getattr(config, name)
        if isinstance(section, BaseModel):
            keys.update(f"{name}.{k}" for k in section.model_fields_set)
        else:
            keys.add(name)
    return keys


def make_plan(fingerprint: dict[str, Any], config: TrainConfig,
              dataset_info: dict[str, Any] | None = None) -> Plan:
    """Apply the rules to `fingerprint`; settings the user gave in `config` are kept."""
    from vidlab.data.config import DataConfig
    from vidlab.models import model_entry

    entry = model_entry(config.model.name)
    given = explicit_keys(config)
    if "data.stride" in given:  # a stride the user chose is not replaced by a planned rate
        given.add("data.target_fps")
    frames = config.data.num_frames if "data.num_frames" in given else entry.num_frames
    ctx = Context(model=config.model.name, frames=frames, size=entry.size,
                  batch_size=config.train.batch_size, lr=config.optim.lr,
                  stride=int(DataConfig.model_fields["stride"].default),
                  window_sampling=str(DataConfig.model_fields["sampling"].default),
                  input_cost=_input_cost(config.model.name, frames, entry.size),
                  batch_given="train.batch_size" in given,
                  fixed_input=entry.preprocess is not None,
                  takes_frame_diff=entry.family in FRAME_DIFF_FAMILIES,
                  pretrained=bool(config.model.weights) or entry.preprocess is not None)
    settings = []
    for choice in all_rules(fingerprint, ctx, dataset_info or {}):
        settings.append(_setting(choice, config, given))
    return Plan(settings, fingerprint)


def _setting(choice: Choice, config: TrainConfig, given: set[str]) -> PlannedSetting:
    if choice.key in given:
        section, name = choice.key.split(".", 1)
        current = getattr(getattr(config, section), name)
        if isinstance(current, tuple):
            current = list(current)
        return PlannedSetting(choice.key, current, choice.reason, "you", choice.value)
    return PlannedSetting(choice.key, choice.value, choice.reason, "plan")


def _input_cost(model: str, frames: int, size: int) -> Callable[[int, int], float]:
    """`cost(frames, side)`: FLOPs per clip relative to the default input (area scaling when
    the model cannot be counted)."""
    def cost(f: int, side: int) -> float:
        try:
            return _gflops(model, f, f, side) / max(1e-12, _gflops(model, f, frames, size))
        except Exception:  # noqa: BLE001 - an estimate is enough
            return (f / frames) * (side / size) ** 2

    return cost


@functools.lru_cache(maxsize=256)
def _gflops(model: str, model_frames: int, frames: int, side: int) -> float:
    """GFLOPs of `model` (built for `model_frames`) on one `frames`×`side`² clip; counted once
    per process (the size search asks for the same inputs again, and counting is slow)."""
    from vidlab.models import create
    from vidlab.models.flops import count_gflops

    return count_gflops(create(model, num_classes=2, num_frames=model_frames), frames, side)


def apply_plan(config: TrainConfig, plan: Plan) -> TrainConfig:
    """`config` with the plan's settings (the user's own settings are untouched). Settings
    neither the user nor the plan gave stay unset, so that `resolve_config` still fills them
    from the model (e.g. an `hf:` checkpoint's own short side, mean and std)."""
    from vidlab.config import apply_overrides

    data = config.model_dump(mode="json", exclude_unset=True)
    items = [f"{k}={json.dumps(v)}" for k, v in plan.applied().items()]
    return TrainConfig.model_validate(apply_overrides(data, items))


def plan_for(config: TrainConfig, train_entries: list[dict[str, Any]], labels: list[str],
             fingerprint_path: Path | None = None, shards: Any = None) -> Plan:
    """The plan for these training clips (fingerprint cached at `fingerprint_path`).

    With `shards` (`vidlab.train.dataset.TrainShards`) the clips are a preview of a streamed
    training split: the split's own class counts and `dataset.json` info are used."""
    from vidlab.data.config import find_dataset_info
    from vidlab.data.fingerprint import clip_counts, load_or_compute

    fingerprint = load_or_compute(train_entries, labels, fingerprint_path,
                                  max_clips=config.plan.fingerprint_clips)
    if shards is not None:
        if shards.label_counts:
            counts = {name: int(shards.label_counts.get(name, 0)) for name in labels}
            fingerprint = {**fingerprint, "clips": clip_counts(counts)}
        return make_plan(fingerprint, config, shards.dataset_info)
    return make_plan(fingerprint, config, find_dataset_info([e["path"] for e in train_entries]))


def plan_run(config: TrainConfig, train_entries: list[dict[str, Any]], labels: list[str],
             run_dir: Path, say: Callable[[str], None] | None = None,
             resume: bool = False, shards: Any = None) -> tuple[TrainConfig, Plan | None]:
    """Plan a run: fingerprint (cached in `run_dir`), print, save and apply the plan.

    A resumed run keeps the plan it saved (`run_dir/plan.json`), applied again, so a config
    given anew (not the run's own `config.yaml`, which already holds it) builds the same model;
    with `plan.auto` off the config is returned as is."""
    from vidlab.data.fingerprint import load_or_compute

    say = say or log.info
    if not config.plan.auto:
        return config, None
    saved = run_dir / PLAN_FILE
    if resume and saved.is_file():
        fingerprint = load_or_compute(train_entries, labels, run_dir / FINGERPRINT_FILE,
                                      max_clips=config.plan.fingerprint_clips)
        plan = Plan.from_dict({**json.loads(saved.read_text()), "fingerprint": fingerprint})
        say("resuming with the plan of the interrupted run:")
        for line in plan.lines()[1:]:
            say(line)
        return apply_plan(config, plan), plan
    plan = plan_for(config, train_entries, labels, run_dir / FINGERPRINT_FILE, shards)
    for line in plan.lines():
        say(line)
    run_dir.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps({k: v for k, v in plan.to_dict().items() if k != "fingerprint"},
                                indent=2))
    return apply_plan(config, plan), plan
