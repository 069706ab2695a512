"""The vector index: exact below the limit, IVF above it, kept in step with the database."""

from __future__ import annotations

import numpy as np

from vidlab.library import vectors
from vidlab.library.store import LibraryDB


def unit(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, dim))
    x = centres[rng.integers(0, 20, n)] + 0.5 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def brute(x: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(x @ q), kind="stable")[:k]


def test_exact_index_answers_like_numpy_and_ivf_keeps_recall():
    x = unit(3000)
    queries = unit(20, seed=1)
    exact = vectors.make_index(x, np.arange(len(x)), exact=True)
    ivf = vectors.make_index(x, np.arange(len(x)), exact=False)
    recall = []
    for q in queries:
        truth = brute(x, q, 10)
        _, ids = vectors.search_index(exact, q, 10)
        assert set(ids[0].tolist()) == set(truth.tolist())
        _, ids = vectors.search_index(ivf, q, 10)
        recall.append(len(set(ids[0].tolist()) & set(truth.tolist())) / 10)
    assert np.mean(recall) >= 0.95


def fill(db: LibraryDB, name: str, emb: np.ndarray) -> None:
    n = len(emb)
    t = np.arange(n, dtype=float)
    db.put_video({"path": name, "sha256": name, "size": 1, "mtime_ns": 1, "duration": float(n),
                  "fps": 10.0, "width": 8, "height": 8},
                 {"start": t, "end": t + 1, "span_start": t, "span_end": t + 1,
                  "label": np.zeros(n, int), "prob": np.ones(n), "top": [[[0, 1.0]]] * n,
                  "embedding": emb})


def test_sync_adds_and_removes_and_rebuilds_when_the_file_disagrees(tmp_path, monkeypatch):
    monkeypatch.setattr(vectors, "EXACT_LIMIT", 450)  # IVF above 450 windows
    db = LibraryDB(tmp_path / "x.vlx", create=True)
    db.set_meta(dim=32)
    fill(db, "a.mp4", unit(400, seed=2))
    index = vectors.VectorIndex(db)
    assert index.sync()["exact"] is True
    fill(db, "b.mp4", unit(400, seed=3))  # 800 windows: crosses to IVF, rebuilt
    state = index.sync()
    assert state["exact"] is False and state["rebuilt"] and state["count"] == 800
    fill(db, "c.mp4", unit(100, seed=4))
    db.remove_video("a.mp4")
    state = index.sync()
    assert not state["rebuilt"] and state["count"] == db.window_count() == 500
    live = [w.id for v in db.videos().values() for w in db.windows_of(v["id"])]
    found, _ = index.search(db.embeddings([live[0]])[0], 600)
    assert sorted(found.tolist()) == sorted(live)  # IVF keeps every live id, no removed one
    assert db.removed_window_ids() == []

    (tmp_path / "x.vlx" / vectors.VECTORS_FILE).write_bytes(b"garbage")
    fresh = vectors.VectorIndex(db)
    found, scores = fresh.search(db.embeddings([live[5]])[0], 1)
    assert found.tolist() == [live[5]] and scores[0] > 0.999
