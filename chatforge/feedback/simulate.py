"""Simulated users: they bring support questions to a served model and rate its answers.

    stats = simulate("http://127.0.0.1:8000", live_users(seed, 200, exclude=train + test))

Each user sends one conversation (up to its last user turn) to /v1/chat/completions with
their user id and the conversation's intent in `metadata`, and checks the reply against
the facts a right answer states (the support world knows them: chatforge/eval/support.py).
A right answer gets a thumbs up; a wrong one a thumbs down and, from a share of users
(`correct`), the right answer as a correction, as a support agent reviewing the chat would
write it. Only the standard library talks HTTP here, so the core install can run it.

This is how `chatforge quickstart --simulate-users N` and benchmarks/learning_loop.py
close the loop offline: serve, collect feedback, `chatforge learn`, compare.
"""

from __future__ import annotations

import json
import random
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from chatforge.eval.support import score_reply


def _post(url: str, body: dict[str, Any], key: str = "", timeout: float = 120) -> dict[str, Any]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return dict(json.loads(r.read()))


def simulate(base_url: str, rows: list[dict[str, Any]], *, correct: float = 1.0, max_tokens: int | None = None, workers: int = 4, seed: int = 0, api_key: str = "", on_done: Callable[[], None] | None = None) -> dict[str, Any]:
    """Every row's user asks, checks and rates; returns counts and task success per intent.
    Without `max_tokens` the server gives each reply the room the conversation leaves (and
    drops a long conversation's oldest turns to keep some)."""
    rng = random.Random(seed)
    corrects = [rng.random() < correct for _ in rows]
    lock = threading.Lock()
    per_intent: Counter[str] = Counter()
    per_intent_ok: Counter[str] = Counter()
    counts: Counter[str] = Counter()

    def one(i: int) -> None:
        row = rows[i]
        messages = row["messages"][:-1] if row["messages"][-1]["role"] == "assistant" else row["messages"]
        intent = row["meta"].get("intent", "unknown")
        body: dict[str, Any] = {"messages": messages, "temperature": 0, "user": f"sim-{seed}-{i}", "metadata": {"intent": intent}}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        try:
            reply = _post(base_url + "/v1/chat/completions", body, api_key)
        except urllib.error.HTTPError as e:
            if e.code != 400:
                raise
            # Too long for the model's context with room for a reply: the server says so,
            # the user goes away unanswered (counted), as a real client would.
            with lock:
                counts["refused"] += 1
            return
        text = reply["choices"][0]["message"]["content"] or ""
        ok = score_reply(text, row["meta"])["ok"]
        rating: dict[str, Any] = {"completion_id": reply["id"], "rating": "up" if ok else "down", "user": f"sim-{seed}-{i}"}
        if not ok and corrects[i] and row["messages"][-1]["role"] == "assistant":
            rating["corrected"] = row["messages"][-1]["content"]
        _post(base_url + "/v1/feedback", rating, api_key)
        with lock:
            per_intent[intent] += 1
            per_intent_ok[intent] += ok
            counts["up" if ok else "down"] += 1
            counts["corrected"] += "corrected" in rating

    def counted(i: int) -> None:
        try:
            one(i)
        finally:
            if on_done is not None:
                on_done()

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(counted, range(len(rows))))
    n = sum(per_intent.values())
    return {
        "users": n,
        "success": sum(per_intent_ok.values()) / n if n else 0.0,
        "per_intent": {k: per_intent_ok[k] / per_intent[k] for k in sorted(per_intent)},
        **dict(counts),
    }


@contextmanager
def served(model_dir: str, store: str, *, name: str = "assistant", log_conversations: bool = True, max_batch: int = 8) -> Iterator[str]:
    """`chatforge serve` for a model dir (called `name` in the API and the store) in this
    process, on a free 127.0.0.1 port; yields its URL."""
    import socket

    import uvicorn

    from chatforge.checkpoint import load_model_dir
    from chatforge.engine import Engine
    from chatforge.serve.app import create_app
    from chatforge.serve.config import ServeConfig
    from chatforge.tokenizer import Tokenizer

    cfg = ServeConfig(model=model_dir, store=store, log_conversations=log_conversations, max_batch=max_batch)
    engine = Engine(load_model_dir(model_dir), Tokenizer.load(model_dir), max_batch=max_batch)
    app = create_app(cfg, engine, name)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the server did not start")
            thread.join(0.05)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
