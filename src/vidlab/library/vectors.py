"""Nearest windows by embedding: a FAISS index over the window embeddings of `library.sqlite`.

FAISS was chosen by measurement against LanceDB, usearch, hnswlib, FAISS HNSW and brute-force
NumPy (`benchmarks/index.py --candidates`, figures in docs/library.md): an inverted-file index
(IVF-Flat) built and updated in seconds to minutes where graph indexes (HNSW) took minutes at a million
windows, answered in milliseconds, supports removing vectors (a deleted or changed video), and
needs nothing but NumPy; sqlite-vec could not even load (Python's `sqlite3` here is built
without extension loading) and LanceDB brought pyarrow and a second storage engine for slower
answers.

Up to `EXACT_LIMIT` windows the index is exact (`IndexFlatIP`: every vector compared, the same
answers as NumPy); past it, IVF-Flat with `nlist ≈ √N` lists of which `nprobe` are searched
(recall@10 is measured by the benchmark). Vectors are L2-normalized, so the inner product is the
cosine similarity. The index file (`vectors.faiss`) is a cache of the embeddings kept in SQLite:
`sync` brings it up to date (adding new windows, removing the ones a trigger logged as deleted)
and rebuilds it whenever it does not match the database.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import numpy as np

from vidlab.library.store import LibraryDB

log = logging.getLogger(__name__)

VECTORS_FILE = "vectors.faiss"
EXACT_LIMIT = 50_000
"""Up to this many windows the search is exact (a flat scan takes a few ms here)."""
NPROBE = 32
RETRAIN_GROWTH = 4.0
"""An IVF index is retrained once the library has grown this many times past its training."""


def _faiss():
    try:
        import faiss
    except ImportError as exc:  # an optional extra
        from vidlab.errors import LibraryError

        raise LibraryError("the library index needs FAISS: pip install 'vidlab[library]' "
                           "(faiss-cpu)") from exc
    return faiss


def ivf_lists(n: int) -> int:
    """About √N inverted lists (1000 at a million windows), each trained on 40 vectors: k-means
    stays a few CPU-minutes on 2 cores at 10⁶ windows (4·√N lists would cost 16× more), and a
    query still scans only `nprobe`/√N of the vectors."""
    return int(max(1, min(65536, np.sqrt(max(n, 1)), n // 40)))


def make_index(vectors: np.ndarray, ids: np.ndarray, exact: bool | None = None,
               nprobe: int = NPROBE, seed: int = 0) -> Any:
    """A FAISS index of `vectors` (N×D float32, normalized) under `ids` (int64): exact when
    `exact` (default: N ≤ EXACT_LIMIT), else IVF-Flat trained on a sample of them."""
    faiss = _faiss()
    n, dim = vectors.shape
    exact = n <= EXACT_LIMIT if exact is None else exact
    if exact:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    else:
        nlist = ivf_lists(n)
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        sample = vectors[np.sort(rng.choice(n, min(n, 40 * nlist), replace=False))]
        index.train(np.ascontiguousarray(sample, np.float32))
        index.nprobe = min(nprobe, nlist)
    index.add_with_ids(np.ascontiguousarray(vectors, np.float32), np.asarray(ids, np.int64))
    return index


def search_index(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """`(scores Q×k, ids Q×k)`; missing neighbours have id -1.

    One query runs on one thread: waking OpenMP threads for a millisecond of work cost more
    than it saved here (6× slower at 20 k windows on a busy 2-core machine).
    """
    faiss = _faiss()
    q = np.ascontiguousarray(np.atleast_2d(queries), np.float32)
    threads = faiss.omp_get_max_threads()
    if len(q) == 1:
        faiss.omp_set_num_threads(1)
    try:
        return index.search(q, int(max(1, min(k, max(index.ntotal, 1)))))
    finally:
        faiss.omp_set_num_threads(threads)


class VectorIndex:
    """The FAISS index of one library, loaded lazily and reloaded when its file changes (a
    build ran while a server was reading)."""

    def __init__(self, db: LibraryDB):
        self.db = db
        self.path = db.dir / VECTORS_FILE
        self._index: Any = None
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()

    # --- keeping the file in step with the database ---------------------------------------

    def sync(self) -> dict[str, Any]:
        """Make `vectors.faiss` match the database: add new windows, drop removed ones, or
        rebuild when it is missing, inconsistent, or an IVF grew past its training."""
        state = self.db.meta("vectors") or {}
        index = self._read() if self.path.is_file() else None
        count = self.db.window_count()
        removed = self.db.removed_window_ids()
        exact_now = count <= EXACT_LIMIT
        stale = (index is None or index.ntotal != state.get("count")
                 or state.get("max_id", -1) > self.db.max_window_id()
                 or bool(state.get("exact")) != exact_now
                 or (not exact_now and count > RETRAIN_GROWTH * state.get("trained", 0)))
        if stale:
            index = self._rebuild(count)
            trained = count
        else:
            if removed:
                index.remove_ids(np.asarray(removed, np.int64))
            for ids, vectors in self.db.iter_embeddings(after_id=int(state["max_id"])):
                index.add_with_ids(vectors, ids)
            trained = state.get("trained", count)
        if index.ntotal != count:  # belt and braces: never keep an index that disagrees
            index, trained = self._rebuild(count), count
        self._write(index)
        self.db.clear_removed(removed)
        new_state = {"count": int(index.ntotal), "max_id": self.db.max_window_id(),
                     "exact": exact_now, "trained": int(trained), "rebuilt": stale}
        self.db.set_meta(vectors=new_state)
        with self._lock:
            self._index, self._stamp = index, self._file_stamp()
        return new_state

    def _rebuild(self, count: int) -> Any:
        if count == 0:
            dim = int(self.db.meta("dim") or 1)
            return _faiss().IndexIDMap2(_faiss().IndexFlatIP(dim))
        parts = list(self.db.iter_embeddings())
        ids = np.concatenate([p[0] for p in parts])
        vectors = np.concatenate([p[1] for p in parts])
        log.info("building the vector index over %d windows", len(ids))
        return make_index(vectors, ids, exact=count <= EXACT_LIMIT)

    def _read(self) -> Any:
        try:
            return _faiss().read_index(str(self.path))
        except RuntimeError as exc:
            log.warning("%s: unreadable (%s); rebuilding it", self.path, exc)
            return None

    def _write(self, index: Any) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        _faiss().write_index(index, str(tmp))
        os.replace(tmp, self.path)

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size

    # --- searching ------------------------------------------------------------------------

    def index(self) -> Any:
        """The loaded index (re-read if the file changed since, synced if it is missing)."""
        with self._lock:
            stamp = self._file_stamp()
            if self._index is not None and stamp == self._stamp:
                return self._index
        if stamp is None:
            self.sync()
            return self._index
        index = self._read()
        if index is None or index.ntotal != self.db.window_count():
            self.sync()
            return self._index
        with self._lock:
            self._index, self._stamp = index, stamp
        return index

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """`(window ids, cosine scores)` of the `k` nearest windows, best first."""
        scores, ids = search_index(self.index(), query, k)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]
