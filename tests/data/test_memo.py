"""`file_map`: a per-file measurement runs once per process, again when the file changes."""

from __future__ import annotations

from vidlab.data import memo
from vidlab.data.memo import file_map

calls: list[str] = []


def _measure(job: tuple[str, int]) -> dict[str, int]:
    path, scale = job
    calls.append(path)
    return {"bytes": len(open(path, "rb").read()) * scale}


def test_an_unchanged_file_is_measured_once_and_a_changed_one_again(tmp_path, monkeypatch):
    monkeypatch.setattr(memo, "RACY_S", 0.0)  # files written just now count as settled
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"x" * 10)
    b.write_bytes(b"y" * 20)
    calls.clear()
    jobs = [(str(a), 1), (str(b), 1), (str(a), 2)]  # other args: another measurement
    first = file_map(_measure, jobs, workers=1)
    assert first == [{"bytes": 10}, {"bytes": 20}, {"bytes": 20}] and len(calls) == 3
    first[0]["bytes"] = -1  # callers get copies: the kept result is not theirs to change
    assert file_map(_measure, jobs, workers=1) == [{"bytes": 10}, {"bytes": 20}, {"bytes": 20}]
    assert len(calls) == 3

    a.write_bytes(b"x" * 11)
    assert file_map(_measure, jobs, workers=1)[0] == {"bytes": 11}
    assert calls[3:] == [str(a), str(a)]


def test_a_file_changed_just_now_is_measured_every_time(tmp_path):
    fresh = tmp_path / "fresh.bin"
    fresh.write_bytes(b"z" * 5)  # same size, same clock tick: a change could go unseen
    calls.clear()
    file_map(_measure, [(str(fresh), 1)], workers=1)
    file_map(_measure, [(str(fresh), 1)], workers=1)
    missing = str(tmp_path / "gone.bin")
    assert file_map(lambda job: job[0], [(missing,)], workers=1) == [missing]
    assert len(calls) == 2


def _row(path: str) -> tuple[str, int | None]:
    calls.append(path)
    return path, (len(open(path, "rb").read()) or None)


def test_plain_path_jobs_and_results_left_out_of_the_memo(tmp_path, monkeypatch):
    monkeypatch.setattr(memo, "RACY_S", 0.0)
    full, empty = tmp_path / "full.bin", tmp_path / "empty.bin"
    full.write_bytes(b"f" * 3)
    empty.write_bytes(b"")
    calls.clear()
    jobs = [str(full), str(empty)]
    for _ in range(2):  # an empty file's None is not kept: it is looked at again
        rows = file_map(_row, jobs, workers=1, keep=lambda row: row[1] is not None)
        assert rows == [(str(full), 3), (str(empty), None)]
    assert calls == [str(full), str(empty), str(empty)]
