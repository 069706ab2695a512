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

from vidlab.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    build=("build_index", "BuildReport"),
    embed=("IndexSettings", "index_file", "WindowModel"),
    index=("LibraryIndex", "open_index"),
    search=("search_label", "search_like", "search_like_clip", "video_timeline"),
    export=("index_stats", "export_segments", "add_correction", "export_corrections"),
    web=("mount_library",),
)
