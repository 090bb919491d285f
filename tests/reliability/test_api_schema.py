"""The API against its own OpenAPI document, with schemathesis: a real server on 127.0.0.1 with
an API key, every route, generated requests (valid and invalid). No 5xx; every status code,
content type and body (errors and event streams included) as documented; auth on every
protected route; small error bodies; oversize bodies refused before they are read whole.

`positive_data_acceptance` is left out: the server's limits (max_tokens, n, context length,
message count) are settings, not part of the schema, so a schema-valid request may rightly
get a 400. Examples per route: CHATFORGE_API_EXAMPLES (default 25; the reliability report
runs more).
"""

from __future__ import annotations

import os
import socket

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.errors import FailureGroup
from serve_helpers import serving, tiny_model_dir

from chatforge.serve.config import Limits

KEY = "sk-cf-schema-test"
AUTH = {"Authorization": f"Bearer {KEY}"}
EXAMPLES = int(os.environ.get("CHATFORGE_API_EXAMPLES", "25"))
LIMITS = Limits(max_body_bytes=64_000, max_tokens=32, max_n=2, timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    model = tiny_model_dir(tmp_path_factory.mktemp("api-schema"))
    with serving(model, api_key=KEY, limits=LIMITS, max_batch=4, queue=16) as (base, _app):
        yield base


def operations(base: str) -> list:
    schema = schemathesis.openapi.from_url(base + "/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode))
def test_every_route_keeps_its_schema(server, mode):
    """Each route, with requests the schema allows (positive) and requests it forbids (negative)."""
    ops = operations(server)
    assert {f"{op.method.upper()} {op.path}" for op in ops} >= {"POST /v1/chat/completions", "POST /v1/completions", "POST /v1/feedback", "GET /v1/models", "GET /metrics", "GET /health"}
    if mode == schemathesis.GenerationMode.NEGATIVE:
        ops = [op for op in ops if op.method.upper() == "POST"]  # the GET routes take no input to get wrong
    tried: dict[str, int] = {}

    def run(op) -> None:
        label = f"{op.method.upper()} {op.path}"

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:
            tried[label] = tried.get(label, 0) + 1
            response = case.call(headers=AUTH, timeout=60)
            try:
                case.validate_response(response, excluded_checks=[positive_data_acceptance], headers=AUTH)
            except FailureGroup as group:
                # 413 (a body over the server's limit) is a rejection too; schemathesis's list of
                # rejection codes does not have it
                if not (response.status_code == 413 and all(f.code == "ST201" for f in group.exceptions)):
                    raise

        check()

    for op in ops:
        run(op)
    assert len(tried) == len(ops), tried


def test_every_protected_route_needs_the_key(server):
    doc = httpx.get(server + "/openapi.json", timeout=30).json()
    open_routes = {("GET", "/health"), ("GET", "/")}
    routes = [(m.upper(), p) for p, ops in doc["paths"].items() for m in ops]
    assert len(routes) >= 7
    for method, path in routes:
        if (method, path) in open_routes:
            continue
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
            r = httpx.request(method, server + path, headers=headers, json={}, timeout=30)
            assert r.status_code == 401, (method, path, headers, r.text)
            assert r.json()["error"]["type"] == "authentication_error" or "key" in r.json()["error"]["message"]
    for method, path in open_routes:
        assert httpx.request(method, server + path, timeout=30).status_code == 200


def test_error_bodies_do_not_echo_big_inputs(server):
    big = "x" * 50_000
    bodies = [
        {"model": big, "messages": [{"role": "user", "content": "hi"}]},  # unknown model named in the error
        {"messages": [{"role": big[:40_000], "content": "hi"}]},  # an invalid enum value
        {"messages": [{"role": "user", "content": "hi"}], "stop": [big[:1_000]] * 50},  # too many stop strings
        {"messages": "not a list " + big[:40_000]},
    ]
    for body in bodies:
        r = httpx.post(server + "/v1/chat/completions", json=body, headers=AUTH, timeout=30)
        assert 400 <= r.status_code < 500, r.text[:300]
        assert len(r.content) < 2_000, (r.status_code, len(r.content))
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}


def test_an_oversize_body_is_refused_before_it_is_read(server):
    """A client that announces or streams far more than the limit gets 413 while it is still
    sending: the server stops reading at the limit."""
    host, port = server.removeprefix("http://").split(":")
    # announced: Content-Length far over the limit, and only the first bytes sent
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: 500000000\r\n\r\n".encode() + b"{" * 1000)
        answer = s.recv(4096).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    # streamed: chunked, with no length: 100 KB of a body that never ends; the 413 comes
    # without the rest (a server that needed the whole body would wait forever)
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        for _ in range(10):
            s.sendall(b"2710\r\n" + b" " * 10_000 + b"\r\n")  # 10,000 bytes a chunk
        answer = s.recv(4096).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
