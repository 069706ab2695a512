"""The registry contract: names others code against, errors for bad names and arguments."""

from __future__ import annotations

import pytest
import torch

from vidlab.errors import ModelError
from vidlab.models import VideoModel, create, list_models, model_entry

REQUIRED = ["tsn_r18", "tsn_r50", "tsm_r18", "tsm_r50", "lrcn_r18", "c3d", "r3d_18", "mc3_18",
            "r2plus1d_18", "x3d_xs", "x3d_s", "timesformer_tiny", "timesformer_small",
            "timesformer_base", "tsn_tiny", "tsm_tiny", "lrcn_tiny", "c3d_tiny", "r3d_tiny",
            "r2plus1d_tiny", "x3d_tiny"]


def test_every_contracted_name_is_registered():
    missing = [n for n in REQUIRED if n not in list_models()]
    assert not missing


def test_list_models_filters_by_glob():
    assert list_models("r2plus1d*") == ["r2plus1d_18", "r2plus1d_tiny"]
    assert list_models("no_such_*") == []


def test_unknown_model_is_a_model_error_with_a_hint():
    with pytest.raises(ModelError, match="unknown model 'r2plus1d_99'.*r2plus1d"):
        create("r2plus1d_99", num_classes=3)


def test_bad_keyword_is_a_model_error():
    with pytest.raises(ModelError, match="r3d_tiny"):
        create("r3d_tiny", num_classes=3, no_such_argument=1)


def test_bad_drop_rate_is_a_model_error():
    with pytest.raises(ModelError, match="drop_rate"):
        create("r3d_tiny", num_classes=3, drop_rate=1.5)


@pytest.mark.parametrize("name", ["r2plus1d_tiny", "tsn_tiny", "x3d_tiny"])
def test_create_reports_default_input_and_takes_common_kwargs(name):
    entry = model_entry(name)
    model = create(name, num_classes=5, drop_rate=0.3, drop_path_rate=0.1, in_channels=3)
    assert isinstance(model, VideoModel)
    assert model.input_spec() == {"num_frames": entry.num_frames, "size": entry.size,
                                  "channels": 3}
    assert model.get_classifier().out_features == 5


def test_width_kwarg_changes_the_parameter_count():
    small = create("r2plus1d_tiny", num_classes=4)
    wide = create("r2plus1d_tiny", num_classes=4, widths=(32, 64, 128, 256))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(wide) > 3 * count(small)


def test_in_channels_changes_the_stem():
    model = create("r3d_tiny", num_classes=4, in_channels=1)
    assert model(torch.randn(2, 1, 8, 32, 32)).shape == (2, 4)
