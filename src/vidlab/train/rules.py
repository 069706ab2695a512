"""The recipe's rules: dataset fingerprint → training settings, each with its reason.

Every rule is a small function of the fingerprint (`vidlab.data.fingerprint`) and the model's
default input; the thresholds are the named constants below, and the evidence behind them is
the table of `benchmarks/recipe.py` in docs/train.md. A rule returns `Choice`s; `plan.py`
keeps the ones the user did not set and applies them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

WHOLE_CLIP_MAX_S = 10.0
"""Clips whose 90th-percentile length is at most this many seconds are sampled whole: one
frame from each of `num_frames` equal segments spans all of the clip, so the model sees the
whole action (the order of two moves, a slow pan from start to end) and not a third of it."""
FILLED = 0.5
"""...provided motion fills at least this fraction of the median clip; when it fills less (a
short action in a longer clip) frames spread over the whole clip would mostly show stillness,
so the clip is cut into windows around the action's length instead."""
STEP_DECORRELATIONS = 4.0
"""...and the frames of a whole clip are at most this many decorrelation times apart (of the
fastest class: its median clip); further apart, fast motion aliases (a star turning 200°/s
jumps more than half its spoke spacing) and contiguous clips at the default stride are used.
On the development data (seed 1) whole-clip steps were 1.6-3.0 decorrelation times for
two-move sequences, 24-class object motion and slow camera moves, 5.1-6.1 for small fast
objects and the built-in fast motion."""
FILLS_ALL = 0.95
STATIONARY_STEP_DECORRELATIONS = 2.0
"""When motion fills all of the median clip (at least `FILLS_ALL`: no start or end of an
action inside it, so any window shows the class) and whole-clip frames would be more than this
many decorrelation times apart, contiguous clips are used: the whole clip adds nothing to see,
and closer frames resolve the motion. Measured: 24 classes of constant fast object motion
(`many`, 2.5-3.1 decorrelation times) lost 4 points (dev data, seed 1) and 5-9 points (held-out
seed 0) with whole-clip frames; slow motion that fills the clip keeps whole-clip sampling."""
WINDOW_ACTIONS = 1.5
"""A window spans this many typical actions (`action_seconds`), so a window that holds the
action holds all of it."""
MIN_WINDOW_S = 1.0
MAX_VIEWS = 12
"""Evaluation windows per video at most (tiling longer videos more sparsely)."""
SMALL_MOTION = 0.015
"""Median moving area (fraction of the picture that moves within a quarter second at a clip's
busiest moment) below which the moving things are small, under ~8 % of the short side across:
the input grows so they keep a few pixels. Development data (seed 1): small objects 0.005-0.009,
ordinary objects 0.03-0.15, camera motion 0.07-0.43."""
MAX_INPUT_COST = 2.5
"""A larger input may cost at most this many times the model's default input per clip: the
time budget then fits proportionally fewer epochs (96 px for a 64-px model: 2.25x, ~45 % of
the epochs)."""
IMBALANCED = 3.0
"""Largest / smallest class above which the best epoch is chosen by mean class accuracy."""
MIN_STEPS_PER_EPOCH = 4


@dataclass(frozen=True)
class Choice:
    """One planned setting: a dotted config key, its value and why."""

    key: str
    value: Any
    reason: str


@dataclass(frozen=True)
class Context:
    """What the rules know besides the fingerprint."""

    model: str
    frames: int
    """The model's default clip length (frames)."""
    size: int
    """The model's default input side (pixels)."""
    batch_size: int
    lr: float
    stride: int
    """The fixed frame step of contiguous clips (`DataConfig`'s default)."""
    window_sampling: str
    """The `data.sampling` word for contiguous clips (windows)."""
    input_cost: Any = None
    """`input_cost(frames, size)` → cost per clip relative to the default input (FLOPs)."""
    batch_given: bool = False
    """The user chose the batch size: the plan then keeps the rate that goes with it."""
    fixed_input: bool = False
    """The checkpoint fixes its input size (`hf:`: position embeddings, its own preprocessing)."""
    takes_frame_diff: bool = False
    """The model can take frame differences beside the frames (`model.frame_diff`)."""
    pretrained: bool = False
    """The model starts from weights (`model.weights`, an `hf:` checkpoint)."""


def _q(fp: dict[str, Any], *path: str, key: str = "p50", default: float = 0.0) -> float:
    node: Any = fp
    for p in path:
        node = node.get(p, {}) if isinstance(node, dict) else {}
    value = node.get(key) if isinstance(node, dict) else None
    return float(value) if value is not None else default


def fastest_decorrelation(fp: dict[str, Any]) -> float:
    """Decorrelation time (s) of the fastest class (its median clip); 0 when not measured."""
    per_class = fp.get("motion", {}).get("by_class", {})
    values = [c.get("decorrelation_s") for c in per_class.values()]
    values = [float(v) for v in values if v is not None and v > 0]
    return min(values) if values else _q(fp, "motion", "decorrelation_s", key="p10")


def temporal(fp: dict[str, Any], ctx: Context) -> list[Choice]:
    """Which frames make a clip, and the evaluation views that go with them."""
    d50, d90 = _q(fp, "duration"), _q(fp, "duration", key="p90")
    filled = _q(fp, "motion", "active_fraction", default=1.0)
    action = _q(fp, "motion", "action_seconds")
    fast = fastest_decorrelation(fp)
    measured = int(fp.get("motion", {}).get("clips_measured", 0))
    frames = ctx.frames
    known = bool(measured) and fast > 0
    max_step = STEP_DECORRELATIONS * fast if known else math.inf
    short = f"clips are short (median {d50:.1f} s, 90 % within {d90:.1f} s)"
    if d90 <= WHOLE_CLIP_MAX_S and (filled >= FILLED or not measured):
        step = d50 / frames
        fills_all = filled >= FILLS_ALL  # nothing to gain from the whole: a tighter limit
        limit = STATIONARY_STEP_DECORRELATIONS if fills_all else STEP_DECORRELATIONS
        if not known or step <= limit * fast:
            why = (f"{short} and motion fills {filled:.0%} of the median clip: {frames} frames "
                   "spread over the whole clip (one per segment) see all of the action")
            return [Choice("data.sampling", "segments", why),
                    Choice("data.num_frames", frames, f"the default input of {ctx.model}"),
                    Choice("data.target_fps", round(1 / step, 3),
                           f"{frames} frames over the median clip: the frame spacing predict's "
                           "windows keep on longer videos"),
                    Choice("data.val_views", [1, 1], "one whole-clip view per validation clip"),
                    Choice("data.test_views", [3, 1],
                           "three interleaved whole-clip views per test clip")]
        if fills_all:
            why = (f"{short}, motion fills all of the median clip, so any window shows it, and "
                   f"frames spread over the whole clip would be {step:.2f} s apart, "
                   f"{step / fast:.1f} decorrelation times ({fast:.3f} s, of the fastest class): "
                   f"contiguous clips of {frames} frames resolve the motion better")
        else:
            why = (f"{short} but the motion is fast: frames spread over the whole clip would be "
                   f"{step:.2f} s apart, more than {STEP_DECORRELATIONS:g} decorrelation times "
                   f"({fast:.3f} s, of the fastest class), so fast motion would alias; "
                   f"contiguous clips of {frames} frames instead")
        return [Choice("data.sampling", ctx.window_sampling, why),
                Choice("data.num_frames", frames, f"the default input of {ctx.model}"),
                Choice("data.stride", ctx.stride, "every other frame (the fixed default), "
                                                  "fine enough for fast motion"),
                Choice("data.target_fps", None, "a fixed frame step"),
                Choice("data.val_views", [1, 1], "the centre clip per validation clip"),
                Choice("data.test_views", [3, 1], "three clips spread over each test clip")]
    span = max(MIN_WINDOW_S, min(d50, WINDOW_ACTIONS * action)) if action > 0 else min(d50, 4.0)
    span = min(span, frames * max_step)
    tiles = max(1, math.ceil(d90 / span))
    test = min(MAX_VIEWS, max(3, tiles))
    val = min(MAX_VIEWS // 2, max(1, math.ceil(d50 / span)))
    if d90 > WHOLE_CLIP_MAX_S:
        where = f"clips are long (median {d50:.1f} s, 90 % within {d90:.1f} s)"
    else:
        where = f"motion fills only {filled:.0%} of the median clip"
    why = (f"{where}; the action takes about {action:.1f} s: windows of {span:.1f} s "
           f"({WINDOW_ACTIONS}x the action), {frames} frames each")
    return [Choice("data.sampling", ctx.window_sampling, why),
            Choice("data.num_frames", frames, f"the default input of {ctx.model}"),
            Choice("data.target_fps", round(frames / span, 3),
                   f"{frames} frames over a {span:.1f} s window"),
            Choice("data.val_views", [val, 1], f"{val} windows tile the median clip"),
            Choice("data.test_views", [test, 1],
                   f"{test} windows tile {'the longest clips' if test == tiles else 'each clip'}"
                   f" (at most {MAX_VIEWS})")]


def spatial(fp: dict[str, Any], ctx: Context) -> list[Choice]:
    """Input size from the scale of what moves and the videos' own resolution."""
    if ctx.fixed_input:
        return []  # the checkpoint's own crop and decode size, as its processor says
    area = _q(fp, "motion", "moving_area", default=1.0)
    source = _q(fp, "short_side", key="p10", default=float(ctx.size))
    crop = ctx.size
    why = f"the default input of {ctx.model}"
    if small_motion(fp) and frame_diff_planned(ctx):
        why = (f"the default input of {ctx.model}: what moves is small (median {area:.2%} of the "
               "picture), but frame differences (below) find it, and more epochs at this size "
               "beat a larger input")
    elif small_motion(fp):  # the model cannot take differences: enlarge what moves instead
        cost = ctx.input_cost or (lambda f, s: (s / ctx.size) ** 2)
        best = ctx.size
        for side in range(ctx.size + 16, 2 * ctx.size + 1, 16):
            if side <= source and cost(ctx.frames, side) <= MAX_INPUT_COST + 1e-6:
                best = side
        if best > ctx.size:
            crop = best
            why = (f"what moves is small (median {area:.2%} of the picture): {crop} px keeps it "
                   f"{crop / ctx.size:.1f}x larger than {ctx.size} px, at "
                   f"{cost(ctx.frames, crop):.1f}x the compute per clip")
    if crop > source >= 16:
        crop = int(source) // 8 * 8
        why = f"the videos are small (10 % have a short side of {source:.0f} px or less)"
    short = max(crop, round(crop * 8 / 7))
    return [Choice("data.crop_size", crop, why),
            Choice("data.short_side", short, f"decode at {short} px, crop {crop} px (8:7, as "
                                                 f"the usual 128/112)")]


def flips(fp: dict[str, Any], dataset_info: dict[str, Any]) -> list[Choice]:
    """Horizontal flip where it keeps every class (or a dataset.json map says what it turns a
    class into); a mirror map read from class names is filled in but left off."""
    if isinstance(dataset_info.get("flip_map"), dict):
        fmap = {str(k): str(v) for k, v in dataset_info["flip_map"].items()}
        sensitive = bool(dataset_info.get("direction_sensitive", True))
        return [Choice("data.flip_map", fmap, "the dataset's dataset.json gives the flip map"),
                Choice("data.direction_sensitive", sensitive, "from dataset.json"),
                Choice("data.hflip", 0.5, "label-aware horizontal flip (dataset.json)")]
    report = fp.get("labels", {}).get("hflip", {})
    fmap, unmapped = dict(report.get("map", {})), list(report.get("unmapped", []))
    directional = list(report.get("direction_labels", []))
    if not directional:
        return [Choice("data.direction_sensitive", False,
                       "no class name says left/right or a turning sense: a mirrored clip "
                       "keeps its class"),
                Choice("data.hflip", 0.5, "horizontal flip, half of the clips")]
    pairs = sum(1 for k, v in fmap.items() if k != v) // 2
    if len(unmapped) == len(fmap) + len(unmapped) or (not pairs and unmapped):
        return [Choice("data.hflip", 0.0, f"{len(unmapped)} class names have a direction and "
                                          "no mirror class: no flip")]
    why = (f"{pairs} mirror pair(s) read from class names (e.g. "
           f"{next(f'{k}->{v}' for k, v in fmap.items() if k != v)})")
    if unmapped:
        why += f"; {len(unmapped)} class(es) with no mirror class are never flipped"
    return [Choice("data.flip_map", fmap, why),
            Choice("data.direction_sensitive", True, "class names say left/right or a turning "
                                                     "sense"),
            Choice("data.hflip", 0.0, "off: flips that swap classes read from names gained "
                                      "nothing in the recipe benchmark (docs/train.md); "
                                      "--set data.hflip=0.5 uses the map")]


def orientation_and_time(fp: dict[str, Any], dataset_info: dict[str, Any]) -> list[Choice]:
    """Upside-down flips and time reversal: off unless the dataset says they keep classes."""
    labels = fp.get("labels", {})
    vmap = dict(labels.get("vflip", {}).get("map", {}))
    pairs = [f"{k}->{v}" for k, v in vmap.items() if k != v]
    out = []
    if pairs and not labels.get("vflip", {}).get("unmapped"):
        out.append(Choice("data.vflip_map", vmap, f"{len(pairs) // 2} upside-down pair(s) read "
                                                  f"from class names (e.g. {pairs[0]})"))
    out.append(Choice("data.vflip", 0.0, "off: cameras do not film upside down, and a class "
                                         "name cannot show an upside-down clip keeps its class"
                                         + (" (use the map: --set data.vflip=0.5)" if out else "")))
    if isinstance(dataset_info.get("reverse_map"), dict):
        rmap = {str(k): str(v) for k, v in dataset_info["reverse_map"].items()}
        return [*out, Choice("data.reverse_map", rmap, "dataset.json gives the time-reversal map"),
                Choice("data.time_reverse", 0.5, "clips played backwards, labels per dataset.json")]
    if dataset_info.get("time_reversible") is True:
        return [*out, Choice("data.time_reverse", 0.5, "dataset.json says a clip played "
                                                       "backwards keeps its class")]
    timed = list(labels.get("temporal_labels", [])) + list(labels.get("order_labels", []))
    example = f"; e.g. {timed[0]}" if timed else ""
    return [*out, Choice("data.time_reverse", 0.0,
                         "off: played backwards a clip can change class (sit down / stand up), "
                         f"which names cannot rule out{example}; dataset.json "
                         "'time_reversible: true' turns it on")]


def optimisation(fp: dict[str, Any], ctx: Context) -> list[Choice]:
    """Batch size (never so large that an epoch has only a few steps) and the best-epoch rule."""
    clips = fp.get("clips", {})
    n = int(clips.get("num_clips", 0))
    batch, lr = ctx.batch_size, ctx.lr
    out: list[Choice] = []
    if n and n < batch * MIN_STEPS_PER_EPOCH and not ctx.batch_given:
        small = max(2, 2 ** int(math.log2(max(2, n // MIN_STEPS_PER_EPOCH))))
        scaled = round(lr * math.sqrt(small / batch), 6)
        out += [Choice("train.batch_size", small, f"only {n} training clips: {small} per step "
                                                  f"gives {n // small} steps per epoch"),
                Choice("optim.lr", scaled, f"{lr:g} scaled by sqrt({small}/{batch})")]
    else:
        out += [Choice("train.batch_size", batch, f"{n} training clips: {n // batch} steps of "
                                                  f"{batch} per epoch"),
                Choice("optim.lr", lr, "AdamW's default rate for this batch size")]
    imbalance = float(clips.get("imbalance", 1.0))
    if imbalance >= IMBALANCED:
        out.append(Choice("train.monitor", "val_mean_class_acc",
                          f"classes are imbalanced ({imbalance:.1f}x): keep the epoch with the "
                          "best mean class accuracy"))
    return out


def small_motion(fp: dict[str, Any]) -> bool:
    """What moves is small: the measured median moving area is below `SMALL_MOTION`."""
    area = _q(fp, "motion", "moving_area", default=1.0)
    return bool(fp.get("motion", {}).get("clips_measured", 0)) and 0 < area < SMALL_MOTION


def frame_diff_planned(ctx: Context) -> bool:
    """Whether `motion_input` turns frame differences on (the input size depends on it)."""
    return ctx.takes_frame_diff and not ctx.pretrained


def motion_input(fp: dict[str, Any], ctx: Context) -> list[Choice]:
    """Frame differences beside the frames whenever the model can take them and starts from
    scratch.

    A network from scratch has to discover temporal differencing before it sees any motion.
    Handed each frame's difference from the one before (its weights starting at zero, so
    training starts from the plain network), it learnt a few moving pixels among still
    look-alikes that kept it at chance, and it learnt slow camera moves and the built-in fast
    motion better; no dataset measured lost beyond the run-to-run noise (docs/train.md).
    Pretrained weights expect the frames alone."""
    if not ctx.takes_frame_diff:
        return []
    if not frame_diff_planned(ctx):
        return [Choice("model.frame_diff", False,
                       "the pretrained weights' first layer takes the frames alone")]
    what = (f"what moves is small (median {_q(fp, 'motion', 'moving_area'):.2%} of the picture), "
            "and " if small_motion(fp) else "")
    return [Choice("model.frame_diff", True,
                   f"{what}the model starts from scratch: each frame's difference from the one "
                   "before goes in beside the frames (its weights start at zero), so motion "
                   "stands out from the first step")]


def all_rules(fp: dict[str, Any], ctx: Context, dataset_info: dict[str, Any]) -> list[Choice]:
    """Every rule's choices, in the order they are printed."""
    return [*temporal(fp, ctx), *spatial(fp, ctx), *motion_input(fp, ctx),
            *flips(fp, dataset_info), *orientation_and_time(fp, dataset_info),
            *optimisation(fp, ctx)]
