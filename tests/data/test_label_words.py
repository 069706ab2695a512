"""Flip maps and time/order words read from class names."""

from __future__ import annotations

from vidlab.data.label_words import HORIZONTAL, VERTICAL, label_report, mirror_map, tokens


def test_tokens_split_snake_kebab_and_camel_case():
    assert tokens("pan_left") == ["pan", "left"]
    assert tokens("PanLeft") == ["pan", "left"]
    assert tokens("rotate-CCW 2") == ["rotate", "ccw", "2"]


def test_horizontal_map_swaps_left_right_and_rotation_sense_and_keeps_the_rest():
    labels = ["pan_left", "pan_right", "rotate_cw", "rotate_ccw", "tilt_up", "zoom_in"]
    m = mirror_map(labels, HORIZONTAL)
    assert m["map"] == {"pan_left": "pan_right", "pan_right": "pan_left",
                        "rotate_cw": "rotate_ccw", "rotate_ccw": "rotate_cw",
                        "tilt_up": "tilt_up", "zoom_in": "zoom_in"}
    assert m["unmapped"] == []


def test_vertical_map_swaps_up_down_and_rotation_sense():
    m = mirror_map(["tilt_up", "tilt_down", "roll_cw", "roll_ccw", "pan_left"], VERTICAL)
    assert m["map"]["tilt_up"] == "tilt_down" and m["map"]["roll_cw"] == "roll_ccw"
    assert m["map"]["pan_left"] == "pan_left"


def test_a_direction_without_its_mirror_class_is_never_flipped():
    m = mirror_map(["left_then_up", "up_then_left", "grow_then_shrink"], HORIZONTAL)
    assert m["unmapped"] == ["left_then_up", "up_then_left"]
    assert m["map"] == {"grow_then_shrink": "grow_then_shrink"}


def test_an_ambiguous_mirror_is_not_guessed():
    # clockwise could mirror to either name: refuse rather than pick one
    m = mirror_map(["turn_clockwise", "turn_counterclockwise", "turn_anticlockwise"], HORIZONTAL)
    assert "turn_clockwise" in m["unmapped"]
    assert all(m["map"].get(m["map"][k]) == k for k in m["map"])  # an involution


def test_mirror_maps_across_naming_styles_and_diagonals():
    labels = ["Disc_UpLeft", "Disc_UpRight", "disc_down_left", "disc_down_right"]
    h = mirror_map(labels, HORIZONTAL)["map"]
    assert h["Disc_UpLeft"] == "Disc_UpRight"
    assert h["disc_down_left"] == "disc_down_right"
    v = mirror_map(labels, VERTICAL)["map"]  # names match by their words, whatever the style
    assert v["Disc_UpLeft"] == "disc_down_left" and v["disc_down_right"] == "Disc_UpRight"


def test_label_report_finds_order_and_time_words():
    r = label_report(["left_then_up", "up_then_left", "waving"])
    assert r["order_labels"] == ["left_then_up", "up_then_left"]
    assert r["temporal_labels"] == ["left_then_up", "up_then_left"]
    assert r["hflip"]["map"]["waving"] == "waving"
