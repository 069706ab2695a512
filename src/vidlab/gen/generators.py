"""Generators by name: the kinds a GAN config (`generator`) or a saved generator bundle names."""

from __future__ import annotations

from vidlab.gen.layered import LayeredVideoGenerator
from vidlab.gen.nets import GeneratorBase, VideoGenerator

GENERATORS: dict[str, type[GeneratorBase]] = {"mocogan": VideoGenerator,
                                              "layered": LayeredVideoGenerator}


def build_generator(kind: str, num_classes: int, **kwargs: int) -> GeneratorBase:
    """A generator by name: "mocogan" (`nets.VideoGenerator`) or "layered"
    (`layered.LayeredVideoGenerator`)."""
    if kind not in GENERATORS:
        raise ValueError(f"unknown generator {kind!r} ({', '.join(GENERATORS)})")
    return GENERATORS[kind](num_classes, **kwargs)
