"""Stream a multipart upload to a temporary file, enforcing the size and pace limits as bytes
arrive.

Starlette's `UploadFile` would spool the whole body before the handler sees it; this parser
(python-multipart's streaming `MultipartParser`, fed from Starlette's `request.stream()`) writes
the `file` field chunk by chunk to a temp file in the server's upload directory and stops
writing the moment the limit is passed, so an oversized upload costs neither memory nor disk.
The rest of an oversized body is read and discarded (up to a cap) so that the client receives
the 413 answer instead of a reset connection.

Pace (uvicorn has no body read timeout): the body must keep arriving — no silence longer than
`body_timeout_s`, and on average at least `min_rate` bytes/s after a first `body_timeout_s` of
grace (Apache's mod_reqtimeout rule: the time allowed grows with the bytes received). A slower
upload is answered 408 and its connection closed. An upload is complete only when the closing
multipart boundary has arrived: a body that stops short (even with an honest Content-Length)
is a 400, never a prediction from part of a video.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from vidlab.serve.problems import HTTPProblem

FIELD = "file"
_OVERHEAD = 64 * 1024  # multipart boundaries and part headers around the file bytes
_DRAIN_FACTOR = 4  # read (and drop) at most this many times the limit of an oversized body


@dataclass
class Upload:
    """A saved upload: where it lies on the server and what the client called it."""

    path: Path
    filename: str
    size: int


def _too_large(max_bytes: int) -> HTTPProblem:
    return HTTPProblem(413, "upload_too_large",
                       f"upload is larger than the limit of {max_bytes / 2**20:.3g} MB "
                       "(--max-upload-mb)")


def safe_name(filename: str) -> str:
    """The client's file name without any directory part (never used as a server path)."""
    name = re.split(r"[\\/]", filename or "")[-1].strip()
    return name[:200] or "upload"


class _FileField:
    """Multipart callbacks that write the `file` field into an open temp file."""

    def __init__(self, fd: int, max_bytes: int):
        self.out = os.fdopen(fd, "wb")
        self.max_bytes = max_bytes
        self.size = 0
        self.too_large = False
        self.found = False
        self.complete = False
        self.filename = ""
        self._in_file = False
        self._disposition = b""
        self._field, self._value = b"", b""

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._part_begin, "on_header_field": self._header_field,
            "on_header_value": self._header_value, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._data,
            "on_part_end": self._part_end, "on_end": self._end,
        }

    def _end(self) -> None:
        self.complete = True  # the closing boundary `--BOUNDARY--` was parsed

    def _part_begin(self) -> None:
        self._in_file, self._disposition = False, b""
        self._field, self._value = b"", b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        if self._field.lower() == b"content-disposition":
            self._disposition = self._value
        self._field, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._disposition)
        if params.get(b"name") == FIELD.encode() and not self.found:
            self._in_file, self.found = True, True
            self.filename = safe_name(params.get(b"filename", b"").decode("utf-8", "replace"))

    def _data(self, data: bytes, start: int, end: int) -> None:
        if not self._in_file or self.too_large:
            return
        self.size += end - start
        if self.size > self.max_bytes:
            self.too_large = True
            self.out.truncate(0)
            return
        self.out.write(data[start:end])

    def _part_end(self) -> None:
        self._in_file = False


@dataclass
class Pace:
    """How fast a body must arrive: longest silence, and average rate after that much grace."""

    body_timeout_s: float
    min_rate: float  # bytes/s; 0 = no floor (defaults: `vidlab.serve.limits.Limits`)

    def wait_limit(self, started: float, received: int, now: float) -> float:
        """Seconds the next chunk may take before the upload is too slow (<= 0: already is)."""
        silence = self.body_timeout_s
        if self.min_rate > 0:
            rate_deadline = started + self.body_timeout_s + received / self.min_rate
            silence = min(silence, rate_deadline - now)
        return silence

    def too_slow(self, received: int, elapsed: float) -> HTTPProblem:
        return HTTPProblem(
            408, "request_timeout",
            f"the upload arrived too slowly ({received / 1024:.1f} KB in {elapsed:.1f} s): the "
            f"server needs a byte at least every {self.body_timeout_s:g} s and "
            f"{self.min_rate / 1024:g} KB/s on average after the first {self.body_timeout_s:g} s "
            "(--body-timeout-s, --min-upload-kb-s)", {"Connection": "close"})


async def paced_chunks(request: Request, pace: Pace) -> AsyncIterator[bytes]:
    """`request.stream()`, raising the 408 `HTTPProblem` as soon as the body falls behind."""
    stream = request.stream().__aiter__()
    started = time.monotonic()
    received = 0
    while True:
        now = time.monotonic()
        limit = pace.wait_limit(started, received, now)
        try:
            if limit <= 0:
                raise asyncio.TimeoutError
            chunk = await asyncio.wait_for(stream.__anext__(), limit)
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            raise pace.too_slow(received, time.monotonic() - started) from None
        received += len(chunk)
        yield chunk


async def save_upload(request: Request, dest_dir: Path, max_bytes: int, pace: Pace) -> Upload:
    """Save the multipart field `file` of `request` under `dest_dir`; raise `HTTPProblem`.

    The caller owns (and must delete) `Upload.path`; on any error the file is already removed.
    """
    mime, params = parse_options_header(request.headers.get("content-type", ""))
    if mime != b"multipart/form-data" or b"boundary" not in params:
        raise HTTPProblem(415, "unsupported_media",
                          f"send the video as multipart/form-data in a field named '{FIELD}'")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > _DRAIN_FACTOR * max_bytes + _OVERHEAD:
        raise _too_large(max_bytes)  # far too big to be worth reading at all
    fd, name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=dest_dir)
    path = Path(name)
    sink = _FileField(fd, max_bytes)
    saved = False
    try:
        parser = MultipartParser(params[b"boundary"], sink.callbacks())
        received = 0
        async for chunk in paced_chunks(request, pace):
            received += len(chunk)
            if sink.too_large and received > _DRAIN_FACTOR * max_bytes + _OVERHEAD:
                break
            parser.write(chunk)
        parser.finalize()
        sink.out.close()
        if sink.too_large:
            raise _too_large(max_bytes)
        if not sink.complete:
            raise HTTPProblem(400, "incomplete_upload",
                              f"the upload ended after {received} bytes, before the closing "
                              "multipart boundary: the file is incomplete")
        if not sink.found:
            raise HTTPProblem(422, "missing_file",
                              f"no multipart field named '{FIELD}' holding a video")
        saved = True
        return Upload(path, sink.filename or "upload", sink.size)
    except ClientDisconnect:
        raise HTTPProblem(400, "client_disconnected", "the upload was interrupted") from None
    except HTTPProblem:
        raise
    except Exception as exc:  # a malformed body: the multipart parser's own errors
        raise HTTPProblem(400, "bad_request", f"malformed multipart upload ({exc})") from exc
    finally:
        if not sink.out.closed:
            sink.out.close()
        if not saved:
            path.unlink(missing_ok=True)
