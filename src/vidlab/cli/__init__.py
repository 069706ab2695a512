"""The `vidlab` command line: one thin verb group per pipeline stage.

Each `cli/<stage>.py` module defines `register(app)`, which adds its verbs; the modules hold
parsing and printing only and call the public Python function behind each verb.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import typer

from vidlab.errors import VidlabError

app = typer.Typer(
    name="vidlab",
    help="vidlab: from a folder of real videos to a deployed, accelerated, monitored video model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_DEBUG = {"on": False}


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log more (INFO/DEBUG)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Log warnings and errors only."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    level = logging.DEBUG if verbose and debug else logging.INFO if verbose else logging.WARNING
    if quiet:
        level = logging.ERROR
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    _DEBUG["on"] = debug or bool(os.environ.get("VIDLAB_DEBUG"))


def _register_all() -> None:
    from vidlab.cli import (
        accel,
        data,
        enhance,
        gen,
        io,
        library,
        models,
        quickstart,
        serve,
        train,
        watch,
    )

    for module in (io, data, models, train, accel, serve, watch, library, gen, enhance,
                   quickstart):
        module.register(app)


_register_all()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning `VidlabError` into one line on stderr and exit code 1."""
    if "--debug" in (argv if argv is not None else sys.argv):
        _DEBUG["on"] = True
    try:
        rc = app(args=argv, standalone_mode=False)
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except VidlabError as exc:
        if _DEBUG["on"]:
            raise
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # usage errors (bad verb, flag or value) and the like
        kinds = _usage_exception_types()
        if isinstance(exc, kinds["Exit"]):
            sys.exit(exc.exit_code)
        if isinstance(exc, kinds["ClickException"]):
            exc.show()  # the usage line, then "Error: <one line>"
            sys.exit(exc.exit_code)
        if isinstance(exc, kinds["Abort"]):
            print("aborted", file=sys.stderr)
            sys.exit(1)
        raise


def _usage_exception_types() -> dict[str, tuple[type, ...]]:
    """The `Exit`, `Abort` and `ClickException` classes Typer raises, whichever generation is
    installed: Typer >= 0.26 defines them itself (`typer.exceptions`, its vendored click in
    `typer._click`), older Typer re-raises click's. `tests/core/test_cli_usage.py` runs both."""
    kinds: dict[str, list[type]] = {"Exit": [], "Abort": [], "ClickException": []}
    for name in ("typer.exceptions", "typer._click.exceptions", "click.exceptions"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for kind, found in kinds.items():
            cls = getattr(module, kind, None)
            if isinstance(cls, type):
                found.append(cls)
    return {kind: tuple(found) for kind, found in kinds.items()}
