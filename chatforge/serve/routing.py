"""Which model answers a request: the versions being served, A/B routing and hot reload.

    router = Router(cfg, store)                     # the model dir, or the registry's versions
    backend, variant = await router.pick(user)      # held for the whole request ...
    router.release(backend)                         # ... and given back when it ends

Routes: one (`""`) for a plain server; with `--ab A=production:0.9 B=candidate:0.1` one per
variant, each naming a registry version (or a role: production, candidate, latest). A
request's user id is assigned a variant once, through the feedback store (sticky and
deterministic by the id's hash, so several server processes agree); a request without a
`user` gets a variant drawn at random for that request alone (it is not an assignment:
nothing is stored for it, and it counts as a turn, never as a user).

**Hot reload.** With `--registry`, `watch()` polls registry.json's mtime every
`--reload-interval` seconds. When a route's version changes (a promote, a rollback, a new
candidate), the new version is loaded in a thread while the old one keeps answering,
then swapped in: a request holds the backend it started on to its end, new requests get
the new one, and the old backend's engine thread stops once no request holds it (or
after the request timeout, past which no request can still be running). A load that
fails leaves the old version serving and is retried at the next change of the registry.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatforge.engine import Engine
from chatforge.errors import UserError
from chatforge.serve.config import ServeConfig, ab_split
from chatforge.serve.worker import Worker
from chatforge.ui import QUIET, UI


@dataclass(eq=False)
class Backend:
    """One model being served: its engine, the engine's thread and its name in the API."""

    version: str  # the registry version ("v3"), or the model's name for a plain model dir
    engine: Engine
    worker: Worker
    users: int = 0  # requests holding it
    retired: bool = False


def load_backend(version: str, path: Path, cfg: ServeConfig, on_step: Callable[[Engine], None] | None) -> Backend:
    """Load a model dir into an engine with its (not yet started) worker thread."""
    engine = Engine.load(path, cfg.dtype, max_batch=cfg.max_batch)
    return Backend(version, engine, Worker(engine, on_step=on_step))


@dataclass
class Reload:
    """One swap (or failed attempt), for /health and the log."""

    at: float
    versions: dict[str, str]
    error: str = ""


class Router:
    """The backends serving each route; picks one per request; swaps them on a registry change."""

    def __init__(self, cfg: ServeConfig, store: Any, *, engine: Engine | None = None, name: str = "", on_step: Callable[[Engine], None] | None = None, ui: UI = QUIET) -> None:
        self.cfg, self.store, self.on_step, self.ui = cfg, store, on_step, ui
        spec = ab_split(cfg.ab) if cfg.ab else {"": ("production", 1.0)}
        self.refs = {route: ref for route, (ref, _) in spec.items()}  # route -> registry ref
        self.split = {route: w for route, (_, w) in spec.items()}
        self.experiment = cfg.ab_experiment if cfg.ab else ""
        self.reloads: list[Reload] = []
        self._assigned: OrderedDict[str, str] = OrderedDict()  # user -> variant, a bounded cache of the store's
        self._stamp: tuple[int, int, int] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self.serving: dict[str, Backend] = {}
        if engine is not None:
            self.serving[""] = Backend(name, engine, Worker(engine, on_step=on_step))
        elif cfg.registry:
            self._stamp = self._registry_stamp()
            loaded: dict[str, Backend] = {}
            for route, (version, path) in self._targets().items():
                if version not in loaded:
                    loaded[version] = load_backend(version, path, cfg, on_step)
                self.serving[route] = loaded[version]
        else:
            path = Path(cfg.model)
            name = cfg.model_name or path.resolve().name
            if name == "model":  # RUN/model: the run's name says more
                name = path.resolve().parent.name
            self.serving[""] = load_backend(name, path, cfg, on_step)

    # -- what is served ------------------------------------------------------------------------
    @property
    def backends(self) -> list[Backend]:
        """The backends new requests may get (each once)."""
        return list(dict.fromkeys(self.serving.values()))

    @property
    def default(self) -> Backend:
        return next(iter(self.serving.values()))

    def names(self) -> set[str]:
        """What a request's `model` may say: a served version, a role of the registry, the --model-name."""
        return {b.version for b in self.backends} | ({*self.refs.values(), "production"} if self.cfg.registry else set()) | ({self.cfg.model_name} - {""})

    def start(self) -> None:
        for b in self.backends:
            b.worker.start()

    async def stop(self) -> None:
        for t in list(self._retiring):
            t.cancel()
        for b in self.backends:
            await asyncio.to_thread(b.worker.stop)

    # -- per request -----------------------------------------------------------------------------
    async def pick(self, user: str | None) -> tuple[Backend, str | None]:
        """The backend to answer `user`, and the A/B variant (None without a test); hold it until `release`."""
        variant: str | None = None
        if self.experiment:
            if user:
                variant = self._assigned.get(user)
                if variant is None:
                    variant = self._assigned[user] = str(await asyncio.to_thread(self.store.assign, user, self.experiment, self.split))
                    if len(self._assigned) > 100_000:
                        self._assigned.popitem(last=False)
            else:  # no user id: a per-request draw, stored nowhere
                variant = random.choices(list(self.split), weights=list(self.split.values()))[0]
        b = self.serving[variant or ""]
        b.users += 1
        return b, variant

    def release(self, b: Backend) -> None:
        b.users = max(0, b.users - 1)

    # -- hot reload ---------------------------------------------------------------------------------
    def _registry_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(Path(self.cfg.registry) / "registry.json")
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_ino, st.st_size)  # the index is replaced by a rename: a new inode

    def _targets(self) -> dict[str, tuple[str, Path]]:
        """Each route's version and model dir, as the registry says now."""
        from chatforge.registry import Registry

        reg = Registry(self.cfg.registry)
        out = {}
        for route, ref in self.refs.items():
            try:
                entry = reg.resolve(ref)
            except UserError as e:
                what = f"--ab {route}={ref}" if route else "--registry"
                raise UserError(f"{what}: {e}" + ("; promote a version first (chatforge models promote VERSION)" if ref in ("production", "prod") else "")) from None
            out[route] = (str(entry["version"]), reg.root / entry["path"])
        return out

    async def watch(self) -> None:
        """Poll the registry and reload when it changes, until cancelled."""
        while True:
            await asyncio.sleep(self.cfg.reload_interval)
            stamp = await asyncio.to_thread(self._registry_stamp)
            if stamp == self._stamp:
                continue
            self._stamp = stamp
            try:
                await self.reload()
            except Exception as e:  # a broken index or model dir: keep serving what we have
                self.reloads.append(Reload(time.time(), self.versions(), error=str(e)))
                self.ui.warn(f"registry changed but the reload failed ({e}); still serving {self.versions()}")

    def versions(self) -> dict[str, str]:
        return {route: b.version for route, b in self.serving.items()}

    async def reload(self) -> bool:
        """Swap in the versions the registry names now; True if anything changed."""
        targets = await asyncio.to_thread(self._targets)
        by_version = {b.version: b for b in self.backends}
        new: dict[str, Backend] = {}
        for route, (version, path) in targets.items():
            b = by_version.get(version)
            if b is None:
                b = by_version[version] = await asyncio.to_thread(load_backend, version, path, self.cfg, self.on_step)
                b.worker.start()
            new[route] = b
        if new == self.serving:
            return False
        old = [b for b in self.backends if b not in new.values()]
        self.serving = new  # from here on, new requests get the new backends
        self.reloads.append(Reload(time.time(), self.versions()))
        self.ui.note(f"now serving {', '.join(f'{r}={v}' if r else v for r, v in self.versions().items())}")
        for b in old:
            task = asyncio.create_task(self._retire(b))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        return True

    async def _retire(self, b: Backend) -> None:
        """Stop a swapped-out backend once no request holds it (at the latest after the request timeout)."""
        deadline = time.monotonic() + self.cfg.limits.timeout + 5
        while (b.users or b.engine.active or b.engine.waiting) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.to_thread(b.worker.stop)
        b.retired = True


@dataclass
class RecentTurns:
    """completion id -> (version, variant) of recent replies, so a rating is counted against the
    version that wrote the reply (bounded: the oldest are forgotten first)."""

    limit: int = 100_000
    items: OrderedDict[str, tuple[str, str | None]] = field(default_factory=OrderedDict)

    def add(self, rid: str, version: str, variant: str | None) -> None:
        self.items[rid] = (version, variant)
        if len(self.items) > self.limit:
            self.items.popitem(last=False)

    def get(self, rid: str) -> tuple[str, str | None] | None:
        return self.items.get(rid)
