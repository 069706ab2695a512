"""Re-encode the files of a dataset, one file per job, spread by the engine (local or Ray).

Used by `vidlab transcode MANIFEST OUT_DIR` (a manifest of files) and by `vidlab data shard
--transcode` (which packs the re-encoded files). Every output is written atomically and an
output that already exists is kept, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vidlab.data.manifest import META_KEYS, load_entries, probe_entry, write_manifest
from vidlab.data.parallel import Engine, parallel_map
from vidlab.errors import OutputExistsError


@dataclass(frozen=True)
class TranscodeSpec:
    """What every file becomes: `codec`, `crf`, `preset`, short side `size`, keyframe
    interval `gop`, constant `fps`; one encoder thread, so the bytes are the same across runs
    and worker counts (not guaranteed across engines: a Ray worker on one AMD machine wrote a
    different, equally valid encode, 38.6 dB from the local one; cause not found)."""

    codec: str = "h264"
    crf: int | None = None
    preset: str | None = None
    size: int | None = None
    gop: int | None = None
    fps: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def transcode_file(job: tuple[str, str, TranscodeSpec]) -> dict[str, Any]:
    """Re-encode one file (`src`, `dst`, spec): the output's probed metadata, or the failure.

    An existing `dst` is kept (a previous run finished it: outputs are written atomically).
    """
    from vidlab.io import transcode

    src, dst, spec = job
    try:
        if not Path(dst).is_file():
            Path(dst).parent.mkdir(parents=True, exist_ok=True)
            transcode(src, dst, codec=spec.codec, crf=spec.crf, preset=spec.preset,
                      size=spec.size, fps=spec.fps, gop=spec.gop, threads=1)
        return {"src": src, "dst": dst, "meta": probe_entry(dst)}
    except Exception as exc:  # a bad file is a row of the report
        return {"src": src, "dst": dst, "error": f"{type(exc).__name__}: {exc}"}


def _transcode_lost(job: tuple[str, str, TranscodeSpec], exc: BaseException) -> dict[str, Any]:
    return {"src": job[0], "dst": job[1], "error": f"the worker failed ({exc})"}


def transcode_many(jobs: list[tuple[str, str]], spec: TranscodeSpec,
                   workers: int | None = None, engine: Engine | str | None = None,
                   progress: bool = False) -> list[dict[str, Any]]:
    """`transcode_file` for every `(src, dst)`, spread by `engine`, in job order."""
    return parallel_map(transcode_file, [(s, d, spec) for s, d in jobs], workers, progress,
                        desc="transcoding", chunksize=1, engine=engine, on_error=_transcode_lost)


def output_names(paths: list[str], suffix: str = ".mp4") -> list[str]:
    """Each path relative to the files' common folder, with `suffix`: the layout of the
    outputs mirrors the inputs' (a folder-per-class tree stays one)."""
    if not paths:
        return []
    common = Path(os.path.commonpath([str(Path(p).parent) for p in paths]))
    return [str(Path(p).relative_to(common).with_suffix(suffix)) for p in paths]


def transcode_manifest(source: str | Path, out_dir: str | Path, spec: TranscodeSpec,
                       workers: int | None = None, engine: Engine | str | None = None,
                       overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Re-encode every file of a manifest (or folder) into `out_dir`, the same layout, and
    write `out_dir/manifest.jsonl` (labels, splits and groups kept, metadata of the outputs)
    and `out_dir/transcode_report.json` (failures are rows there, never fatal).

    Returns `{"manifest", "files", "transcoded", "failures", "input_bytes", "output_bytes"}`.
    """
    out = Path(out_dir)
    manifest = out / "manifest.jsonl"
    if manifest.exists() and not overwrite:
        raise OutputExistsError(path=manifest)
    listed = load_entries(source, workers=workers, engine=engine, keep_failures=True)
    failures = [{"path": e["path"], "label": e["label"], "error": e["error"]}
                for e in listed if e.get("error")]
    names = dict(zip((e["path"] for e in listed), output_names([e["path"] for e in listed]),
                     strict=True))  # from every listed file: a rerun names outputs the same
    entries = [e for e in listed if not e.get("error")]
    jobs = [(e["path"], str(out / names[e["path"]])) for e in entries]
    results = transcode_many(jobs, spec, workers, engine, progress)
    kept = []
    for entry, r in zip(entries, results, strict=True):
        if "error" in r:
            failures.append({"path": entry["path"], "label": entry["label"], "error": r["error"]})
            continue
        row = {k: v for k, v in entry.items() if k not in META_KEYS and k != "error"}
        kept.append({**row, "path": r["dst"], "source": entry["path"], **r["meta"]})
    write_manifest(kept, manifest, overwrite=True)
    in_bytes = sum(Path(e["path"]).stat().st_size for e in entries if Path(e["path"]).is_file())
    out_bytes = sum(Path(r["dst"]).stat().st_size for r in results if "error" not in r)
    summary = {"manifest": str(manifest), "files": len(listed), "transcoded": len(kept),
               "failures": failures, "input_bytes": in_bytes, "output_bytes": out_bytes,
               "settings": spec.to_dict()}
    (out / "transcode_report.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
