"""QP conditioning on real H.264 and HEVC streams: the pool records each frame's QP as the
decoder reports it, a model grown with the condition starts as the blind one, and
`vidlab enhance` hands every frame's own QP to a conditioned model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.conftest import moving_square_frames
from tests.enhance.conftest import make_clean_root, tiny_config

from vidlab.bundle import save_bundle
from vidlab.cli import main
from vidlab.enhance import build_enhancer, enhance_stream, enhance_video, load_enhancer
from vidlab.enhance.coded import read_coded
from vidlab.enhance.degrade import CompressionSpec, encode
from vidlab.enhance.model import quality_vector
from vidlab.enhance.pool import PairPool
from vidlab.enhance.train import init_from_bundle, train_enhancer
from vidlab.io import VideoReader, psnr


def test_quality_vector_says_qp_codec_and_whether_it_is_known():
    assert quality_vector(37, "h264") == pytest.approx([37 / 51, 0.0, 1.0])
    assert quality_vector(37.5, "hevc") == pytest.approx([37.5 / 51, 1.0, 1.0])
    assert quality_vector(None, "hevc") == [0.0, 0.0, 0.0]


def test_a_model_grown_with_the_condition_starts_as_the_blind_model(bundles):
    blind, _ = load_enhancer(bundles["restore"])
    torch.manual_seed(0)
    torch.nn.init.normal_(blind.head[0].weight, 0, 0.05)  # a visible residual
    grown = build_enhancer(num_frames=3, channels=4, num_blocks=1, qp_cond=True).eval()
    grown.load_state_dict(blind.state_dict(), strict=False)
    x = torch.rand(2, 3, 3, 24, 32)
    quality = torch.tensor([quality_vector(45, "h264"), quality_vector(None)])
    with torch.no_grad():
        assert torch.equal(grown(x, quality), blind(x))
        assert torch.equal(grown(x), blind(x))
    # and from a bundle, as `vidlab enhance train --qp-cond --init` starts
    fresh = build_enhancer(num_frames=3, channels=4, num_blocks=1, qp_cond=True)
    copied, total = init_from_bundle(fresh, bundles["restore"])
    assert copied == total - 4  # all but the FiLM's two linear layers


@pytest.fixture(scope="module")
def conditioned_run(tmp_path_factory) -> Path:
    """A tiny QP-conditioned restore run on 64×96 clips (large enough for x265), half HEVC."""
    root = make_clean_root(tmp_path_factory.mktemp("clean64"), 64, 96)
    run = tmp_path_factory.mktemp("qp_run")
    cfg = tiny_config(qp_cond=True)
    cfg.pool.update(windows=6, max_height=64, max_width=96, h265_share=0.5, quality_range=(36, 42))
    train_enhancer(root, run, cfg)
    return run


def test_the_pool_records_every_frame_qp_as_the_decoder_reports_it(conditioned_run):
    index = json.loads((conditioned_run / "pool" / "pool.json").read_text())
    assert index["spec"]["record_qp"] is True
    windows = index["windows"]
    assert {w["qp_codec"] for w in windows} == {"h264", "hevc"}
    for w in windows:
        frames = np.load(conditioned_run / "pool" / f"{w['name']}_degraded.npy", mmap_mode="r")
        assert len(w["qps"]) == len(frames)
        if w["qp_codec"] == "hevc":  # x265's nominal QP/CRF, the same for the whole stream
            assert w["qps"] == [w["quality"]] * len(frames)
        elif w["mode"] == "qp":  # x264's per-frame map: I frames a few QPs finer, B coarser
            assert all(w["quality"] - 4 <= q <= w["quality"] + 3 for q in w["qps"])
    config = json.loads((conditioned_run / "enhancer.vidlab" / "config.json").read_text())
    assert config["model"]["kwargs"]["qp_cond"] is True


def test_pool_batches_carry_the_centre_frame_quality_and_a_blind_share(conditioned_run):
    records = json.loads((conditioned_run / "pool" / "pool.json").read_text())["windows"]
    torch.manual_seed(0)
    pool = PairPool(conditioned_run, records, "train", 3, 1)
    x, y, q = pool.batch(8, 16, with_quality=True)
    assert x.shape[0] == y.shape[0] == q.shape[0] == 8 and q.shape[1] == 3
    recorded = {round(qp / 51, 5) for w in records if w["split"] == "train" for qp in w["qps"]}
    assert torch.all(q[:, 2] == 1) and {round(float(v), 5) for v in q[:, 0]} <= recorded
    blind = PairPool(conditioned_run, records, "train", 3, 1, blind_share=1.0)
    assert torch.all(blind.batch(4, 16, with_quality=True)[2] == 0)


@pytest.fixture()
def visible_film(conditioned_run, tmp_path) -> Path:
    """The conditioned bundle with a FiLM and head large enough that the QP changes the output."""
    model, b = load_enhancer(conditioned_run / "enhancer.vidlab")
    torch.manual_seed(1)
    torch.nn.init.normal_(model.film.net[-1].weight, 0, 0.3)
    torch.nn.init.normal_(model.head[0].weight, 0, 0.01)
    return save_bundle(tmp_path / "film.vidlab", config=b.config,
                       state_dict=model.state_dict()).path


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([psnr(x, y) for x, y in zip(a, b, strict=True)]))


def _decoded(path) -> np.ndarray:
    with VideoReader(path) as r:
        return np.stack(list(r.iter_frames()))


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_enhance_gives_a_conditioned_model_each_frame_qp(visible_film, tmp_path, codec, capsys):
    src = tmp_path / f"{codec}.mp4"
    encode(moving_square_frames(8, 64, 96, seed=5),
           CompressionSpec(codec=codec, mode="qp", quality=40, gop="ra"), src)
    out = enhance_video(visible_film, src, tmp_path / "out.mp4", gate=False, crf=0)
    assert out["model"]["qp_conditioned"] is True
    written = _decoded(tmp_path / "out.mp4")
    model, _ = load_enhancer(visible_film)
    clip = read_coded(src)
    with_qp = np.stack(list(enhance_stream(model, clip.frames, qps=clip.qps, codec=clip.codec)))
    blind = np.stack(list(enhance_stream(model, clip.frames)))
    wrong = np.stack(list(enhance_stream(model, clip.frames, qps=[20.0] * len(clip.frames),
                                         codec=clip.codec)))
    db = {"blind vs qp": _psnr(with_qp, blind), "wrong vs qp": _psnr(with_qp, wrong),
          "written vs qp": _psnr(written, with_qp), "written vs blind": _psnr(written, blind),
          "written vs wrong": _psnr(written, wrong)}
    assert db["blind vs qp"] < 35 and db["wrong vs qp"] < 35, db  # the QP matters...
    assert db["written vs qp"] > max(db["written vs blind"], db["written vs wrong"]) + 5, db
    # the CLI says so too
    main(["enhance", str(visible_film), str(src), str(tmp_path / "cli.mp4"), "--json"])
    assert json.loads(capsys.readouterr().out)["model"]["qp_conditioned"] is True


def test_qp_cond_is_refused_for_sr2x():
    from vidlab.errors import ConfigError

    with pytest.raises(ConfigError, match="qp_cond"):
        tiny_config("sr2x", qp_cond=True)


def test_the_protocol_scores_the_decoder_own_y_planes(tmp_path):
    """`read_coded` keeps the decoder's Y planes, and `coded_luma` of its (exact) RGB frames
    gives the same planes back, unbiased: the input is scored on the codec's own scale."""
    from vidlab.enhance.coded import coded_luma

    src = tmp_path / "c.mp4"
    encode(moving_square_frames(4, 64, 96, seed=2), CompressionSpec("h264", "qp", 30), src)
    clip = read_coded(src)
    assert clip.luma.shape == clip.frames.shape[:3] and clip.luma.dtype == np.uint8
    diff = coded_luma(clip.frames).astype(int) - clip.luma
    assert abs(diff.mean()) < 0.1 and np.abs(diff).mean() < 0.5  # saturated colours clip a little
