"""The server survives what used to stop it: sampling settings at the edge of floating point
(found by schemathesis: a temperature of 1.7e-44 made every later request wait forever), and
a generation step that raises (its requests get a 500 at once; the next ones are served)."""

from __future__ import annotations

import math

import httpx
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from serve_helpers import serving, tiny_model_dir

from chatforge.engine import Sampling, sample_next

edge_floats = st.sampled_from([5e-324, 1e-300, 2.2250738585072014e-308, 1.7e-44, 1e-30, 1e-8, 0.5, 1.0, 2.0])


@settings(max_examples=300, deadline=None)
@given(
    temperature=edge_floats,
    top_p=edge_floats.filter(lambda p: p <= 1),
    top_k=st.integers(0, 100),
    special=st.sampled_from(["normal", "huge", "-inf", "+inf", "nan", "all -inf but one"]),
    seed=st.integers(0, 2**32),
)
def test_sampling_always_gives_a_token(temperature, top_p, top_k, special, seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(50, generator=g) * 5
    if special == "huge":
        logits *= 1e30
    elif special == "-inf":
        logits[::2] = -math.inf
    elif special == "+inf":
        logits[3] = math.inf
    elif special == "nan":
        logits[7] = math.nan
    elif special == "all -inf but one":
        logits[:] = -math.inf
        logits[11] = 0.0
    token = sample_next(logits, Sampling(temperature=temperature, top_p=top_p, top_k=top_k), g)
    assert 0 <= token < 50
    if special == "all -inf but one":
        assert token == 11
    if special == "+inf":
        assert token == 3


def test_a_failing_step_fails_its_requests_and_the_server_goes_on(tmp_path):
    model = tiny_model_dir(tmp_path)
    with serving(model) as (base, app):
        engine = app.state.server.router.backends[0].engine
        real_forward = engine.model.forward
        calls = {"n": 0}

        def broken_once(*args, **kwargs):  # a fault injected into the model: its first call raises
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("injected fault")
            return real_forward(*args, **kwargs)

        engine.model.forward = broken_once
        body = {"model": "tiny", "messages": [{"role": "user", "content": "Where is my order?"}], "max_tokens": 5}
        r = httpx.post(base + "/v1/chat/completions", json=body, timeout=30)
        assert r.status_code == 500 and r.json()["error"]["code"] == "generation_failed", r.text
        r = httpx.post(base + "/v1/chat/completions", json=body, timeout=30)
        assert r.status_code == 200, r.text
        health = httpx.get(base + "/health", timeout=30)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert "chatforge_generation_errors_total 1.0" in httpx.get(base + "/metrics", timeout=30).text
