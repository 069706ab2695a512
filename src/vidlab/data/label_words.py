"""What class names say about geometry and time: flip maps and order words.

A horizontal flip turns "pan_left" into "pan_right" and "rotate_cw" into "rotate_ccw"; played
backwards, "zoom_in" becomes "zoom_out" and "left_then_up" becomes "down_then_right". Names are
the only cheap evidence of this, so the rules here are deliberately strict: a class is flipped
only when its mirror image is exactly one other class name (or the name has no direction word at
all); anything ambiguous is left unflipped.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

HORIZONTAL = {"left": ("right",), "right": ("left",), "leftward": ("rightward",),
              "rightward": ("leftward",), "leftwards": ("rightwards",),
              "rightwards": ("leftwards",), "east": ("west",), "west": ("east",),
              "cw": ("ccw", "acw"), "ccw": ("cw",), "acw": ("cw",),
              "clockwise": ("counterclockwise", "anticlockwise"),
              "counterclockwise": ("clockwise",), "anticlockwise": ("clockwise",)}
"""Words a left-right mirror swaps (a word → the words its mirror image may be called)."""
VERTICAL = {"up": ("down",), "down": ("up",), "upward": ("downward",), "downward": ("upward",),
            "upwards": ("downwards",), "downwards": ("upwards",), "top": ("bottom",),
            "bottom": ("top",), "above": ("below",), "below": ("above",), "north": ("south",),
            "south": ("north",), "rise": ("fall",), "fall": ("rise",),
            **{k: v for k, v in HORIZONTAL.items() if k in ("cw", "ccw", "acw", "clockwise",
                                                           "counterclockwise", "anticlockwise")}}
"""Words an upside-down mirror swaps (rotation sense flips under both mirrors)."""
TEMPORAL = {"in", "out", "open", "close", "opening", "closing", "push", "pull", "pushing",
            "pulling", "enter", "exit", "leave", "arrive", "grow", "shrink", "growing",
            "shrinking", "rise", "fall", "rising", "falling", "start", "stop", "appear",
            "disappear", "up", "down", "left", "right", "cw", "ccw", "acw", "clockwise",
            "counterclockwise", "anticlockwise", "forward", "backward", "forwards", "backwards",
            "approach", "recede", "expand", "contract", "inflate", "deflate", "on", "off",
            "sit", "stand", "lift", "drop", "put", "take", "throw", "catch", "towards", "away"}
"""Words whose meaning a clip played backwards may change (a direction, a change of state)."""
ORDER = {"then", "before", "after", "followed", "first", "second", "to", "into", "from",
         "until", "while"}
"""Words that say a class is a sequence of parts (so the whole clip must be seen)."""

_TOKEN = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def tokens(label: str) -> list[str]:
    """Lower-case words of a class name (`pan_left`, `PanLeft`, `pan-left` → pan, left)."""
    return [t.lower() for t in _TOKEN.findall(label)]


def mirror_map(labels: list[str], table: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """The label map of one mirror: `{"map": {label: label it becomes}, "unmapped": [...],
    "direction_labels": [...]}`. A name without a `table` word maps to itself; a name with
    one maps to the single existing name that swaps every such word (and must map back);
    otherwise it is unmapped (never flipped)."""
    canon = {_canonical(name): name for name in labels}
    result: dict[str, str] = {}
    unmapped: list[str] = []
    directional: list[str] = []
    for name in labels:
        words = tokens(name)
        if not any(w in table for w in words):
            result[name] = name
            continue
        directional.append(name)
        options = [table.get(w, (w,)) for w in words]
        found = {canon[key] for combo in itertools.product(*options)
                 if (key := " ".join(combo)) in canon}
        if len(found) == 1:
            result[name] = found.pop()
        else:
            unmapped.append(name)
    for name, other in list(result.items()):  # a mirror applied twice is the identity
        if result.get(other) != name:
            result.pop(name, None)
            if name not in unmapped:
                unmapped.append(name)
    return {"map": result, "unmapped": sorted(unmapped), "direction_labels": sorted(directional)}


def label_report(labels: list[str]) -> dict[str, Any]:
    """Everything the recipe reads from class names (flip maps, time and order words)."""
    words = {name: tokens(name) for name in labels}
    return {
        "hflip": mirror_map(labels, HORIZONTAL),
        "vflip": mirror_map(labels, VERTICAL),
        "temporal_labels": sorted(n for n, w in words.items() if set(w) & TEMPORAL),
        "order_labels": sorted(n for n, w in words.items() if set(w) & ORDER),
    }


def _canonical(name: str) -> str:
    return " ".join(tokens(name))
