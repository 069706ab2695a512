"""Sample grids and clip files: MP4 through `vidlab.io.write_video`, GIF through Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vidlab.errors import OutputExistsError, VideoWriteError

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm", ".avi")


def make_grid(clips: np.ndarray, cols: int | None = None, scale: int = 2, pad: int = 2
              ) -> np.ndarray:
    """Tile uint8 `N×T×H×W×3` clips into one `T×H'×W'×3` clip (row-major, black gutters).

    Tiles are enlarged `scale`× (nearest neighbour) so 32-pixel samples stay visible.
    """
    n, t, h, w, _ = clips.shape
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    th, tw = h * scale, w * scale
    grid = np.zeros((t, pad + rows * (th + pad), pad + cols * (tw + pad), 3), np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        tile = clips[i].repeat(scale, axis=1).repeat(scale, axis=2)
        y, x = pad + r * (th + pad), pad + c * (tw + pad)
        grid[:, y:y + th, x:x + tw] = tile
    return grid


def write_clip(path: str | Path, frames: np.ndarray, fps: float, overwrite: bool = False) -> Path:
    """Write uint8 `T×H×W×3` frames as a GIF (by suffix) or as an H.264 video."""
    p = Path(path)
    if p.suffix.lower() == ".gif":
        return write_gif(p, frames, fps, overwrite=overwrite)
    if p.suffix.lower() not in VIDEO_SUFFIXES:
        raise VideoWriteError(f"unsupported output type {p.suffix!r} (use .mp4 or .gif)", p)
    from vidlab.io import write_video

    return write_video(p, frames, fps=fps, codec="h264", overwrite=overwrite)


def write_gif(path: str | Path, frames: np.ndarray, fps: float, overwrite: bool = False) -> Path:
    """An endlessly looping GIF, written to a temporary sibling and renamed into place."""
    from PIL import Image

    p = Path(path)
    if p.exists() and not overwrite:
        raise OutputExistsError(path=p)
    p.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(f) for f in frames]
    tmp = p.with_name(f".{p.name}.tmp")
    try:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=max(20, round(1000 / fps)), loop=0, optimize=False)
        tmp.replace(p)
    except OSError as exc:
        raise VideoWriteError(f"cannot write GIF ({exc})", p) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return p
