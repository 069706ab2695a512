"""One run's bookkeeping, shared by every trainer (classifier, GAN, enhancement).

- `RunDir` claims the run directory (a new run never replaces another unasked; `overwrite`
  removes only what a run of that kind writes, never a user's other files), knows where the
  checkpoint is, and writes/reads it atomically with every RNG state, so that `--resume`
  continues to the same result as an uninterrupted run;
- `TimeBudget` is a run's wall-clock budget (kept across resumes) and `units_that_fit` the
  plan it allows: how many steps or epochs fit at the measured pace, which the trainer then
  fits its learning-rate schedule to (`Schedule.refit`).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidlab.errors import CheckpointError, OutputExistsError

CHECKPOINT = "checkpoints/last.pt"


class RunExistsError(OutputExistsError, CheckpointError):
    """A new run was asked for in a directory that already holds one (its checkpoint or its
    outputs): pass resume to continue it, or overwrite (where offered) to start over."""


@dataclass(frozen=True)
class RunDir:
    """A trainer's run directory: `outputs` are the names a run of this `kind` writes there."""

    path: Path
    kind: str = "training"
    outputs: tuple[str, ...] = ()
    checkpoint_name: str = CHECKPOINT

    @property
    def checkpoint(self) -> Path:
        return self.path / self.checkpoint_name

    def held(self) -> list[str]:
        """The outputs of an earlier run present here (the checkpoint first)."""
        names = [self.checkpoint_name, *self.outputs]
        return [n for n in dict.fromkeys(names) if (self.path / n).exists()]

    def claim(self, resume: bool = False, overwrite: bool | None = None,
              resume_needs_checkpoint: bool = True) -> bool:
        """Make the directory ready for a run; returns whether there is a checkpoint to resume.

        A new run in a directory holding another raises `RunExistsError` unless `overwrite`
        (`None`: this trainer offers no overwrite), which removes only the run's own outputs.
        `resume` without a checkpoint raises `CheckpointError` naming it, unless
        `resume_needs_checkpoint` is false (the run then starts from the beginning).
        """
        p = self.path
        if p.exists() and not p.is_dir():
            raise OutputExistsError("exists and is not a directory", p)
        if resume:
            if not self.checkpoint.is_file() and resume_needs_checkpoint:
                raise CheckpointError("no checkpoint to resume from (run without --resume "
                                      "first)", self.checkpoint)
        elif self.held():
            if not overwrite:
                also = " or --overwrite to start over" if overwrite is not None else ""
                raise RunExistsError(f"already holds a {self.kind} run ({self.held()[0]}): the "
                                     f"run directory is not empty (pass --resume to continue "
                                     f"it{also})", p)
            for name in self.held():  # only what a run writes, nothing else
                target = p / name
                if target.is_dir():
                    shutil.rmtree(target)
                else:
                    target.unlink(missing_ok=True)
        p.mkdir(parents=True, exist_ok=True)
        return resume and self.checkpoint.is_file()

    def save(self, state: dict[str, Any], rng: Any = None) -> None:
        """Write the checkpoint atomically, with `rng` (default: this process's RNG states)."""
        from vidlab.train.checkpoint import capture_rng_state, save_checkpoint

        save_checkpoint(self.checkpoint, {**state, "rng": capture_rng_state() if rng is None
                                          else rng})

    def load(self, restore_rng: bool = True) -> dict[str, Any]:
        """Read the checkpoint (data only, never code) and put its RNG states back."""
        from vidlab.train.checkpoint import load_checkpoint, restore_rng_state

        state = load_checkpoint(self.checkpoint)
        if restore_rng:
            restore_rng_state(state["rng"])
        return state


def units_that_fit(done: int, unit_s: float, left_s: float, planned: int, at_least: int) -> int:
    """The run's length (steps or epochs) under a time budget: `done` plus what fits in
    `left_s` at `unit_s` seconds each, never beyond `planned` nor below `at_least`."""
    return max(at_least, min(planned, done + int(max(left_s, 0.0) / max(unit_s, 1e-9))))


class TimeBudget:
    """`minutes` of wall-clock time for a run (None: unlimited); `spent_s` carries the time
    of earlier sessions of a resumed run."""

    def __init__(self, minutes: float | None, spent_s: float = 0.0):
        self.minutes, self.spent_s = minutes, spent_s
        self.started = time.perf_counter()

    @property
    def elapsed_s(self) -> float:
        return self.spent_s + time.perf_counter() - self.started

    def left_s(self) -> float:
        return float("inf") if not self.minutes else self.minutes * 60 - self.elapsed_s

    def over(self) -> bool:
        return bool(self.minutes) and self.left_s() <= 0

    def fit(self, done: int, unit_s: float, planned: int, at_least: int) -> int:
        """`units_that_fit` with the time this budget has left (`planned` without a budget)."""
        if not self.minutes:
            return planned
        return units_that_fit(done, unit_s, self.left_s(), planned, at_least)
