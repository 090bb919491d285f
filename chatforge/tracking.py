"""Run records: every stage writes its resolved config and its metrics over time, and, when
enabled, the same to MLflow.

    log = RunLog(run_dir, stage="pretrain", config=to_dict(cfg))
    log.log(step=10, loss=3.2, lr=1e-3)          # one JSON line in RUN/metrics.jsonl
    log.close()
    finish(run_dir, summary)                      # final figures, the model's hash, artifacts

`metrics.jsonl` is always written (one JSON object per line, flushed as it goes, so a
crash loses nothing already logged). On resume, lines past the checkpoint's step are
dropped, so the record reads as one continuous run.

MLflow: set `MLFLOW_TRACKING_URI` (any URI MLflow takes: `sqlite:///PATH/mlflow.db`, which
`chatforge quickstart` uses, or a team's server) and every stage (pretrain, sft, dpo,
eval, sweep trials) becomes an MLflow run in the experiment `CHATFORGE_EXPERIMENT`
(default "chatforge"): params (the resolved config, flattened: `train.optim.lr`), tags
(stage, run dir, git commit of the code, the content hash of every dataset read and the
hash of the model started from and written), metrics over time, final metrics, and the
config, summary and curves as artifacts. A run started inside another (a sweep's
trials) is nested under it. MLflow's telemetry is switched off before it is imported;
nothing here makes a network call unless the URI points at a server.

`lineage(config, run_dir)` names what a run read and wrote, by content hash; the report
card shows it too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from chatforge import redact
from chatforge.atomic import atomic_write_json, atomic_write_text

METRICS = "metrics.jsonl"
TRACKING = "tracking.json"  # the run dir's MLflow run id, so the run's end is logged to it
_observers: list[Callable[[dict[str, Any]], None]] = []


@contextlib.contextmanager
def observe(fn: Callable[[dict[str, Any]], None]) -> Iterator[None]:
    """Call `fn(record)` for every record any RunLog logs in this process, within the block
    (a sweep reports validation losses to its trial this way, and prunes by raising)."""
    _observers.append(fn)
    try:
        yield
    finally:
        _observers.remove(fn)


def mlflow_uri() -> str | None:
    """The MLflow tracking URI if tracking is on (MLFLOW_TRACKING_URI is set)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or None


def _mlflow() -> Any:
    """mlflow, imported with its telemetry off and its logging quiet."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    import logging

    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return mlflow


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"optim": {"lr": 1}}} -> {"train.optim.lr": 1}; lists become JSON text."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = json.dumps(v) if isinstance(v, list | tuple) else v
    return out


def git_commit() -> str | None:
    """The git commit of the chatforge code, if it runs from a git checkout (no network)."""
    here = Path(__file__).resolve().parent
    try:
        p = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if p.returncode != 0:
        return None
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True, timeout=5)
    return p.stdout.strip() + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def _dataset_hash(path: Path) -> str:
    try:
        return str(json.loads((path / "manifest.json").read_text(encoding="utf-8")).get("content_hash", "(no hash)"))
    except (OSError, json.JSONDecodeError, AttributeError):
        return "(not found)"


def lineage(config: dict[str, Any], run_dir: Path | None = None) -> list[tuple[str, str, str]]:
    """(role, path, hash) of the datasets a run read (their content hashes) and the models it
    started from and wrote (model dir hashes)."""
    from chatforge.checkpoint import is_model_dir, model_dir_hash

    out: list[tuple[str, str, str]] = []
    for key, role in (("data", "data"), ("val_data", "validation data"), ("dataset", "data")):
        value = config.get(key)
        for p in [value] if isinstance(value, str) else (value or []):
            if p:
                path = Path(p.rsplit(":", 1)[0] if ":" in Path(p).name else p)  # "DIR:0.7" mixture weights
                out.append((role, str(path), _dataset_hash(path)))
    for key, role in (("model", "started from"), ("tokenizer", "tokenizer")):
        base = config.get(key)
        if isinstance(base, str) and base and is_model_dir(Path(base)):
            out.append((role, base, model_dir_hash(base)))
    if run_dir is not None and is_model_dir(run_dir / "model"):
        out.append(("model written", str(run_dir / "model"), model_dir_hash(run_dir / "model")))
    return out


def write_config(run_dir: Path, stage: str, config: dict[str, Any]) -> dict[str, Any]:
    """A run dir's config.json: the resolved config with secrets hidden (API keys, URL
    passwords; see chatforge/redact.py), as returned."""
    config = redact.config(config)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(run_dir) / "config.json", {"stage": stage, **config})
    return config


class RunLog:
    """metrics.jsonl and the resolved config of one run (only the main process writes), and
    its MLflow run when tracking is on."""

    def __init__(self, run_dir: Path, *, stage: str, config: dict[str, Any], enabled: bool = True, resume_step: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self._f = None
        self._mlflow_run: str | None = None
        if not enabled:
            return
        config = write_config(self.run_dir, stage, config)
        path = self.run_dir / METRICS
        if resume_step is not None and path.is_file():
            kept = [line for line in path.read_text(encoding="utf-8").splitlines() if _step_of(line) <= resume_step]
            atomic_write_text(path, "".join(line + "\n" for line in kept))
        elif resume_step is None and path.is_file():
            path.unlink()
        self._f = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        if mlflow_uri():
            self._start_mlflow(stage, config, resumed=resume_step is not None)

    def _start_mlflow(self, stage: str, config: dict[str, Any], resumed: bool) -> None:
        tags = {"stage": stage, "run_dir": str(self.run_dir.resolve()), "resumed": str(resumed)}
        for role, path, digest in lineage(config):
            tags[f"lineage.{role}.{Path(path).name}"] = digest
        self._mlflow_run = start_run(f"{stage}:{self.run_dir.name}", config, tags)
        atomic_write_json(self.run_dir / TRACKING, {"mlflow_run_id": self._mlflow_run, "tracking_uri": mlflow_uri()})

    def log(self, **metrics: Any) -> None:
        """Append one record (with a timestamp)."""
        if self._f is None:
            return
        record = {"time": round(time.time(), 3), **metrics}
        self._f.write(json.dumps(record) + "\n")
        self._f.flush()
        if self._mlflow_run is not None:
            numbers = {k: float(v) for k, v in metrics.items() if k not in ("step", "time") and _number(v)}
            if numbers:
                _client().log_batch(self._mlflow_run, metrics=_metric_list(numbers, int(metrics.get("step", 0))))
        for fn in list(_observers):
            fn(record)

    def close(self) -> None:
        """Flush and close; the MLflow run ends FINISHED, or FAILED / KILLED when an exception is
        on its way out (close runs in the stage's `finally`)."""
        if self._f is not None:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            self._f = None
        if self._mlflow_run is not None:
            error = sys.exc_info()[0]
            status = "FINISHED" if error is None else ("KILLED" if issubclass(error, KeyboardInterrupt) else "FAILED")
            _client().set_terminated(self._mlflow_run, status)


# -- MLflow, through its client API (no global "active run" state) -------------------------------

_parents: list[str] = []  # MLflow runs that new runs nest under (a sweep and its trials)


@contextlib.contextmanager
def parent_run(run_id: str | None) -> Iterator[None]:
    """Runs started within the block are nested under `run_id` (None: no change)."""
    if run_id is None:
        yield
        return
    _parents.append(run_id)
    try:
        yield
    finally:
        _parents.pop()


def _client() -> Any:
    return _mlflow().MlflowClient(tracking_uri=mlflow_uri())


def _artifact_root() -> str | None:
    """Where a new experiment keeps its artifacts: beside a SQLite store's file (MLflow's own
    default is ./mlruns in whatever directory the command runs from); None: the server's choice."""
    uri = mlflow_uri() or ""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts").as_uri()


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v == v and abs(v) != float("inf")


def start_run(name: str, config: dict[str, Any], tags: dict[str, str]) -> str:
    """Create an MLflow run (nested under the current parent, if any) with the config as params; its id."""
    client = _client()
    experiment = os.environ.get("CHATFORGE_EXPERIMENT", "chatforge")
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found is not None else client.create_experiment(experiment, artifact_location=_artifact_root())
    tags = dict(tags)
    commit = git_commit()
    if commit:
        tags["git_commit"] = commit
    if _parents:
        tags["mlflow.parentRunId"] = _parents[-1]
    run = client.create_run(experiment_id, run_name=name, tags=tags)
    from mlflow.entities import Param

    params = [Param(k, str(v)[:6000]) for k, v in flatten(redact.config(config)).items()]
    for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
        client.log_batch(run.info.run_id, params=params[i : i + 100])
    return str(run.info.run_id)


_NOT_IN_NAMES = re.compile(r"[^A-Za-z0-9_\-. :/]")


def _metric_list(values: dict[str, float], step: int) -> list[Any]:
    """MLflow metrics (names reduced to the characters MLflow accepts: "I'm 19" -> "I_m 19")."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(_NOT_IN_NAMES.sub("_", k)[:250], v, now, step) for k, v in values.items()]


def finish(run_dir: Path, summary: dict[str, Any], *, artifacts: tuple[str, ...] = ("config.json", "summary.json", "curves.png")) -> None:
    """Log a finished run's final figures, the hash of the model it wrote and its files to its
    MLflow run (if it has one: tracking was on when it started)."""
    info_path = Path(run_dir) / TRACKING
    if not info_path.is_file():
        return
    info = json.loads(info_path.read_text(encoding="utf-8"))
    client = _mlflow().MlflowClient(tracking_uri=info["tracking_uri"])
    run_id = info["mlflow_run_id"]
    finals = {f"final.{k}": float(v) for k, v in flatten(summary).items() if _number(v)}
    if finals:
        client.log_batch(run_id, metrics=_metric_list(finals, 0))
    for role, _, digest in lineage({}, Path(run_dir)):
        client.set_tag(run_id, f"lineage.{role}", digest)
    for name in artifacts:
        p = Path(run_dir) / name
        if p.is_file():
            client.log_artifact(run_id, str(p))


def log_results(name: str, results: dict[str, Any], files: tuple[Path, ...] = (), *, stage: str = "eval") -> str | None:
    """A one-shot MLflow run (an eval, a learning round): its config as params, its numbers as
    metrics; the run id."""
    if not mlflow_uri():
        return None
    tags = {"stage": stage}
    if (results.get("model") or {}).get("hash"):
        tags["lineage.model"] = results["model"]["hash"]
    if (results.get("data") or {}).get("content_hash"):
        tags["lineage.data"] = results["data"]["content_hash"]
    run_id = start_run(name, results.get("config") or {}, tags)
    client = _client()
    numbers = {k: float(v) for k, v in flatten({k: v for k, v in results.items() if k != "config"}).items() if _number(v)}
    keys = sorted(numbers)[:1000]
    for i in range(0, len(keys), 500):
        client.log_batch(run_id, metrics=_metric_list({k: numbers[k] for k in keys[i : i + 500]}, 0))
    for f in files:
        if Path(f).is_file():
            client.log_artifact(run_id, str(f))
    client.set_terminated(run_id, "FINISHED")
    return run_id


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (json.JSONDecodeError, TypeError, ValueError):
        return 1 << 62  # unreadable (a line cut by a crash): dropped


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Every record of a run's metrics.jsonl."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
