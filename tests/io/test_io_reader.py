"""VideoReader: random access returns exactly the frames of a full sequential decode."""

from __future__ import annotations

import multiprocessing as mp
import pickle

import numpy as np
import pytest
from io_clips import BUILDERS, sequential_decode
from tests.conftest import encode_video

from vidlab.io import VideoReader, probe


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_random_indices_equal_sequential_decode(clip, name):
    path = clip(name)
    reference = sequential_decode(path)
    rng = np.random.default_rng(len(name))
    with VideoReader(path) as reader:
        assert len(reader) == probe(path).num_frames == len(reference)
        indices = np.concatenate([rng.integers(0, len(reference), 25), [len(reference) - 1, 0, 3, 3]])
        got = reader.get_frames(indices)
        assert got.dtype == np.uint8 and got.shape == (len(indices), *reference.shape[1:])
        for i, idx in enumerate(indices):
            assert np.array_equal(got[i], reference[idx]), f"{name}: frame {idx} differs"
        assert reader.num_corrupt == 0


@pytest.mark.parametrize("name", ["h264_bframes_open_gop.mp4", "hevc_10bit.mkv", "vp9.webm",
                                  "rotated_90.mp4"])
def test_iter_frames_streams_the_sequential_decode(clip, name):
    path = clip(name)
    reference = sequential_decode(path)
    with VideoReader(path) as reader:
        assert np.array_equal(np.stack(list(reader.iter_frames())), reference)
        indexed = list(reader.iter_frames_with_time(start=5, stop=len(reference) - 2, step=3))
    assert [i for i, _, _ in indexed] == list(range(5, len(reference) - 2, 3))
    for i, _, frame in indexed:
        assert np.array_equal(frame, reference[i])


def test_resize_happens_in_the_scaler_with_the_same_conversion(clip):
    path = clip("h264_bframes_open_gop.mp4")
    reference = sequential_decode(path, width=40, height=32, interpolation="AREA")
    with VideoReader(path, size=(32, 40)) as reader:
        assert np.array_equal(reader.get_frames([7, 2, 50]), reference[[7, 2, 50]])
    with VideoReader(path, size=32) as reader:  # short side, aspect kept
        assert reader.get_frames([0]).shape == (1, 32, 40, 3)


def test_rotation_metadata_gives_upright_frames(clip):
    path = clip("rotated_90.mp4")
    info = probe(path)
    assert (info.width, info.height, info.rotation) == (64, 80, 270)
    with VideoReader(path, size=(40, 32)) as reader:
        assert reader.get_frames([1]).shape == (1, 40, 32, 3)


def test_vfr_timestamps_and_frames_are_exact(clip):
    path = clip("h264_vfr.mkv")
    gaps = np.tile([0.02, 0.05, 0.1, 0.033], 10)
    times = np.concatenate([[0.0], np.cumsum(gaps)[:-1]])
    with VideoReader(path) as reader:
        assert len(reader) == len(times)
        np.testing.assert_allclose(reader.timestamps, times, atol=0.0015)
        assert reader.fps == pytest.approx(len(times) / reader.info.duration)


def test_clip_decodes_locally_not_the_whole_file(clip):
    path = clip("h264_bframes_open_gop.mp4")  # keyframe every 12 frames, 60 frames
    with VideoReader(path) as reader:
        reader.get_frames([37, 39])
        assert reader.packets_decoded <= 12 + 4 + 4  # the GOP before (open GOP) at most
        before = reader.packets_decoded
        reader.get_frames([44, 46])  # ahead in the same GOP: the running decoder goes on
        assert reader.packets_decoded - before <= 9  # a new seek would cost 11 or more
    with VideoReader(clip("h264_single_keyframe.mp4")) as reader:
        reader.get_frames([59])
        assert reader.packets_decoded == 60  # one keyframe: decoding from it is the only way


def test_out_of_range_index_raises_index_error(clip):
    with VideoReader(clip("mjpeg.avi")) as reader, pytest.raises(IndexError, match="out of range"):
        reader.get_frames([0, len(reader)])


def _child_frames(reader: VideoReader) -> np.ndarray:
    return reader.get_frames([3, 17, 9])


def test_reader_pickles_by_path_and_works_after_fork(clip):
    path = clip("h264_bframes.mkv")
    reader = VideoReader(path)
    expected = reader.get_frames([3, 17, 9])  # opened in the parent before forking
    clone = pickle.loads(pickle.dumps(reader))
    assert np.array_equal(clone.get_frames([3, 17, 9]), expected)
    with mp.get_context("fork").Pool(1) as pool:
        assert np.array_equal(pool.apply(_child_frames, (reader,)), expected)
    assert np.array_equal(reader.get_frames([3, 17, 9]), expected)
    reader.close()


@pytest.mark.parametrize("name", ["h264_bframes_open_gop.mp4", "hevc_10bit.mkv", "vp9.webm",
                                  "av1.mkv"])
def test_consecutive_requests_stay_exact(clip, name):
    """Requests that continue the running decoder (which skipped unwanted non-reference
    frames) or jump back must still return exactly the sequential decode's frames."""
    path = clip(name)
    reference = sequential_decode(path)
    n = len(reference)
    rng = np.random.default_rng(7)
    with VideoReader(path) as reader:
        start = 0
        for _ in range(12):
            start = (start + int(rng.integers(-8, 12))) % (n - 8)
            indices = start + np.sort(rng.choice(8, size=3, replace=False))
            assert np.array_equal(reader.get_frames(indices), reference[indices]), indices


class _Clips:
    """A minimal map-style dataset holding one reader, as the data stage does."""

    def __init__(self, reader: VideoReader):
        self.reader = reader

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> np.ndarray:
        return self.reader.get_frames(np.arange(4) * 2 + i * 5)


def test_reader_works_in_torch_dataloader_workers(clip):
    torch = pytest.importorskip("torch")
    path = clip("h264_bframes_open_gop.mp4")
    reference = sequential_decode(path)
    reader = VideoReader(path)
    reader.get_frames([0])  # open in the parent first, as a dataset built eagerly would
    loader = torch.utils.data.DataLoader(_Clips(reader), batch_size=2, num_workers=2)
    batches = torch.cat(list(loader)).numpy()
    expected = np.stack([reference[np.arange(4) * 2 + i * 5] for i in range(4)])
    assert np.array_equal(batches, expected)


@pytest.mark.parametrize("name", ["h264_bframes_open_gop.mp4", "vp9.webm"])
def test_video_bytes_read_exactly_as_the_file(clip, name):
    from vidlab.io import VideoBytes

    path = clip(name)
    memory = VideoBytes(path.read_bytes(), f"shard.tar:{name}")
    from dataclasses import asdict

    described = {k: v for k, v in asdict(probe(memory)).items() if k != "path"}
    assert described == {k: v for k, v in asdict(probe(path)).items() if k != "path"}
    assert probe(memory).path == f"shard.tar:{name}"
    indices = [len(sequential_decode(path)) - 1, 0, 5, 5]
    with VideoReader(path) as on_disk, VideoReader(memory) as in_memory:
        assert np.array_equal(in_memory.get_frames(indices), on_disk.get_frames(indices))
    reader = pickle.loads(pickle.dumps(VideoReader(memory)))  # DataLoader workers get it whole
    assert reader.get_frames([1]).shape[0] == 1


def test_empty_video_bytes_name_the_sample():
    from vidlab.errors import VideoOpenError
    from vidlab.io import VideoBytes

    with pytest.raises(VideoOpenError, match="shard.tar:k.mp4"):
        probe(VideoBytes(b"", "shard.tar:k.mp4"))


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv422p", "yuv444p"])
def test_exact_rgb_matches_the_coded_luma_plane(tmp_path, pix_fmt):
    """EXACT_RGB frames carry the coded Y plane's brightness (BT.601, limited range) with no
    bias, and are never further from it than the fast conversion's."""
    from vidlab.io.reader import EXACT_RGB

    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (4, 12, 16, 3), dtype=np.uint8).repeat(4, 1).repeat(4, 2)
    frames = np.clip(noise.astype(int) // 2 + 64, 0, 255).astype(np.uint8)  # no clipping in YUV
    path = encode_video(tmp_path / f"{pix_fmt}.mp4", frames, pix_fmt=pix_fmt,
                        options={"qp": "0"})
    with VideoReader(path, pixel_format="gray") as r:
        y = np.stack(list(r.iter_frames())).astype(float)
    with VideoReader(path, pixel_format=EXACT_RGB) as r:
        exact = np.stack(list(r.iter_frames())).astype(float)
    with VideoReader(path) as r:
        fast = np.stack(list(r.iter_frames())).astype(float)
    luma = 16 + 219 / 255 * (np.array([0.299, 0.587, 0.114]) @ np.moveaxis(exact, -1, -2))
    fast_luma = 16 + 219 / 255 * (np.array([0.299, 0.587, 0.114]) @ np.moveaxis(fast, -1, -2))
    assert exact.shape == fast.shape == frames.shape
    assert abs((luma - y).mean()) < 0.25
    assert abs((luma - y).mean()) <= abs((fast_luma - y).mean()) + 0.05


@pytest.mark.parametrize("size", [(144, 176), (736, 1296)])  # one side of the limit, the other
def test_one_scaler_thread_converts_exactly_as_ffmpegs_own_thread_choice(size, monkeypatch):
    """Small frames are converted on one thread (`SINGLE_THREAD_MAX_PIXELS`): faster, and the
    same arrays in every pixel format and resize the readers use."""
    import av

    from vidlab.io import reader
    from vidlab.io.reader import EXACT_RGB, frame_to_array

    h, w = size
    rgb = np.random.default_rng(3).integers(0, 256, (h, w, 3), np.uint8)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    assert reader._threads(frame) == (1 if h * w <= reader.SINGLE_THREAD_MAX_PIXELS else 0)
    ways = [(h, w, "rgb24"), (h // 2, w // 2, "rgb24"), (h, w, EXACT_RGB), (h, w, "gray"),
            (h // 2, w // 2, "gray")]
    converted = {}
    for limit in (10**9, 0):  # every frame on one thread, then every frame on FFmpeg's choice
        monkeypatch.setattr(reader, "SINGLE_THREAD_MAX_PIXELS", limit)
        assert reader._threads(frame) == (1 if limit else 0)
        converted[limit] = [frame_to_array(frame, *way) for way in ways]
    for way, one, auto in zip(ways, converted[10**9], converted[0], strict=True):
        assert np.array_equal(one, auto), way
