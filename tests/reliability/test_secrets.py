"""Secrets never appear in logs or reports: the API key a server is started with, and the
password inside a database URL, are searched for in everything the commands print and write.

With a PostgreSQL server (CHATFORGE_TEST_POSTGRES; `.ci/postgres.sh` gives its role a
password that appears nowhere else) the store is that database; without one the tests use
a URL with a made-up password where a command must fail, and SQLite where it must work.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from serve_helpers import free_port, tiny_model_dir, wait_until_up

from chatforge import redact

EXE = str(Path(sys.executable).with_name("chatforge"))
KEY = "sk-cf-test-Zq81xVw3"


def _everything_written(root: Path) -> bytes:
    """Every file under `root`, concatenated (databases, configs, logs, reports)."""
    return b"\n".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def _password(url: str) -> str | None:
    import sqlalchemy as sa

    return sa.engine.make_url(url).password


def _pg_url() -> str | None:
    url = os.environ.get("CHATFORGE_TEST_POSTGRES")
    if not url and os.environ.get("CHATFORGE_POSTGRES_REQUIRED") == "1":
        pytest.fail("no PostgreSQL server: set CHATFORGE_TEST_POSTGRES")
    return url or None


def test_redaction_rules():
    assert redact.url("postgresql://u:p4ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact.text("failed: postgresql+psycopg://u:p%40ss@h/db (x)") == "failed: postgresql+psycopg://u:***@h/db (x)"
    assert redact.url("sqlite:////tmp/f.db") == "sqlite:////tmp/f.db"
    assert redact.url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
    hidden = redact.config({"api_key": KEY, "limits": {"token": "t"}, "store": "postgresql://a:b@c/d", "keys": ["x://u:pw@h"], "empty": {"api_key": ""}})
    assert hidden == {"api_key": "***", "limits": {"token": "***"}, "store": "postgresql://a:***@c/d", "keys": ["x://u:***@h"], "empty": {"api_key": ""}}


def test_a_server_never_logs_its_key_or_its_database_password(tmp_path):
    model = tiny_model_dir(tmp_path / "models")
    pg = _pg_url()
    store = pg or str(tmp_path / "feedback.db")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text("sk-cf-second-key-Hh72\n")
    proc = subprocess.Popen(
        [EXE, "serve", "--model", str(model), "--port", str(port), "--api-key", KEY, "--api-keys-file", str(keys_file), "--store", store, "--log-conversations", "--model-name", "tiny"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
    )
    try:
        wait_until_up(base)
        auth = {"Authorization": f"Bearer {KEY}"}
        chat = {"model": "tiny", "messages": [{"role": "user", "content": "Where is my order?"}], "max_tokens": 4}
        r = httpx.post(base + "/v1/chat/completions", json=chat, headers=auth, timeout=60)
        assert r.status_code == 200, r.text
        reply_id = r.json()["id"]
        assert httpx.post(base + "/v1/feedback", json={"completion_id": reply_id, "rating": "up"}, headers=auth, timeout=30).status_code == 200
        assert httpx.post(base + "/v1/chat/completions", json=chat, headers={"Authorization": "Bearer sk-cf-second-key-Hh72"}, timeout=60).status_code == 200
        # wrong keys, a key in the wrong header, a broken body: refused without echoing anything back
        wrong = "sk-cf-wrong-Pp09"
        for headers in ({"Authorization": f"Bearer {wrong}"}, {"X-Api-Key": KEY}, {}):
            r = httpx.post(base + "/v1/chat/completions", json=chat, headers=headers, timeout=30)
            assert r.status_code == 401 and wrong not in r.text and KEY not in r.text
        assert httpx.post(base + "/v1/chat/completions", content=b"{not json", headers={**auth, "Content-Type": "application/json"}, timeout=30).status_code in (400, 422)
        metrics = httpx.get(base + "/metrics", headers=auth, timeout=30).text
        assert KEY not in metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    logs = out + err
    assert logs.strip() or True  # a quiet server is fine; what it says must not hold secrets
    for secret in (KEY, "sk-cf-second-key-Hh72", "sk-cf-wrong-Pp09"):
        assert secret.encode() not in logs
        assert secret.encode() not in _everything_written(tmp_path / "models")
    if pg:
        assert _password(pg).encode() not in logs
    else:
        assert KEY.encode() not in (tmp_path / "feedback.db").read_bytes()


def test_a_database_password_stays_out_of_errors_and_reports(tmp_path):
    # A server that is not there: every command that takes a store fails with a clear error
    # naming the URL, with the password hidden.
    secret = "cf-not-a-real-pw-58Ty"
    dead = f"postgresql://chatforge:{secret}@127.0.0.1:{free_port()}/nowhere"
    for args in (["feedback", "stats", "--store", dead], ["monitor", "--store", dead, "--out", str(tmp_path / "mon-dead")], ["feedback", "export", "--store", dead, "--out", str(tmp_path / "exp")]):
        p = subprocess.run([EXE, *args], capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert p.returncode != 0, (args, p.stdout, p.stderr)
        assert "postgresql://chatforge:***@127.0.0.1" in p.stderr, p.stderr
        assert secret not in p.stdout + p.stderr
    # A real server: the reports a command writes (config.json, monitor.json, ...) and what it
    # prints keep the URL but not its password.
    pg = _pg_url()
    if pg is None:
        pytest.skip("no PostgreSQL server for the working half of this test")
    password = _password(pg)
    assert password
    for args in (["monitor", "--store", pg, "--out", str(tmp_path / "mon")], ["feedback", "stats", "--store", pg, "--out", str(tmp_path / "stats.json")]):
        p = subprocess.run([EXE, *args], capture_output=True, text=True, cwd=tmp_path, timeout=300)
        assert p.returncode == 0, p.stderr
        assert password not in p.stdout + p.stderr
    written = _everything_written(tmp_path)
    assert b"postgresql://chatforge:***@" in written  # the store is named...
    assert password.encode() not in written  # ...without its password
