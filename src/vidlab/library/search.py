"""Searching a library: moments of a label, moments like a clip, a video's label timeline.

Every result is a moment `{"path", "start", "end", "score", "label"}` (seconds; `path` the
absolute file) plus `video` (its path inside the library) and, for `like`, `window` (the window
id). Human corrections win over the model: a window whose timeline span is centred inside a
corrected range takes the correction's label (the latest correction wins), with score 1.

Label segments bridge one odd window. A window whose clip straddles a cut shows the end of one
shot and the start of the next, and any model may call it something else entirely; one such
window (or one plain mistake) would split a segment in two. So `search_label` joins two runs of
the label that are separated by at most `bridge` windows (default 1, i.e. one stride of the
timeline, the index's resolution) of other labels, unless a human correction lies in between.
Nothing is hidden by it: the odd window keeps its own label, so a real moment shorter than a
window is still found when its label is searched; only the enclosing segment is reported
whole. The timeline (`video_timeline`) shows every window as the model labelled it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vidlab.errors import LibraryError
from vidlab.library.embed import mean_embedding
from vidlab.library.index import LibraryIndex
from vidlab.library.store import WindowRow

EPS = 1e-6
BRIDGE = 1
"""Windows of other labels that `search_label` bridges between two runs of the label."""


def corrected_labels(windows: list[WindowRow], corrections: list[dict[str, Any]],
                     labels: list[str]) -> list[tuple[str, float]]:
    """`(label, score)` of each window after the corrections of its video."""
    out = [(labels[w.label] if 0 <= w.label < len(labels) else str(w.label), float(w.prob))
           for w in windows]
    for c in corrections:  # in the order they were made: later ones win
        for i, w in enumerate(windows):
            centre = (w.span_start + w.span_end) / 2
            if c["start"] - EPS <= centre <= c["end"] + EPS:
                out[i] = (c["new"], 1.0)
    return out


def runs(windows: list[WindowRow], keep: list[bool], scores: list[float]
         ) -> list[tuple[float, float, float, int]]:
    """`(start, end, mean score, windows)` of each run of kept windows that touch on the
    timeline (one window's span ends where the next one's starts)."""
    found: list[tuple[float, float, float, int]] = []
    current: list[int] = []

    def close() -> None:
        if current:
            first, last = windows[current[0]], windows[current[-1]]
            found.append((first.span_start, last.span_end,
                          float(np.mean([scores[i] for i in current])), len(current)))
            current.clear()

    for i, w in enumerate(windows):
        if not keep[i]:
            close()
            continue
        if current:
            prev = windows[current[-1]]
            if prev.video_id != w.video_id or abs(prev.span_end - w.span_start) > 1e-3:
                close()
        current.append(i)
    close()
    return found


def bridged(found: list[tuple[float, float, float, int]], max_gap: float,
            blocked: list[tuple[float, float]] = ()) -> list[tuple[float, float, float, int]]:
    """Join consecutive runs of one video (`runs`' output, in time order) whose gap is at most
    `max_gap` seconds and overlaps no `blocked` range; the score is the mean over all their
    windows."""
    out: list[tuple[float, float, float, int]] = []
    for run in found:
        if out:
            start, end, score, count = out[-1]
            gap = run[0] - end
            if 0 < gap <= max_gap and not any(lo < run[0] and hi > end for lo, hi in blocked):
                total = count + run[3]
                out[-1] = (start, run[1], (score * count + run[2] * run[3]) / total, total)
                continue
        out.append(run)
    return out


def search_label(index: LibraryIndex, label: str, top: int | None = None,
                 min_prob: float = 0.0, bridge: int = BRIDGE) -> list[dict[str, Any]]:
    """Segments where `label` is the top-1 prediction (or a correction's label), adjacent
    windows merged and gaps of up to `bridge` windows of other labels bridged (0: none; see the
    module docstring); best score first, at most `top` (None or 0: all)."""
    if bridge < 0:
        raise LibraryError(f"bridge must be 0 or more windows, not {bridge}", index.path)
    # One window's span is one stride wide; half a stride more absorbs frame-rounded spans.
    max_gap = (bridge + 0.5) * float(index.db.meta("stride") or 0.0) if bridge else 0.0
    wanted = index.label_id(label)
    labels = index.labels
    by_video: dict[int, list[WindowRow]] = {}
    for w in index.db.windows_labelled(wanted):
        by_video.setdefault(w.video_id, []).append(w)
    corrections: dict[int, list[dict[str, Any]]] = {}
    for c in index.db.corrections():
        video = index.db.video(c["path"])
        if video is not None:
            corrections.setdefault(video["id"], []).append(c)
    results = []
    for video_id in sorted(set(by_video) | set(corrections)):
        video = index.db.video_by_id(video_id)
        if video is None:
            continue
        blocked: list[tuple[float, float]] = []
        if video_id in corrections:
            windows = index.db.windows_of(video_id)
            named = corrected_labels(windows, corrections[video_id], labels)
            keep = [n == label and s >= min_prob for n, s in named]
            scores = [s for _, s in named]
            blocked = [(c["start"], c["end"]) for c in corrections[video_id] if c["new"] != label]
        else:
            windows = by_video[video_id]
            keep = [w.prob >= min_prob for w in windows]
            scores = [w.prob for w in windows]
        for start, end, score, _ in bridged(runs(windows, keep, scores), max_gap, blocked):
            results.append(_moment(index, video, start, end, score, label))
    results.sort(key=lambda r: (-r["score"], r["video"], r["start"]))
    return results[:top] if top else results


def search_like(index: LibraryIndex, query: np.ndarray, top: int = 10,
                exclude: tuple[int, float | None, float | None] | None = None,
                distinct: bool = True) -> list[dict[str, Any]]:
    """The windows nearest to `query` (a normalized embedding), best first.

    `exclude = (video_id, start, end)` leaves out that video's windows overlapping the range
    (the query's own moments; None bounds: the whole video). With `distinct`, a window closer
    than one window length to a better hit of the same video is skipped, so ten results are ten
    moments, not one moment ten times.
    """
    total = index.db.window_count()
    if total == 0 or top < 1:
        return []
    window = float(index.db.meta("window") or 0.0)
    fetch = min(total, top * 8 + 32)
    while True:
        ids, scores = index.vectors.search(query, fetch)
        rows = index.db.windows_by_id([int(i) for i in ids])
        chosen: list[tuple[WindowRow, float]] = []
        for wid, score in zip(ids, scores, strict=True):
            w = rows.get(int(wid))
            if w is None or _excluded(w, exclude):
                continue
            centre = (w.start + w.end) / 2
            if distinct and any(k.video_id == w.video_id and
                                abs((k.start + k.end) / 2 - centre) < max(window, EPS)
                                for k, _ in chosen):
                continue
            chosen.append((w, float(score)))
            if len(chosen) == top:
                break
        if len(chosen) == top or fetch >= total:
            break
        fetch = min(total, fetch * 4)
    return [_window_moment(index, w, score) for w, score in chosen]


def _excluded(w: WindowRow, exclude: tuple[int, float | None, float | None] | None) -> bool:
    if exclude is None or w.video_id != exclude[0]:
        return False
    lo = -np.inf if exclude[1] is None else exclude[1]
    hi = np.inf if exclude[2] is None else exclude[2]
    return w.end > lo and w.start < hi


def like_query(index: LibraryIndex, clip: str | Path, start: float | None = None,
               end: float | None = None, bundle: str | Path | None = None
               ) -> tuple[np.ndarray, int | None]:
    """The query embedding of `[start, end]` of `clip` and, when the clip is an indexed video,
    its id. An indexed clip (same path, or same content anywhere in the library) is read from
    the index; any other file is run through the index's model (`bundle`, default the one the
    index was built with)."""
    video = _indexed_video(index, clip)
    if video is not None:
        windows = index.db.windows_of(video["id"])
        emb = index.db.embeddings([w.id for w in windows])
        return mean_embedding(np.array([w.start for w in windows]),
                              np.array([w.end for w in windows]), emb, start, end), video["id"]
    from vidlab.library.embed import WindowModel

    model_path = bundle or index.db.meta("bundle")
    if not model_path or not Path(model_path).exists():
        raise LibraryError(f"{clip} is not in the library and the index's model "
                           f"({model_path}) is not there to embed it: pass --bundle", index.path)
    model = WindowModel(model_path)
    if model.version != index.db.meta("model"):
        raise LibraryError(f"{model_path} is {model.version}, but the index was built with "
                           f"{index.db.meta('model')}: embeddings would not compare", index.path)
    vec = model.embed_range(clip, float(index.db.meta("window")), float(index.db.meta("stride")),
                            start, end)
    return vec, None


def _indexed_video(index: LibraryIndex, clip: str | Path) -> dict[str, Any] | None:
    rel = index.relative(clip)
    if rel is not None and (video := index.db.video(rel)) is not None:
        return video
    if not Path(clip).is_file():
        raise LibraryError("no such file", clip)
    from vidlab.library.embed import file_facts

    sha = file_facts(clip)["sha256"]
    row = index.db.conn.execute("SELECT path FROM videos WHERE sha256 = ?", (sha,)).fetchone()
    return None if row is None else index.db.video(row[0])


def search_like_clip(index: LibraryIndex, clip: str | Path, start: float | None = None,
                     end: float | None = None, top: int = 10, exclude_self: bool = False,
                     bundle: str | Path | None = None) -> list[dict[str, Any]]:
    """`index search --like CLIP [--start S --end E] [--exclude-self]`."""
    if start is not None and end is not None and end <= start:
        raise LibraryError(f"--end {end} must be after --start {start}", clip)
    query, video_id = like_query(index, clip, start, end, bundle)
    exclude = (video_id, start, end) if exclude_self and video_id is not None else None
    return search_like(index, query, top, exclude)


def like_window(index: LibraryIndex, rel: str, start: float, end: float, top: int = 10,
                exclude_self: bool = True) -> list[dict[str, Any]]:
    """"More like this" from a moment of an indexed video (the page's button)."""
    video = index.db.video(rel)
    if video is None:
        raise LibraryError("is not an indexed video", rel)
    query, video_id = like_query(index, index.absolute(rel), start, end)
    return search_like(index, query, top, (video_id, start, end) if exclude_self else None)


def video_timeline(index: LibraryIndex, rel: str) -> dict[str, Any]:
    """A video's label timeline: segments of one label (corrections applied), and the
    corrections made on it."""
    video = index.db.video(rel)
    if video is None:
        raise LibraryError("is not an indexed video", rel)
    windows = index.db.windows_of(video["id"])
    corrections = index.db.corrections(rel)
    named = corrected_labels(windows, corrections, index.labels)
    segments = []
    for name in dict.fromkeys(n for n, _ in named):
        keep = [n == name for n, _ in named]
        for start, end, score, count in runs(windows, keep, [s for _, s in named]):
            segments.append({"start": start, "end": end, "label": name,
                             "score": round(score, 4), "windows": count})
    segments.sort(key=lambda s: s["start"])
    return {"video": rel, "duration": video["duration"], "segments": segments,
            "corrections": corrections}


def _moment(index: LibraryIndex, video: dict[str, Any], start: float, end: float,
            score: float, label: str) -> dict[str, Any]:
    return {"path": str(index.absolute(video["path"])), "start": round(start, 3),
            "end": round(end, 3), "score": round(score, 4), "label": label,
            "video": video["path"]}


def _window_moment(index: LibraryIndex, w: WindowRow, score: float) -> dict[str, Any]:
    video = index.db.video_by_id(w.video_id) or {}
    labels = index.labels
    label, _ = corrected_labels([w], index.db.corrections(video.get("path")), labels)[0]
    out = _moment(index, video, w.start, w.end, score, label)
    out["window"] = w.id
    return out
