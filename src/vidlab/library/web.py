"""The library page beside a served model: `mount_library(app, "NAME.vlx")` (what `vidlab serve
--index` does).

Routes, under `/library`: the page (`/library/`), `GET /library/api/info`, `GET
/library/api/search?label=L` or `?like=VIDEO&start=S&end=E`, `GET /library/api/timeline?video=V`,
`POST /library/api/corrections` (JSON `{video, start, end, label, who}`), `GET
/library/media/VIDEO` (the file, with HTTP range requests so the player seeks without
downloading it) and `GET /library/thumb/VIDEO?t=S` (a JPEG of that moment). VIDEO is a path
inside the library; only indexed files that still resolve inside the library root are served.
Errors are the server's JSON shape (`{"error": {"status", "type", "message"}}`).
"""

from __future__ import annotations

import io
import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from vidlab.errors import LibraryError, VidlabError
from vidlab.library.index import LibraryIndex, open_index
from vidlab.serve.problems import HTTPProblem

STATIC = Path(__file__).with_name("static")
MAX_BODY = 4096
"""A correction is a few short fields: larger request bodies are refused (413)."""
THUMB_SIDE = 144
THUMB_CACHE = 512
MEDIA_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime",
               ".webm": "video/webm", ".mkv": "video/x-matroska", ".ogv": "video/ogg"}


def mount_library(app: FastAPI, index: str | Path | LibraryIndex, prefix: str = "/library"
                  ) -> LibraryIndex:
    """Add the library page and its API to `app`; returns the opened index."""
    lib = index if isinstance(index, LibraryIndex) else open_index(index)
    lib.vectors.index()  # load (or rebuild) the vector index now, not on the first search
    thumbs = ThumbnailCache(lib)
    router = APIRouter(prefix=prefix)

    @router.get("", include_in_schema=False)
    async def to_page() -> Response:
        return RedirectResponse(f"{prefix}/")

    @router.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "library.html", media_type="text/html")

    @router.get("/api/info")
    def info() -> dict[str, Any]:
        """The index: labels, videos, windows, hours, window settings."""
        from vidlab.library.export import index_stats

        stats = index_stats(lib)
        for private in ("index", "root"):
            stats.pop(private, None)
        stats["histogram"] = stats.pop("labels")
        return {"labels": lib.labels, **stats}

    @router.get("/api/search")
    def search(label: str | None = Query(None, max_length=200),
               like: str | None = Query(None, max_length=4096),
               start: float | None = Query(None, ge=0), end: float | None = Query(None, ge=0),
               top: int = Query(24, ge=1, le=200),
               exclude_self: bool = Query(True)) -> dict[str, Any]:
        """Moments of a label (`label`), or like a moment of an indexed video (`like`)."""
        from vidlab.library.search import like_window, search_label

        if (label is None) == (like is None):
            raise HTTPProblem(422, "invalid_request", "give exactly one of label or like")
        try:
            if label is not None:
                found = search_label(lib, label, top=top)
            else:
                if lib.resolve_media(like) is None:
                    raise HTTPProblem(404, "not_found", f"{like} is not an indexed video")
                found = like_window(lib, like, start or 0.0,
                                    end if end is not None else float("inf"), top, exclude_self)
        except LibraryError as exc:
            raise HTTPProblem(404 if "unknown label" in str(exc) else 422, "bad_search",
                              _public(exc, lib)) from exc
        return {"results": [_public_moment(r) for r in found]}

    @router.get("/api/timeline")
    def timeline(video: str = Query(..., max_length=4096)) -> dict[str, Any]:
        """A video's label segments (corrections applied) and its corrections."""
        from vidlab.library.search import video_timeline

        if lib.resolve_media(video) is None:
            raise HTTPProblem(404, "not_found", f"{video} is not an indexed video")
        return video_timeline(lib, video)

    @router.post("/api/corrections")
    async def correct(request: Request) -> Response:
        """Save a label correction: `{video, start, end, label, who}` → the stored record."""
        from vidlab.library.export import add_correction

        body = await _small_json(request)
        try:
            video = str(body["video"])
            start, end = float(body["start"]), float(body["end"])
            label, who = str(body["label"]), str(body["who"])
        except (KeyError, TypeError, ValueError):
            raise HTTPProblem(422, "invalid_request", "send JSON {video, start, end, label, "
                                                      "who}") from None
        if not np.isfinite([start, end]).all() or lib.resolve_media(video) is None:
            raise HTTPProblem(404, "not_found", f"{video} is not an indexed video")
        try:
            record = add_correction(lib, video, start, end, label, who)
        except LibraryError as exc:
            raise HTTPProblem(422, "bad_correction", _public(exc, lib)) from exc
        return JSONResponse(record, status_code=201)

    @router.get("/media/{video:path}")
    def media(video: str) -> FileResponse:
        """An indexed video file (range requests answered with 206)."""
        path = lib.resolve_media(video)
        if path is None:
            raise HTTPProblem(404, "not_found", "no such video in the library")
        return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix.lower(),
                                                             "application/octet-stream"))

    @router.get("/thumb/{video:path}")
    def thumb(video: str, t: float = Query(0.0, ge=0, le=1e7)) -> Response:
        """A JPEG of the indexed video at `t` seconds."""
        path = lib.resolve_media(video)
        if path is None:
            raise HTTPProblem(404, "not_found", "no such video in the library")
        try:
            data = thumbs.get(video, path, t)
        except VidlabError as exc:
            raise HTTPProblem(422, "undecodable_video", _public(exc, lib)) from exc
        return Response(data, media_type="image/jpeg",
                        headers={"Cache-Control": "max-age=3600"})

    app.include_router(router)
    if HTTPProblem not in app.exception_handlers:  # an app that is not `create_app`'s
        app.add_exception_handler(HTTPProblem, lambda _, exc: exc.response())
    app.mount(f"{prefix}/static", StaticFiles(directory=STATIC), name="library-static")
    app.state.library = lib
    return lib


async def _small_json(request: Request) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise HTTPProblem(413, "request_too_large", f"at most {MAX_BODY} bytes")
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY:
            raise HTTPProblem(413, "request_too_large", f"at most {MAX_BODY} bytes")
    try:
        body = json.loads(data or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HTTPProblem(400, "invalid_json", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise HTTPProblem(422, "invalid_request", "send a JSON object")
    return body


def _public(exc: Exception, lib: LibraryIndex) -> str:
    """An error message without the server's folders in it."""
    return str(exc).replace(f"{lib.root}/", "").replace(str(lib.path), lib.path.name)


def _public_moment(r: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in r.items() if k != "path"}


class ThumbnailCache:
    """JPEG thumbnails decoded on demand through `vidlab.data` (the one decoding path) and kept
    in a small LRU cache (a results page asks for the same moments again)."""

    def __init__(self, lib: LibraryIndex, size: int = THUMB_CACHE):
        self.lib, self.size = lib, size
        self.cache: OrderedDict[tuple[str, float], bytes] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, video: str, path: Path, t: float) -> bytes:
        key = (video, round(t, 1))
        with self.lock:
            if key in self.cache:
                self.cache.move_to_end(key)
                return self.cache[key]
        data = jpeg(frame_at(path, key[1]))
        with self.lock:
            self.cache[key] = data
            while len(self.cache) > self.size:
                self.cache.popitem(last=False)
        return data


class FrameAtSampler:
    """A sampler (in `vidlab.data.samplers`' sense) of the one frame shown at `seconds`."""

    num_views = 1

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __call__(self, num_frames: int, fps: float | None = None, *, rng: Any = None,
                 timestamps: np.ndarray | None = None) -> list[Any]:
        from vidlab.data.samplers import ClipPlan

        if timestamps is not None and len(timestamps):
            i = int(np.searchsorted(timestamps, self.seconds, side="right")) - 1
        else:
            i = int(self.seconds * (fps or 0))
        i = min(max(i, 0), num_frames - 1)
        return [ClipPlan(self.seconds, self.seconds, np.array([i], np.int64))]


def frame_at(path: Path, seconds: float) -> np.ndarray:
    """`uint8 H×W×3` frame of `path` at `seconds` (short side `THUMB_SIDE`)."""
    from vidlab.data.clips import decode_views
    from vidlab.data.transforms import Preprocess

    pre = Preprocess(num_frames=1, stride=1, short_side=THUMB_SIDE, crop_size=THUMB_SIDE)
    _, frames = decode_views(path, pre, FrameAtSampler(seconds))
    return frames[0][0]


def jpeg(frame: np.ndarray, quality: int = 80) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(frame).save(out, format="JPEG", quality=quality)
    return out.getvalue()
