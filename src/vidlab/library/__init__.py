"""A searchable video library: index a collection with a bundle, search it, fix its labels.

- `vidlab.library.build_index(folder_or_manifest, bundle, "NAME.vlx")` — every video through
  the bundle's model in `predict`'s sliding windows; per window the top-k labels and the
  `forward_features` embedding, in SQLite (metadata) and FAISS (vectors); incremental;
- `open_index("NAME.vlx")` → `search_label`, `search_like_clip`, `video_timeline`;
- `index_stats`, `export_segments`, `add_correction`, `export_corrections`;
- `mount_library(app, "NAME.vlx")` — the interactive page beside a served model.

Names are imported lazily so `import vidlab.library` stays cheap (no FAISS, no torch).
"""

from __future__ import annotations

from vidlab.lazy import lazy_getattr

_LAZY = {
    "build_index": "vidlab.library.build",
    "BuildReport": "vidlab.library.build",
    "IndexSettings": "vidlab.library.embed",
    "index_file": "vidlab.library.embed",
    "WindowModel": "vidlab.library.embed",
    "LibraryIndex": "vidlab.library.index",
    "open_index": "vidlab.library.index",
    "search_label": "vidlab.library.search",
    "search_like": "vidlab.library.search",
    "search_like_clip": "vidlab.library.search",
    "video_timeline": "vidlab.library.search",
    "index_stats": "vidlab.library.export",
    "export_segments": "vidlab.library.export",
    "add_correction": "vidlab.library.export",
    "export_corrections": "vidlab.library.export",
    "mount_library": "vidlab.library.web",
}

__all__ = sorted(_LAZY)

__getattr__ = lazy_getattr(__name__, _LAZY)
