"""Monitoring: a log that matches the training data stays ok; drift of any kind raises an alert."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from tests.serve.helpers import COLOURS, feature_sample

from vidlab.serve.log import PredictionLog, read_log
from vidlab.serve.monitor import Thresholds, monitor_report
from vidlab.serve.predict import model_version


def fill_log(db, bundle, n=400, seed=2, shift=0.0, labels=None, confidence=(0.9, 0.05),
             version=None, start=None, status=200):
    """Append `n` predictions whose inputs follow the training distribution (moved by `shift`)."""
    from vidlab.bundle import load_bundle

    version = version or model_version(load_bundle(bundle))
    rng = np.random.default_rng(seed)
    feats = feature_sample(n, seed, shift)
    names = labels or list(COLOURS)
    start = time.time() - 3600 if start is None else start
    log = PredictionLog(db, retention_days=None)
    log.append_many([{"ts": start + i, "model_version": version, "status": status,
                      "latency_ms": float(rng.gamma(4, 10)), "top_label": names[i % len(names)],
                      "confidence": float(np.clip(rng.normal(*confidence), 0, 1)),
                      **{k: float(v[i]) for k, v in feats.items()}} for i in range(n)])
    log.close()


def test_matching_traffic_stays_ok(colour_bundle, tmp_path):
    fill_log(tmp_path / "log.db", colour_bundle)
    report = monitor_report(tmp_path / "log.db", colour_bundle)
    assert report["status"] == "ok", report["reasons"]
    assert report["traffic"]["predictions"] == 400 and report["traffic"]["error_rate"] == 0
    assert all(d["psi"] < 0.1 for d in report["input_drift"].values())
    assert set(report["input_drift"]) == {"width", "height", "fps", "duration", "brightness",
                                          "contrast", "motion"}
    assert report["labels"]["psi"] < 0.01
    lat = report["latency_ms"]
    assert lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]


def test_brighter_inputs_raise_an_input_drift_alert(colour_bundle, tmp_path):
    fill_log(tmp_path / "log.db", colour_bundle, shift=40)
    report = monitor_report(tmp_path / "log.db", colour_bundle)
    assert report["status"] == "alert"
    assert [r for r in report["reasons"] if "brightness" in r]
    assert not [r for r in report["reasons"] if "contrast" in r]
    assert report["input_drift"]["brightness"]["psi"] > 1


def test_label_and_confidence_drift_raise_alerts(colour_bundle, tmp_path):
    db = tmp_path / "log.db"
    fill_log(db, colour_bundle, n=200, seed=3)
    fill_log(db, colour_bundle, n=200, seed=4, labels=["red"], confidence=(0.55, 0.1),
             start=time.time() - 1000)
    reasons = " | ".join(monitor_report(db, colour_bundle)["reasons"])
    assert "predicted-label distribution" in reasons and "confidence fell" in reasons


def test_errors_latency_and_small_samples(colour_bundle, tmp_path):
    db = tmp_path / "log.db"
    fill_log(db, colour_bundle, n=20)
    fill_log(db, colour_bundle, n=5, status=422, seed=5)
    report = monitor_report(db, colour_bundle, thresholds=Thresholds(p99_ms=1.0))
    assert report["traffic"]["errors"] == 5 and report["traffic"]["by_status"]["422"] == 5
    reasons = " | ".join(report["reasons"])
    assert "error rate 20.0%" in reasons and "latency p99" in reasons
    assert "drift checks not judged" in " ".join(report["notes"])


def test_other_model_versions_are_left_out_unless_asked(colour_bundle, tmp_path):
    db = tmp_path / "log.db"
    fill_log(db, colour_bundle, n=60)
    fill_log(db, colour_bundle, n=30, version="old@123", shift=60)
    report = monitor_report(db, colour_bundle)
    assert report["traffic"]["requests"] == 60 and report["status"] == "ok"
    assert report["versions_in_log"]["old@123"] == 30
    assert monitor_report(db, colour_bundle, all_versions=True)["status"] == "alert"


def test_retention_deletes_old_rows(tmp_path):
    log = PredictionLog(tmp_path / "log.db", retention_days=None)
    log.append({"ts": time.time() - 10 * 86400, "status": 200})
    log.append({"status": 200})
    log.close()
    assert len(read_log(tmp_path / "log.db")) == 2
    PredictionLog(tmp_path / "log.db", retention_days=7).close()  # prunes on open
    assert len(read_log(tmp_path / "log.db")) == 1


def test_monitor_cli_reports_json_and_writes_a_plot(colour_bundle, tmp_path, capsys):
    from vidlab.cli import main

    fill_log(tmp_path / "log.db", colour_bundle, shift=40)
    with pytest.raises(SystemExit) as exit_info:
        main(["monitor", str(tmp_path / "log.db"), "--bundle", str(colour_bundle), "--json",
              "--plot", str(tmp_path / "m.png"), "--fail-on-alert"])
    assert exit_info.value.code == 2
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "alert" and report["plot"] == str(tmp_path / "m.png")
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SystemExit) as exit_info:  # an existing plot is the user's until --overwrite
        main(["monitor", str(tmp_path / "log.db"), "--bundle", str(colour_bundle),
              "--plot", str(tmp_path / "m.png")])
    assert exit_info.value.code == 1 and "OutputExistsError" in capsys.readouterr().err
    main(["monitor", str(tmp_path / "log.db"), "--bundle", str(colour_bundle), "--json",
          "--plot", str(tmp_path / "m.png"), "--overwrite"])


def test_monitor_prints_a_readable_report_and_names_a_missing_database(
        colour_bundle, tmp_path, capsys):
    from vidlab.cli import main

    fill_log(tmp_path / "log.db", colour_bundle, shift=40)
    main(["monitor", str(tmp_path / "log.db"), "--bundle", str(colour_bundle)])
    out = capsys.readouterr().out
    assert "ALERT" in out and "input drift in brightness" in out and "p99" in out
    with pytest.raises(SystemExit) as exit_info:
        main(["monitor", str(tmp_path / "nope.db"), "--bundle", str(colour_bundle)])
    assert exit_info.value.code == 1
    assert "nope.db: no such prediction database" in capsys.readouterr().err
