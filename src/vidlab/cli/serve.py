"""CLI verbs of the `serve` stage: `predict`, `serve`, `monitor` (thin: parsing and printing)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from vidlab.serve.limits import Limits


def register(app: typer.Typer) -> None:
    """Add this stage's verbs to the root app."""
    app.command("predict")(predict)
    app.command("serve")(serve)
    app.command("monitor")(monitor)
    app.command("api-key")(api_key)


def predict(
    bundle: Path = typer.Argument(..., help="Model bundle directory (NAME.vidlab/)."),
    videos: list[Path] = typer.Argument(..., help="Video files to classify."),
    top_k: int = typer.Option(5, "--top-k", min=1, help="Labels to report per video/window."),
    window: float = typer.Option(2.0, "--window", min=0.0,
                                 help="Timeline window in seconds for videos longer than it "
                                      "(0: one prediction per video only)."),
    stride: float = typer.Option(1.0, "--stride", min=0.0, help="Timeline step in seconds."),
    runtime: str = typer.Option("auto", "--runtime",
                                help="auto (fastest in the bundle), torch, onnx or onnx-int8."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON list on stdout."),
) -> None:
    """Top-k labels of each video (and a timeline of windows for long ones).

    Bad files are reported one line each on stderr; the others are still predicted, and the
    exit status is 1 if any file failed.
    """
    from vidlab.cli.common import print_json
    from vidlab.serve.predict import Predictor, iter_predictions

    results, failed = [], 0
    for result, error in iter_predictions(Predictor(bundle, runtime), videos, top_k, window,
                                          stride):
        if error is not None:
            print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
            failed += 1
            continue
        results.append(result)
        if not json_out:
            _print_result(result)
    if json_out:
        print_json(results)
    if failed:
        sys.exit(1)


def _print_result(result: dict) -> None:
    from rich.console import Console

    out = Console(soft_wrap=True)
    tops = ", ".join(f"{t['label']} {t['prob']:.3f}" for t in result["top"])
    out.print(f"[bold]{result['path']}[/bold]: {tops}", highlight=False)
    for w in result["windows"]:
        best = w["top"][0]
        out.print(f"  {w['start']:7.1f}–{w['end']:7.1f} s  {best['label']} {best['prob']:.3f}",
                  highlight=False)


def serve(
    bundles: list[Path] = typer.Argument(..., help="Model bundles (NAME.vidlab/), or "
                                         "directories of them: each is served as NAME."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (loopback only by "
                             "default; 0.0.0.0 exposes the server to the network)."),
    port: int = typer.Option(8000, "--port"),
    max_batch: int = typer.Option(8, "--max-batch", min=1, help="Clips per forward pass."),
    max_wait_ms: float = typer.Option(10.0, "--max-wait-ms", min=0.0,
                                      help="Longest wait for a batch to fill."),
    max_upload_mb: float = typer.Option(Limits.max_upload_mb, "--max-upload-mb", min=0.0,
                                        help="Largest upload accepted (413 beyond)."),
    max_duration_s: float = typer.Option(Limits.max_duration_s, "--max-duration-s", min=0.0,
                                         help="Longest video accepted (413 beyond)."),
    timeout_s: float = typer.Option(Limits.timeout_s, "--timeout-s", min=0.0,
                                    help="Per-request time limit (504 beyond)."),
    queue_size: int = typer.Option(Limits.queue_size, "--queue-size", min=1,
                                   help="Requests in flight at once (503 beyond)."),
    max_clips: int = typer.Option(Limits.max_clips, "--max-clips", min=1,
                                  help="Timeline windows per video (the stride widens to fit)."),
    db: Path = typer.Option(Path("vidlab-predictions.db"), "--db",
                            help="SQLite prediction log (for `vidlab monitor`)."),
    retention_days: float = typer.Option(30.0, "--retention-days",
                                         help="Delete log rows older than this (0: keep all)."),
    runtime: str = typer.Option("auto", "--runtime",
                                help="auto, torch, torch-bf16, onnx or onnx-int8."),
    window: float = typer.Option(2.0, "--window", min=0.0, help="Default timeline window, s."),
    stride: float = typer.Option(1.0, "--stride", min=0.0, help="Default timeline step, s."),
    workers: int = typer.Option(0, "--decode-workers", min=0,
                                help="Decode threads (0: one per CPU core)."),
    temp_dir: Path = typer.Option(None, "--temp-dir",
                                  help="Where uploads are staged (default: a private temp dir)."),
    index: Path = typer.Option(None, "--index", help="A library index (NAME.vlx/) to search "
                                                     "and play at /library/."),
    watch: list[str] = typer.Option([], "--watch", help="Also watch this live source (URL, "
                                    "device or file; repeat for several): see `vidlab watch`."),
    reload_poll_s: float = typer.Option(2.0, "--reload-poll-s", min=0.0,
                                        help="Check the bundles on disk this often and reload "
                                             "one that was replaced (0: never)."),
    api_keys: Path = typer.Option(None, "--api-keys", help="Key file ('[NAME] KEY|sha256:HEX "
                                  "[admin]' per line): require 'Authorization: Bearer KEY'."),
    rate_limit: float = typer.Option(0.0, "--rate-limit", min=0.0,
                                     help="Requests per second per key (or client address); "
                                          "429 beyond (0: no limit)."),
    rate_burst: int = typer.Option(20, "--rate-burst", min=1,
                                   help="Requests a key may send at once above --rate-limit."),
    cors: list[str] = typer.Option([], "--cors", help="Allow browser calls from this origin "
                                   "(repeat for several; none by default)."),
    access_log: bool = typer.Option(True, "--access-log/--no-access-log",
                                    help="One JSON line per request on stderr."),
    drain_timeout_s: float = typer.Option(30.0, "--drain-timeout-s", min=0.0,
                                          help="On SIGTERM, how long accepted requests may "
                                               "take to finish before the server exits."),
    ssl_certfile: Path = typer.Option(None, "--ssl-certfile", help="Serve HTTPS with this "
                                      "certificate (PEM) and --ssl-keyfile."),
    ssl_keyfile: Path = typer.Option(None, "--ssl-keyfile", help="Private key (PEM) of "
                                     "--ssl-certfile."),
    max_connections: int = typer.Option(Limits.max_connections, "--max-connections", min=1,
                                        help="Open connections at once (503 beyond)."),
    header_timeout_s: float = typer.Option(Limits.header_timeout_s, "--header-timeout-s",
                                           min=0.1, help="Time for a request's headers to "
                                           "arrive (408 beyond)."),
    body_timeout_s: float = typer.Option(Limits.body_timeout_s, "--body-timeout-s", min=0.1,
                                         help="Longest silence in an upload, and the grace "
                                         "before --min-upload-kb-s applies (408 beyond)."),
    min_upload_kb_s: float = typer.Option(Limits.min_upload_kb_s, "--min-upload-kb-s",
                                          min=0.0, help="Slowest average upload pace "
                                          "accepted, KB/s (408 below; 0: no floor)."),
) -> None:
    """Serve bundles over HTTP: /v1/predict, /v1/models, Open Inference Protocol v2 (/v2),
    /metrics, / (web page); with --index, the library page at /library/."""
    import os

    # Decode threads and the batcher each run OpenMP regions; spinning waiters of one starve
    # the others on a few shared cores (measured 3-5x slower batch-1 inference). Must be set
    # before torch loads, which this lazy CLI has not done yet; an explicit setting wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from vidlab.cli.common import console
    from vidlab.serve.app import create_app
    from vidlab.serve.drain import run_server
    from vidlab.serve.jsonlog import configure_json_logs
    from vidlab.serve.server import uvicorn_options

    configure_json_logs(access=access_log)

    app = create_app(bundles, runtime=runtime, max_batch=max_batch, max_wait_ms=max_wait_ms,
                     max_upload_mb=max_upload_mb, max_duration_s=max_duration_s,
                     timeout_s=timeout_s, queue_size=queue_size, max_clips=max_clips, db=db,
                     retention_days=retention_days, temp_dir=temp_dir,
                     decode_workers=workers or None, window=window, stride=stride,
                     watch=list(watch), reload_poll_s=reload_poll_s, api_keys=api_keys,
                     rate_limit=rate_limit, rate_burst=rate_burst, cors=list(cors),
                     access_log=access_log,
                     max_connections=max_connections, header_timeout_s=header_timeout_s,
                     body_timeout_s=body_timeout_s, min_upload_kb_s=min_upload_kb_s)
    registry = app.state.registry
    try:  # before binding: a bundle that cannot serve is one error line, and no port opens
        for _, service in registry.services():
            service.warm_up()
    except BaseException:
        registry.stop()
        raise
    if index is not None:
        from vidlab.library.web import mount_library

        mount_library(app, index)
    served = ", ".join(f"{s.predictor.version} ({s.predictor.runtime})"
                       for _, s in registry.services())
    console.print(f"serving {served} on http://{host}:{port}/ — log: {db}", highlight=False)
    if index is not None:
        console.print(f"library {index}: http://{host}:{port}/library/", highlight=False)
    tls = {"ssl_certfile": str(ssl_certfile), "ssl_keyfile": str(ssl_keyfile)} \
        if ssl_certfile else {}
    run_server(app, drain_timeout_s, **uvicorn_options(app, host, port), log_config=None, **tls)


def api_key(
    name: str = typer.Argument(..., help="Who the key is for (shown in logs, never the key)."),
    admin: bool = typer.Option(False, "--admin", help="May call admin routes (model reload)."),
) -> None:
    """Make a random API key: prints the key (give it to the client, once) and the line for
    the --api-keys file (its hash: the file holds no secret)."""
    from vidlab.serve.auth import hash_key, new_key

    key = new_key()
    print(f"key:  {key}")
    print(f"line: {name} {hash_key(key)}{' admin' if admin else ''}")


def monitor(
    db: Path = typer.Argument(..., help="Prediction log written by `vidlab serve --db`."),
    bundle: Path = typer.Option(..., "--bundle", help="The served bundle (training baseline)."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    plot: Path = typer.Option(None, "--plot", help="Write a PNG summary here."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --plot file."),
    since_hours: float = typer.Option(None, "--since-hours", help="Only the last N hours."),
    all_versions: bool = typer.Option(False, "--all-versions",
                                      help="Include rows of other model versions."),
    psi_threshold: float = typer.Option(0.25, "--psi-threshold", help="Input-drift alert (PSI)."),
    label_psi: float = typer.Option(0.25, "--label-psi", help="Label-drift alert (PSI)."),
    confidence_drop: float = typer.Option(0.15, "--confidence-drop",
                                          help="Alert when mean confidence falls this much."),
    max_error_rate: float = typer.Option(0.05, "--max-error-rate"),
    p99_ms: float = typer.Option(None, "--p99-ms", help="Alert when latency p99 exceeds this."),
    min_samples: int = typer.Option(50, "--min-samples",
                                    help="Judge drift only with at least this many predictions."),
    fail_on_alert: bool = typer.Option(False, "--fail-on-alert",
                                       help="Exit with status 2 when the status is alert."),
) -> None:
    """Health and drift report of a prediction log: status ok/alert with reasons."""
    from vidlab.cli.common import print_json
    from vidlab.data.commands import check_output
    from vidlab.serve.monitor import Thresholds, monitor_report

    if plot is not None:
        check_output(plot, overwrite)
    thresholds = Thresholds(psi=psi_threshold, label_psi=label_psi,
                            confidence_drop=confidence_drop, error_rate=max_error_rate,
                            p99_ms=p99_ms, min_samples=min_samples)
    report = monitor_report(db, bundle, since_hours=since_hours, thresholds=thresholds,
                            all_versions=all_versions, plot=plot)
    if json_out:
        print_json(report)
    else:
        _print_report(report)
    if fail_on_alert and report["status"] == "alert":
        sys.exit(2)  # (typer.Exit codes are dropped by the root main in non-standalone mode)


def _print_report(report: dict) -> None:
    from rich.console import Console

    out = Console(soft_wrap=True)
    colour = "red" if report["status"] == "alert" else "green"
    out.print(f"[bold {colour}]{report['status'].upper()}[/] {report['model_version']}")
    t, lat = report["traffic"], report["latency_ms"]
    out.print(f"traffic: {t['requests']} requests, {t['predictions']} predictions, "
              f"{t['errors']} errors ({t['error_rate']:.1%}), {t['first']} → {t['last']}",
              highlight=False)
    if lat:
        out.print(f"latency ms: p50 {lat['p50']:.1f}  p90 {lat['p90']:.1f}  p99 {lat['p99']:.1f}",
                  highlight=False)
    conf = report["confidence"]
    if conf:
        base = conf["baseline_mean"]
        out.print(f"confidence: mean {conf['mean']:.3f} (baseline "
                  f"{'n/a' if base is None else f'{base:.3f}'}, {conf['baseline_source']})",
                  highlight=False)
    if report["labels"].get("psi") is not None:
        top = sorted(report["labels"]["observed"].items(), key=lambda kv: -kv[1])[:3]
        out.print(f"labels vs training prior: PSI {report['labels']['psi']:.3f}; most predicted "
                  + ", ".join(f"{k} {v:.0%}" for k, v in top), highlight=False)
    for name, d in report["input_drift"].items():
        out.print(f"input {name}: PSI {d['psi']:.3f}  mean {d['mean']:.4g}", highlight=False)
    for reason in report["reasons"]:
        out.print(f"[red]alert:[/] {reason}", highlight=False)
    for note in report["notes"]:
        out.print(f"note: {note}", highlight=False)
    if report.get("plot"):
        out.print(f"plot: {report['plot']}", highlight=False)
