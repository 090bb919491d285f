"""The model registry: numbered versions of a model, with lineage, eval results and a stage.

    reg = Registry("registry")
    v = reg.register("runs/learn-3/model", parent="v2", lineage={...}, evals={...})   # "v3", a candidate
    reg.promote("v3")          # v3 serves; the previous production version is kept for rollback
    reg.rollback()             # back to the version that served before
    reg.archive("v1")
    reg.resolve("production")  # the entry serving now; also "candidate", "v3", "latest"

Layout (everything under the registry dir):

    registry.json        {"versions": [...], "production": "v3", "history": ["v1", "v2", "v3"]}
    models/v3/           a copy of the model dir (config, weights, tokenizer)
    .lock                held while the registry changes (several `learn` runs, a person
                         promoting by hand)

Stages: `candidate` (registered, not serving), `production` (exactly one version),
`archived` (kept, never served; its files stay for lineage). `history` lists the versions
that were production, in order; `rollback` goes back one step and archives nothing.

**Atomicity.** A version's files are copied into a staging dir, fsynced and renamed into
place before `registry.json` names it; `registry.json` is rewritten with write-temp,
fsync, rename. A process killed at any point leaves either the old registry or the new
one, and at worst an unnamed model dir that the next registration cleans up. A server
(`chatforge serve --registry DIR`) watches `registry.json` and swaps to the new
production version when it changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from chatforge.atomic import atomic_write_json, staged_dir
from chatforge.config import opt
from chatforge.errors import UserError
from chatforge.ui import QUIET, UI

INDEX = "registry.json"
STAGES = ("candidate", "production", "archived")


class Registry:
    """Versions of a model in a directory; every change holds a file lock and is atomic."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # -- reading ------------------------------------------------------------------------------
    def read(self) -> dict[str, Any]:
        path = self.root / INDEX
        if not path.is_file():
            return {"versions": [], "production": None, "history": []}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise UserError(f"{path}: not a registry index ({e.msg} at line {e.lineno})") from None
        if not isinstance(data, dict) or not isinstance(data.get("versions"), list):
            raise UserError(f"{path}: not a registry index (no versions list)")
        return data

    def versions(self) -> list[dict[str, Any]]:
        return list(self.read()["versions"])

    def resolve(self, ref: str) -> dict[str, Any]:
        """An entry by name ("v3"), or by role: "production" (or "prod"), "candidate" (the newest
        candidate), "latest" (the newest version)."""
        data = self.read()
        versions = data["versions"]
        if ref in ("production", "prod"):
            found = [v for v in versions if v["version"] == data.get("production")]
        elif ref == "candidate":
            found = [v for v in versions if v["stage"] == "candidate"][-1:]
        elif ref == "latest":
            found = versions[-1:]
        else:
            found = [v for v in versions if v["version"] == ref]
        if not found:
            names = ", ".join(v["version"] + f" ({v['stage']})" for v in versions) or "none yet"
            raise UserError(f"{self.root}: no version {ref!r} (versions: {names})")
        return dict(found[0])

    def model_dir(self, ref: str) -> Path:
        return self.root / self.resolve(ref)["path"]

    # -- changing -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """The index, read under the registry's lock; written back (atomically) if the block succeeds."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self.read()
            yield data
            atomic_write_json(self.root / INDEX, data)

    def register(self, model_dir: str | Path, *, parent: str | None = None, lineage: dict[str, Any] | None = None, evals: dict[str, Any] | None = None, note: str = "") -> str:
        """Copy a model dir in as the next version (a candidate); its name."""
        from chatforge.checkpoint import is_model_dir, model_dir_hash

        src = Path(model_dir)
        if not is_model_dir(src):
            raise UserError(f"{src}: not a model dir (config.json and model.safetensors)")
        with self._locked() as data:
            number = 1 + max((int(v["version"][1:]) for v in data["versions"]), default=0)
            name = f"v{number}"
            target = self.root / "models" / name
            if target.exists():  # left by a registration killed before the index named it
                shutil.rmtree(target)
            with staged_dir(target) as tmp:
                for f in src.iterdir():
                    if f.is_file():
                        shutil.copy2(f, tmp / f.name)
            data["versions"].append(
                {
                    "version": name,
                    "stage": "candidate",
                    "path": f"models/{name}",
                    "hash": model_dir_hash(target),
                    "parent": parent,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "source": str(src.resolve()),
                    "lineage": lineage or {},
                    "evals": evals or {},
                    "note": note,
                }
            )
        return name

    def promote(self, ref: str) -> str:
        """Make a version production (the previous one becomes a candidate again, kept for rollback)."""
        with self._locked() as data:
            entry = self._find(data, ref)
            if entry["stage"] == "archived":
                raise UserError(f"{entry['version']} is archived; archived versions are never served")
            for v in data["versions"]:
                if v["stage"] == "production":
                    v["stage"] = "candidate"
            entry["stage"] = "production"
            entry["promoted"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            data["production"] = entry["version"]
            data["history"].append(entry["version"])
            return str(entry["version"])

    def rollback(self) -> str:
        """Serve the version that was production before the current one; its name."""
        with self._locked() as data:
            history = [h for h in data["history"] if self._find(data, h)["stage"] != "archived"]
            current = data.get("production")
            while history and history[-1] == current:
                history.pop()
            if not history:
                raise UserError(f"{self.root}: nothing to roll back to (production history: {', '.join(data['history']) or 'empty'})")
            back = self._find(data, history[-1])
            for v in data["versions"]:
                if v["stage"] == "production":
                    v["stage"] = "candidate"
            back["stage"] = "production"
            data["production"] = back["version"]
            data["history"].append(back["version"])
            return str(back["version"])

    def archive(self, ref: str) -> str:
        with self._locked() as data:
            entry = self._find(data, ref)
            if entry["stage"] == "production":
                raise UserError(f"{entry['version']} is in production; promote another version (or roll back) first")
            entry["stage"] = "archived"
            return str(entry["version"])

    def _find(self, data: dict[str, Any], ref: str) -> dict[str, Any]:
        if ref in ("production", "prod"):
            ref = data.get("production") or ""
        elif ref == "candidate":
            cands = [v["version"] for v in data["versions"] if v["stage"] == "candidate"]
            ref = cands[-1] if cands else ""
        for v in data["versions"]:
            if v["version"] == ref:
                return v
        raise UserError(f"{self.root}: no version {ref!r}")


# -- `chatforge models ...` ----------------------------------------------------------------------


@dataclass
class ModelsListConfig:
    """`chatforge models list`: every version in a registry with its stage and figures."""

    registry: str = opt("registry", "the registry dir")


@dataclass
class ModelsShowConfig:
    """`chatforge models show`: one version: lineage, eval results, where its files are."""

    ref: str = opt("production", "version (v3) or production, candidate, latest", positional=True, metavar="VERSION")
    registry: str = opt("registry", "the registry dir")


@dataclass
class ModelsChangeConfig:
    """`chatforge models promote|archive VERSION` (rollback takes no version)."""

    ref: str = opt("", "version (v3), or candidate", positional=True, metavar="VERSION", required=True)
    registry: str = opt("registry", "the registry dir")


@dataclass
class ModelsRollbackConfig:
    """`chatforge models rollback`: serve the version that served before."""

    registry: str = opt("registry", "the registry dir")


def _figure(entry: dict[str, Any], key: str) -> str:
    value = (entry.get("evals") or {}).get(key)
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def list_main(cfg: ModelsListConfig, ui: UI = QUIET) -> list[dict[str, Any]]:
    from rich.table import Table

    reg = Registry(cfg.registry)
    versions = reg.versions()
    t = Table(title=f"{cfg.registry}: {len(versions)} versions", title_justify="left")
    for c in ("version", "stage", "parent", "created", "task success", "safety declines", "perplexity", "hash"):
        t.add_column(c)
    for v in versions:
        t.add_row(v["version"], v["stage"], v.get("parent") or "-", v["created"], _figure(v, "task_success"), _figure(v, "safety_decline_rate"), _figure(v, "perplexity"), v["hash"][:19])
    ui.out.print(t)
    return versions


def show_main(cfg: ModelsShowConfig, ui: UI = QUIET) -> dict[str, Any]:
    reg = Registry(cfg.registry)
    entry = reg.resolve(cfg.ref)
    entry["dir"] = str(reg.root / entry["path"])
    ui.out.print_json(json.dumps(entry, ensure_ascii=False))
    return entry


def change_main(action: Literal["promote", "archive"]) -> Any:
    def run(cfg: ModelsChangeConfig, ui: UI = QUIET) -> str:
        reg = Registry(cfg.registry)
        name = reg.promote(cfg.ref) if action == "promote" else reg.archive(cfg.ref)
        ui.note(f"{name}: {'production' if action == 'promote' else 'archived'}")
        return name

    return run


def rollback_main(cfg: ModelsRollbackConfig, ui: UI = QUIET) -> str:
    name = Registry(cfg.registry).rollback()
    ui.note(f"{name}: production again")
    return name
