"""`vidlab tune`: Optuna search over the config's `search.space`.

TPE sampler, median pruner fed with the per-epoch validation accuracy, SQLite storage in the
output directory by default so an interrupted study resumes where it stopped (`load_if_exists`).
Each trial is an ordinary `fit` run in `OUT/trial_NNNN`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vidlab.config import load_config, save_config
from vidlab.errors import ConfigError
from vidlab.train.config import TrainConfig

log = logging.getLogger(__name__)


def build_train_config(path: str | Path | None, overrides: list[str] | None = None,
                       resume_dir: str | Path | None = None) -> TrainConfig:
    """The config of a run: YAML ← overrides; when resuming, the run's saved config ← overrides."""
    if resume_dir is not None and (Path(resume_dir) / "config.yaml").is_file():
        return load_config(TrainConfig, Path(resume_dir) / "config.yaml", overrides)
    return load_config(TrainConfig, path, overrides)


def suggest(trial: Any, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Draw one value per search-space key (float / int / categorical)."""
    params: dict[str, Any] = {}
    for key, spec in space.items():
        if "choices" in spec:
            params[key] = trial.suggest_categorical(key, list(spec["choices"]))
        elif spec.get("int"):
            params[key] = trial.suggest_int(key, int(spec["low"]), int(spec["high"]),
                                            log=bool(spec.get("log", False)))
        elif "low" in spec and "high" in spec:
            params[key] = trial.suggest_float(key, float(spec["low"]), float(spec["high"]),
                                              log=bool(spec.get("log", False)))
        else:
            raise ConfigError(f"search.space.{key}: give low/high (and int/log) or choices")
    return params


def tune(config_path: str | Path, trials: int = 10, storage: str | None = None,
         out: str | Path = "tune", overrides: list[str] | None = None,
         say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run `trials` more trials of the study in `out`; returns the best trial's summary."""
    import optuna

    say = say or log.info
    base = load_config(TrainConfig, config_path, overrides)
    if not base.search.space:
        raise ConfigError("search.space is empty: nothing to tune", config_path)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{(out / 'study.db').resolve()}"
    metric = base.search.metric
    study = optuna.create_study(
        study_name="vidlab", storage=storage, load_if_exists=True, direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=base.search.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1))
    done = len([t for t in study.trials if t.state.is_finished()])
    if done:
        say(f"resuming study in {storage}: {done} trial(s) already finished")

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, base.search.space)
        cfg = trial_config(base, params, out / f"trial_{trial.number:04d}")
        say(f"trial {trial.number}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float)
                                                  else f"{k}={v}" for k, v in params.items()))

        def report(epoch: int, record: dict) -> None:
            if metric in record:
                trial.report(float(record[metric]), epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at epoch {epoch}")

        from vidlab.train.run import fit

        result = fit(cfg, overwrite=True, on_epoch=report, say=log.info)
        value = result.metrics.get("val_best")
        if value is None or value == float("-inf"):
            raise ConfigError("trial produced no validation metric (does the data have a val split?)")
        return float(value)

    study.optimize(objective, n_trials=trials, catch=())
    best = study.best_trial
    best_cfg = trial_config(base, dict(best.params), Path(base.out or out / "best_run"))
    best_path = out / "best_config.yaml"
    save_config(best_cfg, best_path)
    summary = {"best_trial": best.number, "best_value": best.value, "metric": metric,
               "best_params": dict(best.params), "best_config": str(best_path),
               "trials": len(study.trials), "storage": storage,
               "importance_png": _importance_plot(study, out / "param_importance.png")}
    return summary


def trial_config(base: TrainConfig, params: dict[str, Any], run_dir: Path) -> TrainConfig:
    """`base` with the trial's parameters, its own run dir, and the search's epoch/time budget."""
    from vidlab.config import apply_overrides, validate

    data = base.model_dump(mode="json")
    data["out"] = str(run_dir)
    if base.search.epochs is not None:
        data["train"]["epochs"] = base.search.epochs
    data["train"]["max_minutes"] = base.search.max_minutes
    for key, value in params.items():
        data = apply_overrides(data, [f"{key}={value}"])
    return validate(TrainConfig, data, where=f"trial parameters {params}: ")


def _importance_plot(study: Any, path: Path) -> str | None:
    """Bar chart of Optuna's parameter importances (needs ≥2 finished trials)."""
    import optuna

    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(finished) < 2:
        return None
    try:
        importances = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError) as exc:  # e.g. a parameter that never varied
        log.warning("parameter importance unavailable: %s", exc)
        return None
    from vidlab.plotting import pyplot

    plt = pyplot()
    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.5 * len(names) + 1.5))
    ax.barh(names, [importances[n] for n in names])
    ax.set_xlabel("importance (Optuna default evaluator)")
    ax.set_title(f"parameter importance over {len(finished)} trials")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return str(path)
