"""Video I/O: probe files, read frames exactly and fast, write and transcode, measure quality.

Frame `i` always means the `i`-th frame of a full sequential decode (presentation order).
"""

from vidlab.io.probe import VideoInfo, probe
from vidlab.io.reader import VideoReader
from vidlab.io.writer import VideoWriter, make_test_video, write_video

__all__ = [
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "make_test_video",
    "probe",
    "write_video",
]
