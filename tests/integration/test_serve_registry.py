"""`chatforge serve --registry`: hot reload under load, and A/B tests, through a real server
on 127.0.0.1 with the `openai` client. Two random models drawn with different seeds answer
a seeded request differently, so every reply shows which version wrote it."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import openai
import pytest
from serve_helpers import make_engine, serving, tiny_model_dir

from chatforge.engine import Sampling
from chatforge.feedback.store import FeedbackStore, hash_user
from chatforge.registry import Registry

MESSAGES = [{"role": "user", "content": "Where is my order?"}]
TOKENS = 24


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {"v1": tiny_model_dir(root, seed=0, name="m1"), "v2": tiny_model_dir(root, seed=1, name="m2")}


@pytest.fixture(scope="module")
def want(models) -> dict[str, str]:
    """Each version's reply to MESSAGES at temperature 1 with seed 7."""
    s = Sampling(temperature=1.0, max_tokens=TOKENS, seed=7)
    out = {v: "".join(make_engine(m).chat(MESSAGES, s)) for v, m in models.items()}
    assert out["v1"] != out["v2"] and all(out.values())
    return out


def registry(root: Path, models: dict[str, Path]) -> Registry:
    """v1 in production, v2 a candidate."""
    reg = Registry(root / "registry")
    assert [reg.register(models["v1"]), reg.register(models["v2"])] == ["v1", "v2"]
    reg.promote("v1")
    return reg


def client(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base + "/v1", api_key="none", max_retries=0, timeout=60)


def _metric(text: str, name: str, **labels: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()))


def test_hot_reload_under_load_fails_no_request(models, want, tmp_path):
    reg = registry(tmp_path, models)
    db = tmp_path / "fb.db"
    with serving(None, registry=str(reg.root), reload_interval=0.2, log_conversations=True, store=str(db), max_batch=8) as (base, app):
        router = app.state.server.router
        old = router.default
        assert [m.id for m in client(base).models.list().data] == ["v1"]
        done: list[tuple[float, float, set[str], str]] = []  # (start, end, models named by the chunks, text)
        failed: list[str] = []
        stop = threading.Event()

        def user() -> None:
            c = client(base)
            while not stop.is_set():
                t0 = time.time()
                try:
                    chunks = list(c.chat.completions.create(model="production", messages=MESSAGES, temperature=1.0, seed=7, max_tokens=TOKENS, stream=True))
                    done.append((t0, time.time(), {ch.model for ch in chunks}, "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)))
                except Exception as e:  # any failure at all is what this test is about
                    failed.append(repr(e))

        users = [threading.Thread(target=user) for _ in range(4)]
        for t in users:
            t.start()
        try:
            deadline = time.time() + 60
            while len(done) < 8 and time.time() < deadline:
                time.sleep(0.05)
            reg.promote("v2")  # as `chatforge models promote v2` does, from outside the server
            while not any("v2" in m for _, _, m, _ in done) and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(1.0)
        finally:
            stop.set()
            for t in users:
                t.join(timeout=60)
        swapped = router.reloads[-1].at
        assert failed == []
        assert all(len(m) == 1 for _, _, m, _ in done), "every chunk of a reply names the same version"
        by = Counter(next(iter(m)) for _, _, m, _ in done)
        assert by["v1"] >= 8 and by["v2"] >= 4, by
        assert all(text == want[next(iter(m))] for _, _, m, text in done), "each reply is its version's own"
        # sent 50 ms or more before the swap (a request sent just before it may reach the router after)
        across = [d for d in done if d[0] < swapped - 0.05 and swapped < d[1]]
        assert across and all(m == {"v1"} for _, _, m, _ in across), "requests running at the swap finish on the old version"
        assert all(m == {"v2"} for t0, _, m, _ in done if t0 > swapped + 0.05), "requests after the swap get the new version"
        # the old engine stops once idle; the API names the new version
        for _ in range(100):
            if old.retired:
                break
            time.sleep(0.05)
        assert old.retired and not old.worker.alive
        assert [m.id for m in client(base).models.list().data] == ["v2"]
        health = httpx.get(base + "/health").json()
        assert health["versions"] == {"": "v2"} and health["last_reload"]["error"] is None
        metrics = httpx.get(base + "/metrics").text
        assert _metric(metrics, "chatforge_model_requests_total", model="v1") == by["v1"]
        assert _metric(metrics, "chatforge_model_requests_total", model="v2") == by["v2"]
    stored = Counter(t["model"] for t in FeedbackStore.open(db).turns())
    assert stored == by
    print(f"\nhot reload: {len(done)} streaming requests ({by['v1']} v1, {by['v2']} v2), {len(across)} across the swap, {len(failed)} failed")


def test_a_broken_version_keeps_the_old_one_serving(models, want, tmp_path):
    reg = registry(tmp_path, models)
    (reg.root / "models" / "v2" / "model.safetensors").write_bytes(b"not weights")
    with serving(None, registry=str(reg.root), reload_interval=0.1) as (base, app):
        reg.promote("v2")
        for _ in range(100):
            if app.state.server.router.reloads:
                break
            time.sleep(0.05)
        last = app.state.server.router.reloads[-1]
        assert last.error and last.versions == {"": "v1"}
        r = client(base).chat.completions.create(model="v1", messages=MESSAGES, temperature=1.0, seed=7, max_tokens=TOKENS)
        assert r.model == "v1" and r.choices[0].message.content == want["v1"]
        assert httpx.get(base + "/health").json()["last_reload"]["error"]


def test_ab_users_stick_to_their_variant_and_the_split_holds(models, want, tmp_path):
    reg = registry(tmp_path, models)
    db = tmp_path / "fb.db"
    ab = ["A=production:0.8", "B=candidate:0.2"]
    version = {"A": "v1", "B": "v2"}
    with serving(None, registry=str(reg.root), ab=ab, ab_experiment="exp1", log_conversations=True, store=str(db)) as (base, app):
        c = client(base)
        # 40 users, 2 requests each, through HTTP: the same version answers a user each time
        got: dict[str, list[str]] = {}
        for i in range(40):
            for _ in range(2):
                r = c.chat.completions.create(model="production", messages=MESSAGES, temperature=1.0, seed=7, max_tokens=TOKENS, user=f"user-{i}")
                assert r.choices[0].message.content == want[r.model]
                got.setdefault(f"user-{i}", []).append(r.model)
        assert all(len(set(v)) == 1 for v in got.values())
        # a rating is counted against the version and variant that wrote the reply
        assert httpx.post(base + "/v1/feedback", json={"completion_id": r.id, "rating": "up"}).status_code == 200
        rated = (r.model, {"v1": "A", "v2": "B"}[r.model])
        # requests without a user: a variant each, drawn per request, no assignment stored
        for _ in range(6):
            c.chat.completions.create(model="production", messages=MESSAGES, max_tokens=2)
        # 2,000 more users through the server's routing (what each request does before generating)
        router = app.state.server.router
        import asyncio

        async def picks() -> list[str | None]:
            out = []
            for i in range(2000):
                b, variant = await router.pick(f"sim-{i}")
                router.release(b)
                assert b.version == version[variant or ""]
                out.append(variant)
            return out

        variants = asyncio.run(picks())
        share_b = variants.count("B") / len(variants)
        metrics = httpx.get(base + "/metrics").text
    assert abs(share_b - 0.2) < 0.025, share_b
    store = FeedbackStore.open(db)
    turns = list(store.turns())
    assert len(turns) == 86
    for t in turns:
        assert t["model"] == version[t["variant"]] and t["experiment"] == "exp1"
    with_user = [t for t in turns if t["user"]]
    assert {t["user"]: t["variant"] for t in with_user} == {hash_user(u): {"v1": "A", "v2": "B"}[m[0]] for u, m in got.items()}
    assert store.counts()["ab_assignments"] == 40 + 2000
    for variant, v in version.items():
        n = sum(1 for t in turns if t["variant"] == variant)
        assert _metric(metrics, "chatforge_model_requests_total", model=v, variant=variant) == n
        assert _metric(metrics, "chatforge_model_feedback_total", model=v, variant=variant, rating="up") == ((v, variant) == rated)
    (rating,) = store.rated_turns()
    assert (rating["model"], rating["variant"], rating["experiment"]) == (*rated, "exp1")
    print(f"\nA/B split: B share {share_b:.4f} of 2,000 simulated users (configured 0.2)")


def test_chatforge_serve_registry_follows_chatforge_models_promote(models, want, tmp_path):
    """The commands as a person runs them: `chatforge serve --registry`, then `chatforge models promote` in another process."""
    import subprocess

    from serve_helpers import free_port, wait_until_up
    from test_cli import EXE, cf

    reg = registry(tmp_path, models)
    port = free_port()
    proc = subprocess.Popen([EXE, "serve", "--registry", str(reg.root), "--port", str(port), "--store", str(tmp_path / "fb.db"), "--reload-interval", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base)
        ask = lambda: client(base).chat.completions.create(model="production", messages=MESSAGES, temperature=1.0, seed=7, max_tokens=TOKENS)  # noqa: E731
        assert (ask().model, ask().choices[0].message.content) == ("v1", want["v1"])
        cf("models", "promote", "v2", "--registry", str(reg.root))
        deadline = time.time() + 30
        while ask().model != "v2" and time.time() < deadline:
            time.sleep(0.1)
        assert ask().choices[0].message.content == want["v2"]
        cf("models", "rollback", "--registry", str(reg.root))
        while ask().model != "v1" and time.time() < deadline:
            time.sleep(0.1)
        assert ask().choices[0].message.content == want["v1"]
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert "serving v1" in out + err and "now serving v2" in out + err
