"""Carry the audio of a source file into a file being written, interleaved with its video.

Packets are copied when the output container can hold the codec, and re-encoded (AAC, or Opus
for WebM) when it cannot; they are muxed up to the time of each video packet, so memory stays
bounded however long the file is.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import av

log = logging.getLogger(__name__)

_COPYABLE = {
    "mp4": {"aac", "mp3", "alac", "opus", "flac", "ac3", "eac3"},
    "mov": {"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s16be"},
    "webm": {"opus", "vorbis"},
    "avi": {"mp3", "ac3", "pcm_s16le"},
}


def _format_key(output: Any) -> str:
    name = output.format.name
    for key in ("webm", "mp4", "mov", "avi"):
        if key in name.split(","):
            return key
    return "matroska" if "matroska" in name else name


class AudioPassthrough:
    """The first audio stream of `source`, fed into `output` as its video advances."""

    def __init__(self, source: str | Path, output: Any):
        self._input = av.open(str(source))
        self._src = self._input.streams.audio[0] if self._input.streams.audio else None
        self._output = output
        self._packets = iter(())
        self._pending: av.Packet | None = None
        self._encoder: Any = None
        if self._src is None:
            return
        fmt = _format_key(output)
        allowed = _COPYABLE.get(fmt)
        if allowed is None or self._src.codec_context.name in allowed:
            self._dst = output.add_stream_from_template(self._src)
        else:
            codec = "libopus" if fmt == "webm" else "aac"
            rate = 48000 if codec == "libopus" else self._src.codec_context.sample_rate or 48000
            self._dst = output.add_stream(codec, rate=rate)
            self._dst.codec_context.layout = self._src.codec_context.layout.name or "stereo"
            self._encoder = self._dst
            log.info("re-encoding %s audio to %s for %s", self._src.codec_context.name, codec, fmt)
        self._packets = self._input.demux(self._src)

    def _next(self) -> av.Packet | None:
        if self._pending is not None:
            packet, self._pending = self._pending, None
            return packet
        for packet in self._packets:
            if packet.size:
                return packet
        return None

    def _emit(self, packet: av.Packet) -> None:
        if self._encoder is None:
            packet.stream = self._dst
            self._output.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None  # let the encoder's resampler time the samples
            for out in self._encoder.encode(frame):
                self._output.mux(out)

    def mux_until(self, seconds: float) -> None:
        """Mux the source's audio packets that start before `seconds`."""
        if self._src is None:
            return
        while (packet := self._next()) is not None:
            if packet.pts is not None and float(packet.pts * packet.time_base) > seconds:
                self._pending = packet
                return
            self._emit(packet)

    def finish(self) -> None:
        """Mux the rest of the audio and flush the audio encoder."""
        if self._src is None:
            return
        self.mux_until(float("inf"))
        if self._encoder is not None:
            for out in self._encoder.encode(None):
                self._output.mux(out)
        self.close()

    def close(self) -> None:
        self._input.close()
