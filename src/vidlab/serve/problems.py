"""HTTP errors as JSON: one shape for every failure the server reports.

Body: `{"error": {"status": 413, "type": "upload_too_large", "message": "..."}}`. The message
says what was wrong and, where it helps, which limit or flag applies.
"""

from __future__ import annotations

from pathlib import Path

from starlette.responses import JSONResponse

from vidlab.errors import ConfigError, VideoDecodeError, VideoOpenError, VidlabError


class HTTPProblem(Exception):
    """An error answer: HTTP status, a short machine-readable type and a sentence for people."""

    def __init__(self, status: int, kind: str, message: str,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"status": self.status, "type": self.kind, "message": self.message}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def problem_for(exc: VidlabError, name: str) -> HTTPProblem:
    """Map a video error to its HTTP answer; `name` replaces any server path in the message."""
    from vidlab.serve.predict import VideoTooLongError

    text = str(exc)
    if exc.path:  # the temp file's path (or name, in FFmpeg's words) is no business of clients
        text = text.replace(exc.path, name).replace(Path(exc.path).name, name)
    if isinstance(exc, ConfigError):  # a query value this video cannot use
        return HTTPProblem(422, "invalid_request", text)
    if isinstance(exc, VideoTooLongError):
        return HTTPProblem(413, "video_too_long", text)
    if isinstance(exc, VideoOpenError):
        return HTTPProblem(415, "unsupported_media", f"{text} (upload a video file)")
    if isinstance(exc, VideoDecodeError):
        return HTTPProblem(422, "undecodable_video", text)
    return HTTPProblem(422, "bad_video", text)
