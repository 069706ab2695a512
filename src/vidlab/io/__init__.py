"""Video I/O: probe files, read frames exactly and fast, write and transcode, measure quality.

Frame `i` always means the `i`-th frame of a full sequential decode (presentation order).
"""

from vidlab.io.probe import VideoBytes, VideoInfo, probe
from vidlab.io.quality import QualityMismatchError, QualityResult, psnr, quality, ssim
from vidlab.io.reader import VideoReader
from vidlab.io.transcode import TranscodeResult, transcode
from vidlab.io.writer import VideoWriter, make_test_video, write_video

__all__ = [
    "QualityMismatchError",
    "QualityResult",
    "TranscodeResult",
    "VideoBytes",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "make_test_video",
    "probe",
    "psnr",
    "quality",
    "ssim",
    "transcode",
    "write_video",
]
