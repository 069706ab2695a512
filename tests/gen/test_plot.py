"""`quality.png` is drawn from the run's eval records."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from vidlab.gen.plot import plot_quality


def test_quality_plot_is_a_png_of_the_eval_records(tmp_path: Path):
    records = [{"phase": "train", "step": 1, "loss_g": 1.0}]
    for step, fd, cc in ((100, 50.0, 0.2), (200, 20.0, 0.6), (300, 9.0, 0.85)):
        records.append({"phase": "eval", "step": step, "frechet_distance": fd,
                        "class_consistency": cc, "shuffled_real_frechet_distance": 30.0,
                        "shuffled_real_class_consistency": 0.3})
    path = plot_quality(records, tmp_path / "quality.png")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 300
