"""Fuzzing the API request schemas (chatforge/serve/app.py) through a real server.

A tiny model behind the real app on a loopback uvicorn (tests/serve_helpers.py `serving`),
driven with httpx. Bodies for POST /v1/chat/completions, /v1/completions and /v1/feedback:
random JSON; valid bodies with a field replaced by a value of another type, a huge or
negative number, NaN or Infinity (which Python's JSON reader accepts), nested junk, a lone
surrogate escape, a long string or a long key; unknown fields; bytes that are not JSON or
not UTF-8.

"Clear error" here: a 4xx whose body is OpenAI's error shape, {"error": {"message", "type",
"param", "code"}}, and small (it does not echo a huge input). Never a 5xx; a 200 is a
completion (or a stream ending in `data: [DONE]`), or {"status": "ok"} for feedback. After
the fuzzing the server is healthy and holds no sequence.

CHATFORGE_FUZZ_EXAMPLES multiplies the example counts (tests/reliability/fuzzing.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fuzzing import fuzz_settings, json_values
from hypothesis import example, given
from hypothesis import strategies as st
from serve_helpers import serving, tiny_model_dir

from chatforge.serve.config import Limits

LIMITS = Limits(max_body_bytes=200_000, max_message_chars=20_000, max_tokens=64, timeout=30)
ERROR_BODY_LIMIT = 2_000  # bytes: an error never echoes a long input

CHAT = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where is my order?"}], "max_tokens": 3, "seed": 1}
COMPLETION = {"prompt": "Once upon", "max_tokens": 3, "seed": 1}
FEEDBACK = {"completion_id": "chatcmpl-x", "rating": "up", "comment": "good", "messages": [{"role": "user", "content": "hi"}], "reply": "hello"}
BASES = {"/v1/chat/completions": CHAT, "/v1/completions": COMPLETION, "/v1/feedback": FEEDBACK}
FIELDS = {
    "/v1/chat/completions": [*CHAT, "temperature", "top_p", "top_k", "repetition_penalty", "stop", "n", "stream", "stream_options", "user", "metadata", "logprobs", "top_logprobs", "max_completion_tokens", "model", "extra_field"],
    "/v1/completions": [*COMPLETION, "temperature", "top_p", "stop", "n", "stream", "logprobs", "echo", "model"],
    "/v1/feedback": [*FEEDBACK, "corrected", "user", "extra_field"],
}  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, httpx.Client]]:
    model = tiny_model_dir(tmp_path_factory.mktemp("api"))
    with serving(model, limits=LIMITS, log_conversations=True) as (url, _), httpx.Client(base_url=url, timeout=60) as client:
        yield url, client
        # after all the fuzzing: healthy, nothing left running or waiting
        deadline = time.monotonic() + 10
        while True:
            health = client.get("/health").json()
            if (health["active"], health["waiting"]) == (0, 0) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert health["status"] == "ok" and (health["active"], health["waiting"]) == (0, 0), health


def check_response(r: httpx.Response) -> None:
    """No 5xx; an error is OpenAI's shape and small; a 200 is a completion, a stream or an ok."""
    assert r.status_code < 500, f"{r.status_code}: {r.text[:500]}"
    if r.status_code >= 400:
        assert len(r.content) <= ERROR_BODY_LIMIT, f"a {len(r.content)}-byte error body: {r.text[:300]}..."
        err = r.json()["error"]
        assert set(err) == {"message", "type", "param", "code"} and isinstance(err["message"], str) and err["message"]
        assert isinstance(err["type"], str) and all(err[k] is None or isinstance(err[k], str) for k in ("param", "code"))
        return
    assert r.status_code == 200
    if r.headers["content-type"].startswith("text/event-stream"):
        events = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
        assert events and events[-1] == "[DONE]", r.text[-300:]
        for e in events[:-1]:
            assert "choices" in json.loads(e)
        return
    body = r.json()
    assert body.get("status") == "ok" or body["choices"], body


def post(client: httpx.Client, path: str, body: Any) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body, allow_nan=True).encode()
    return client.post(path, content=raw, headers={"content-type": "application/json"})


paths = st.sampled_from(sorted(BASES))
odd = st.one_of(
    json_values,
    st.sampled_from([float("nan"), float("inf"), -float("inf"), -1, 0, 2**31, 2**63, 2**64, 10**30, -(10**30), 1e308, "\ud800", "x" * 19_000, "y" * 25_000]),
    st.dictionaries(st.sampled_from(["k" * 50_000, "role", "content", "type", "text", "include_usage"]), json_values, max_size=2),
    st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "developer", "tool", ""]), "content": json_values}), max_size=3),
)


def near_valid(path: str) -> st.SearchStrategy[dict[str, Any]]:
    base = BASES[path]
    return st.builds(lambda edits, drop: {**{k: v for k, v in base.items() if k not in drop}, **edits}, st.dictionaries(st.sampled_from(FIELDS[path]), odd, min_size=1, max_size=3), st.sets(st.sampled_from(sorted(base)), max_size=1))


@fuzz_settings(60)
@given(path=paths, body=st.one_of(json_values, st.binary(max_size=40), st.sampled_from([b"", b"{", b'{"messages": [', b"\xff\xfe{}", b"[" * 50_000, b"NaN"])))
def test_random_bodies_are_never_a_5xx(server: tuple[str, httpx.Client], path: str, body: Any) -> None:
    check_response(post(server[1], path, body))


@fuzz_settings(100)
@given(data=st.data())
@example(data=None)
def test_near_valid_bodies_are_never_a_5xx(server: tuple[str, httpx.Client], data: st.DataObject | None) -> None:
    if data is None:  # inputs that were a 500 or an echo before the fixes
        cases = [
            ("/v1/chat/completions", {**CHAT, "seed": 2**70}),  # torch: Overflow when unpacking long
            ("/v1/completions", {**COMPLETION, "seed": -(2**64)}),
            ("/v1/completions", {**COMPLETION, "seed": 2**64 - 1, "n": 2}),  # 200: choice 1's seed wraps to 0
            ("/v1/chat/completions", {**CHAT, "messages": [{"role": "user", "content": "hi\ud800"}]}),  # tiktoken: surrogates not allowed
            ("/v1/completions", {**COMPLETION, "prompt": "\udfff"}),
            ("/v1/chat/completions", {**CHAT, "user": "\ud800"}),  # the store: surrogates not allowed
            ("/v1/feedback", {**FEEDBACK, "messages": [{"role": "user", "content": "\ud800"}]}),
            ("/v1/chat/completions", {**CHAT, "metadata": {"k" * 50_000: 1}}),  # the error's param echoed the 50,000-char key
        ]
        for path, body in cases:
            r = post(server[1], path, body)
            assert r.status_code == (200 if body.get("n") == 2 else 400), (path, r.status_code, r.text[:300])
            check_response(r)
        return
    path = data.draw(paths, "path")
    check_response(post(server[1], path, data.draw(near_valid(path), "body")))


def test_the_response_check_fails_on_an_echoing_error() -> None:
    """The check can fail: an error body that echoes a long input, or is not OpenAI's shape."""
    echo = httpx.Response(400, json={"error": {"message": "x" * 5000, "type": "invalid_request_error", "param": None, "code": None}})
    with pytest.raises(AssertionError):
        check_response(echo)
    with pytest.raises((AssertionError, KeyError)):
        check_response(httpx.Response(422, json={"detail": [{"loc": ["body"], "msg": "bad"}]}))
    with pytest.raises(AssertionError):
        check_response(httpx.Response(500, text="Internal Server Error"))


@pytest.mark.slow
@fuzz_settings(2000)
@given(data=st.data())
def test_near_valid_bodies_long_run(server: tuple[str, httpx.Client], data: st.DataObject) -> None:
    path = data.draw(paths, "path")
    check_response(post(server[1], path, data.draw(st.one_of(near_valid(path), json_values), "body")))


def test_module_runs_against_a_real_server(server: tuple[str, httpx.Client]) -> None:
    """The fixture is a real server: a valid request is answered (so the fuzz tests are not
    checking a stub)."""
    r = post(server[1], "/v1/chat/completions", CHAT)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["role"] == "assistant"
