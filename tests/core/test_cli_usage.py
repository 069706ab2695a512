"""Usage mistakes through the real entry point: the usage line and one `Error:` line, exit 2,
never a traceback — with the pinned Typer and with every other Typer in `$VIDLAB_TYPER_VARIANTS`.

Typer 0.26 started raising its own vendored click exceptions (the CLI's handler caught only
click's, so every usage mistake printed a 40-line traceback). `.ci/run` installs the newest
Typer and the last one built on click itself into that folder (`pip install --target`), one
sub-folder each; each is put first on `PYTHONPATH` of a `python -m vidlab` subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

VARIANTS_ENV = "VIDLAB_TYPER_VARIANTS"
_root = os.environ.get(VARIANTS_ENV)
TYPERS = [None] + (sorted(p for p in Path(_root).iterdir()
                         if p.is_dir() and not p.name.startswith(".")) if _root else [])

MISTAKES = [
    (["nosuch"], "No such command 'nosuch'."),
    (["trian"], "Did you mean 'train'?"),
    (["data", "nosuch"], "No such command 'nosuch'."),
    (["train", "--nosuchflag"], "--nosuchflag"),
    (["predict"], "Missing argument"),
    (["predict", "b.vidlab", "v.mp4", "--top-k", "abc"], "Invalid value for '--top-k'"),
    (["predict", "b.vidlab", "v.mp4", "--top-k", "0"], "Invalid value for '--top-k'"),
    (["serve", "b.vidlab", "--port"], "requires an argument"),
    (["eval", "b.vidlab", "--data", "d", "--views", "axb"], "Invalid value for '--views'"),
    (["eval", "b.vidlab", "--data", "d", "--views", "0x1"], "Invalid value for '--views'"),
    (["probe", "a.mp4", "--json", "extra", "--nope"], "--nope"),
]


_DRIVER = """
import contextlib, io, json, sys
from vidlab.cli import main
answers = []
for args in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = exc.code
    answers.append([code, err.getvalue()])
print(json.dumps(answers))
"""
"""Calls the console script's function (`vidlab.cli:main`) once per mistake in one fresh
interpreter: the same code path as `vidlab ARGS`, without paying the CLI's import per case."""


def env_with(typer_dir: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if typer_dir is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(typer_dir),
                                                          env.get("PYTHONPATH")]))
    return env


def run_python(args: list[str], typer_dir: Path | None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          env=env_with(typer_dir), timeout=120)


def assert_usage_error(code: int, stderr: str, expected: str, shown: str) -> None:
    assert code == 2, shown
    assert "Traceback" not in stderr and "Exception" not in stderr, shown
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    # the usage line first (click prints none for an option missing its value)
    assert lines[0].startswith(("Usage: ", "Error: ")), shown
    errors = [ln for ln in lines if ln.startswith("Error: ")]
    assert len(errors) == 1 and expected in errors[0], shown
    assert len(lines) <= 4, shown


@pytest.mark.parametrize("typer_dir", TYPERS, ids=lambda p: "pinned" if p is None else p.name)
def test_every_kind_of_usage_mistake_prints_usage_and_one_error_line(typer_dir):
    r = run_python(["-m", "vidlab", "nosuch"], typer_dir)  # the real command line
    assert_usage_error(r.returncode, r.stderr, "No such command 'nosuch'.", r.stderr)
    r = run_python(["-c", _DRIVER, json.dumps([args for args, _ in MISTAKES])], typer_dir)
    assert r.returncode == 0, r.stderr
    for (args, expected), (code, stderr) in zip(MISTAKES, json.loads(r.stdout), strict=True):
        assert_usage_error(code, stderr, expected, f"vidlab {' '.join(args)} ->\n{stderr}")


@pytest.mark.parametrize("typer_dir", TYPERS, ids=lambda p: "pinned" if p is None else p.name)
def test_the_typer_under_test_is_the_one_imported(typer_dir):
    r = run_python(["-c", "import typer; print(typer.__file__)"], typer_dir)
    if typer_dir is not None:
        assert Path(r.stdout.strip()).is_relative_to(typer_dir)


def test_vidlab_errors_stay_one_line_and_help_still_works(tmp_path):
    r = run_python(["-m", "vidlab", "predict", str(tmp_path / "missing.vidlab"), "v.mp4"], None)
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0, r.stderr
    assert r.stderr.startswith("error: BundleError: ") and "missing.vidlab" in r.stderr
    r = run_python(["-m", "vidlab", "predict", "--help"], None)
    assert r.returncode == 0 and "Usage" in r.stdout
