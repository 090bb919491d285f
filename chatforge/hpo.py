"""`chatforge sweep`: hyperparameter search over any stage's config, with Optuna.

    chatforge sweep --stage sft --base sft.yaml --space space.yaml --trials 20 --out sweeps/sft
    chatforge sweep ... --sampler grid                                    # every combination once
    chatforge sweep ... --storage postgresql://user:pw@db/optuna --study sft-lr   # on several machines

The space is a YAML file mapping config fields (dotted, as on the command line) to ranges:

    train.optim.lr: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}
    train.batch_size: {type: categorical, choices: [8, 16, 32]}
    dropout: {type: float, low: 0.0, high: 0.2}
    lora.r: {type: int, low: 4, high: 16, step: 4}

Each trial is the stage run with the base config (`--base`: a YAML file as the stage's own
`--config` takes) plus the trial's values, in
OUT/trial_NNNN (a normal run dir). The objective is a figure of the trial's summary
(`--metric best_val_loss` by default; `final_loss`), or `task_success`, measured with
`chatforge eval` on `--eval-data` after the trial. Validation losses are reported to the
study as the trial trains, so a trial worse than the median of the others at the same
step is pruned (stopped early; `--pruner hyperband` or `none` instead). A trial that fails
(a diverged loss, a bad value) is recorded as failed with its reason; the study goes on.

The study lives in `--storage` (default: OUT/study.db, SQLite): run the same command again
after an interruption and it continues (trial numbers go on; finished trials are not
repeated; a trial whose process died is marked failed once its heartbeat is old). Several
processes, on one machine or many with a PostgreSQL URL, share one study: each runs trials
until the study has `--trials` finished ones. With MLflow tracking on, the sweep is one
MLflow run and every trial a run nested in it. At the end: the best config as a preset
(OUT/best.yaml, usable as `--config`), OUT/sweep.json with every trial, and plots
(optimization history, parameter importances, parallel coordinates) that `chatforge
report OUT` shows.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from chatforge import tracking
from chatforge.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from chatforge.config import load_config, opt, read_yaml, to_dict
from chatforge.errors import ConfigError, UserError
from chatforge.ui import QUIET, UI

PARAM_TYPES = ("float", "int", "categorical")


@dataclass
class SweepConfig:
    """`chatforge sweep`: search a stage's hyperparameters with Optuna (pruning, resumable, several workers)."""

    stage: Literal["pretrain", "sft", "dpo"] = opt("sft", "the stage to tune")
    base: str = opt("", "the stage's base config (YAML, what the stage's --config takes); each trial overrides fields of it", required=True)
    space: str = opt("", "the search space (YAML): field -> {type: float|int|categorical, low, high, log, step, choices}", required=True)
    trials: int = opt(10, "finished (complete or pruned) trials the study should have; several workers share them", ge=1)
    out: str = opt("sweep", "directory for the trials' run dirs, the study, the best config and the plots")
    sampler: Literal["tpe", "random", "grid"] = opt("tpe", "tpe (Bayesian), random, or grid (every combination of categorical values)")
    pruner: Literal["median", "hyperband", "none"] = opt("median", "stop trials early when their validation loss lags")
    metric: str = opt("best_val_loss", "what to optimize: best_val_loss, final_loss (from the trial's summary) or task_success (needs --eval-data)")
    direction: Literal["auto", "minimize", "maximize"] = opt("auto", "auto: minimize losses, maximize task_success")
    eval_data: str = opt("", "test split for --metric task_success")
    storage: str = opt("", "Optuna storage URL (default: sqlite:///OUT/study.db; PostgreSQL for several machines)")
    study: str = opt("", "study name (default: the out dir's name)")
    seed: int = opt(0, "seed of the sampler (each trial's training seed stays the base config's)")
    heartbeat: float = opt(30.0, "seconds between a running trial's heartbeats; a trial silent for 2x this is failed", gt=0)

    def validate(self) -> None:
        if self.metric == "task_success" and not self.eval_data:
            raise ConfigError("metric: task_success needs --eval-data (a test split whose rows carry required facts)")


@dataclass
class Param:
    name: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    def suggest(self, trial: Any) -> Any:
        if self.type == "categorical":
            return trial.suggest_categorical(self.name, self.choices)
        if self.type == "int":
            return trial.suggest_int(self.name, int(self.low or 0), int(self.high or 0), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, float(self.low or 0), float(self.high or 0), step=self.step, log=self.log)

    def grid(self) -> list[Any]:
        if self.type == "categorical":
            return list(self.choices or [])
        if self.type == "int" and not self.log:
            return list(range(int(self.low or 0), int(self.high or 0) + 1, int(self.step or 1)))
        raise ConfigError(f"{self.name}: the grid sampler needs categorical values or an int range (got {self.type}{' log' if self.log else ''})")


def read_space(path: str) -> list[Param]:
    """The search space file, checked (errors name the file and the field)."""
    raw = read_yaml(path)
    if not isinstance(raw, dict) or not raw:
        raise UserError(f"{path}: expected a mapping of config fields to ranges, e.g. 'train.optim.lr: {{type: float, low: 1e-4, high: 1e-2, log: true}}'")
    out = []
    for name, spec in raw.items():
        where = f"{path}: {name}"
        if not isinstance(spec, dict):
            raise UserError(f"{where}: expected {{type: ..., ...}}, got {spec!r}")
        kind = spec.get("type")
        if kind not in PARAM_TYPES:
            raise UserError(f"{where}: type {kind!r}; expected float, int or categorical")
        unknown = set(spec) - {"type", "low", "high", "log", "step", "choices"}
        if unknown:
            raise UserError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        if kind == "categorical":
            if not isinstance(spec.get("choices"), list) or not spec["choices"]:
                raise UserError(f"{where}: categorical needs a non-empty list of choices")
        else:
            low, high = spec.get("low"), spec.get("high")
            if not isinstance(low, int | float) or not isinstance(high, int | float) or low > high:
                raise UserError(f"{where}: needs numbers low <= high, got low={low!r} high={high!r}")
            if spec.get("log") and low <= 0:
                raise UserError(f"{where}: a log range needs low > 0")
        out.append(Param(str(name), kind, spec.get("low"), spec.get("high"), bool(spec.get("log", False)), spec.get("step"), spec.get("choices")))
    return out


def _stage(stage: str) -> tuple[type, Callable[[Any, UI], dict[str, Any]]]:
    from chatforge.train import config

    if stage == "pretrain":
        from chatforge.train import pretrain

        return config.PretrainConfig, pretrain.main
    if stage == "sft":
        from chatforge.train import sft

        return config.SFTConfig, sft.main
    from chatforge.train import dpo

    return config.DPOConfig, dpo.main


def _storage(cfg: SweepConfig, out: Path) -> Any:
    import optuna

    url = cfg.storage or f"sqlite:///{(out / 'study.db').resolve()}"
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    grace = max(2 * cfg.heartbeat, cfg.heartbeat + 1)
    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=max(1, int(cfg.heartbeat)), grace_period=math.ceil(grace))


def main(cfg: SweepConfig, ui: UI = QUIET) -> dict[str, Any]:
    """Run trials until the study has `cfg.trials` finished ones; returns the best trial."""
    import warnings

    import optuna

    # Optuna logs each failed trial's traceback as a warning; the reason is reported below.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats
    space = read_space(cfg.space)
    config_cls, stage_main = _stage(cfg.stage)
    base = read_yaml(cfg.base)
    out = Path(cfg.out)
    # The base config must be valid, and every field of the space a field of the stage's
    # config: a typo stops here, not as N failed trials.
    load_config(config_cls, file=cfg.base, overrides={"out": str(out / "trial")})
    probe = {p.name: p.choices[0] if p.choices else p.low for p in space}
    try:
        load_config(config_cls, file=cfg.base, overrides={"out": str(out / "trial"), **probe})
    except ConfigError as e:
        raise UserError(f"{cfg.space}: {e}") from e
    out.mkdir(parents=True, exist_ok=True)
    direction = cfg.direction if cfg.direction != "auto" else ("maximize" if cfg.metric == "task_success" else "minimize")
    if cfg.sampler == "grid":
        sampler: Any = optuna.samplers.GridSampler({p.name: p.grid() for p in space}, seed=cfg.seed)
    elif cfg.sampler == "random":
        sampler = optuna.samplers.RandomSampler(seed=cfg.seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=cfg.seed, n_startup_trials=min(5, cfg.trials))
    pruner: Any = {"median": optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0), "hyperband": optuna.pruners.HyperbandPruner(), "none": optuna.pruners.NopPruner()}[cfg.pruner]
    name = cfg.study or out.resolve().name
    study = None
    for attempt in range(10):  # workers starting together race to create the database's tables
        try:
            study = optuna.create_study(study_name=name, storage=_storage(cfg, out), sampler=sampler, pruner=pruner, direction=direction, load_if_exists=True)
            break
        except Exception as e:  # sqlalchemy's OperationalError / IntegrityError ("already exists")
            transient = any(m in str(e) for m in ("already exists", "locked", "UNIQUE"))
            if attempt == 9 or not transient:
                raise
            time.sleep(0.5 + attempt * 0.5)
    assert study is not None
    parent = tracking.start_run(f"sweep:{name}", to_dict(cfg), {"stage": "sweep"}) if tracking.mlflow_uri() else None

    def finished() -> int:
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        return len(study.get_trials(deepcopy=False, states=states))

    def objective(trial: Any) -> float:
        values = {p.name: p.suggest(trial) for p in space}
        run_dir = out / f"trial_{trial.number:04d}"
        overrides = {**values, "out": str(run_dir), "overwrite": True, "resume": False}

        def report(record: dict[str, Any]) -> None:
            if "val_loss" in record and math.isfinite(record["val_loss"]):
                trial.report(float(record["val_loss"]), int(record.get("step", 0)))
                if trial.should_prune():
                    raise optuna.TrialPruned(f"validation loss {record['val_loss']:.4f} at step {record.get('step')} lags the other trials")

        ui.note(f"trial {trial.number}: {values}")
        try:
            stage_cfg: Any = load_config(config_cls, file=cfg.base, overrides=overrides)
            with tracking.parent_run(parent), tracking.observe(report):
                summary = stage_main(stage_cfg, QUIET)
            value: Any = _task_success(run_dir, cfg.eval_data) if cfg.metric == "task_success" else summary.get(cfg.metric)
            if value is None:
                raise UserError(f"--metric {cfg.metric}: the trial's summary has no such figure (keys: {', '.join(sorted(summary))})")
        except optuna.TrialPruned:
            ui.note(f"trial {trial.number}: pruned")
            raise
        except Exception as e:
            trial.set_user_attr("error", f"{type(e).__name__}: {e}")
            ui.warn(f"trial {trial.number} failed: {type(e).__name__}: {e}")
            raise
        ui.note(f"trial {trial.number}: {cfg.metric} = {value:.4f}")
        return float(value)

    failures: list[int] = []

    def enough(study: Any, trial: Any) -> None:
        if trial.state == optuna.trial.TrialState.FAIL:
            failures.append(trial.number)
        if finished() >= cfg.trials:
            study.stop()
        elif len(failures) >= max(3, cfg.trials):  # failed trials do not count: do not retry forever
            ui.warn(f"{len(failures)} trials failed in this process; stopping (see sweep.json for the reasons)")
            study.stop()

    if finished() < cfg.trials:
        study.optimize(objective, callbacks=[enough], catch=(Exception,))
    result = write_results(study, cfg, base, out, ui)
    if parent is not None:
        client = tracking._client()
        if result.get("best"):
            client.log_metric(parent, f"best.{cfg.metric}", result["best"]["value"])
            for k, v in result["best"]["params"].items():
                client.set_tag(parent, f"best.{k}", str(v))
        client.set_terminated(parent, "FINISHED")
    return result


def _task_success(run_dir: Path, eval_data: str) -> float:
    from chatforge.eval import runner
    from chatforge.eval.config import EvalConfig

    results = runner.main(EvalConfig(model=str(run_dir / "model"), data=eval_data, metrics=["task"], out=str(run_dir / "eval.json")), QUIET)
    return float(results["task"]["success"])


def _deep_set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    node = tree
    *parents, last = dotted.split(".")
    for k in parents:
        node = node.setdefault(k, {})
    node[last] = value


def write_results(study: Any, cfg: SweepConfig, base: Any, out: Path, ui: UI) -> dict[str, Any]:
    """sweep.json (every trial), best.yaml (the base config with the best values), the plots."""
    import optuna

    trials = []
    for t in study.get_trials(deepcopy=False):
        trials.append(
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                "params": t.params,
                "error": t.user_attrs.get("error") or t.system_attrs.get("fail_reason"),
                "intermediate": dict(t.intermediate_values),
            }
        )
    result: dict[str, Any] = {"study": study.study_name, "direction": study.direction.name.lower(), "metric": cfg.metric, "trials": trials}
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if complete:
        best = study.best_trial
        result["best"] = {"number": best.number, "value": best.value, "params": best.params}
        preset = json.loads(json.dumps(base)) if isinstance(base, dict) else {}
        for k, v in best.params.items():
            _deep_set(preset, k, v)
        preset.pop("out", None)
        header = f"# best of sweep {study.study_name}: trial {best.number}, {cfg.metric} = {best.value:.6g}\n"
        atomic_write_text(out / "best.yaml", header + yaml.safe_dump(preset, sort_keys=False, allow_unicode=True))
        ui.note(f"best: trial {best.number}, {cfg.metric} = {best.value:.4f}, {best.params} -> {out / 'best.yaml'}")
    else:
        ui.warn("no trial completed; no best config")
    counts = {s: sum(1 for t in trials if t["state"] == s) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")}
    result["counts"] = counts
    atomic_write_json(out / "sweep.json", result)
    # The sweep dir is a run dir too (`chatforge runs list`, `chatforge report OUT`): its
    # config, and one record per finished trial.
    tracking.write_config(out, "sweep", to_dict(cfg))
    records = [{"step": t["number"], "trial_value": t["value"]} for t in trials if t["value"] is not None]
    atomic_write_text(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    ui.note(f"trials: {counts['COMPLETE']} complete, {counts['PRUNED']} pruned, {counts['FAIL']} failed")
    _plots(study, out, ui)
    return result


def _plots(study: Any, out: Path, ui: UI) -> None:
    """Optuna's own matplotlib plots, saved as PNG (the report embeds sweep_*.png)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    def save(name: str, draw: Callable[[], Any]) -> None:
        try:
            ax = draw()
        except Exception as e:  # too few trials, or a plot the study cannot have
            ui.note(f"plot {name}: skipped ({e})")
            return
        fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        fig.set_size_inches(8, 4.5)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        atomic_write_bytes(out / f"sweep_{name}.png", buf.getvalue())

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna marks its matplotlib plots experimental
        save("history", lambda: ovm.plot_optimization_history(study))
        save("importances", lambda: ovm.plot_param_importances(study))
        save("parallel", lambda: ovm.plot_parallel_coordinate(study))
