"""`chatforge models ...` as a user runs it."""

from __future__ import annotations

import json

from serve_helpers import tiny_model_dir
from test_cli import cf  # same directory: pytest puts it on sys.path

from chatforge.registry import Registry


def test_models_commands(tmp_path):
    model = tiny_model_dir(tmp_path)
    reg = Registry(tmp_path / "reg")
    reg.register(model, evals={"task_success": 0.75, "perplexity": 3.25})
    reg.register(model, parent="v1")
    r = ["--registry", str(tmp_path / "reg")]
    cf("models", "promote", "v1", *r)
    out = cf("models", "list", *r).stdout
    assert "2 versions" in out and "production" in out and "0.750" in out
    shown = json.loads(cf("models", "show", "production", *r, "-q").stdout)
    assert shown["version"] == "v1" and shown["evals"]["perplexity"] == 3.25 and shown["dir"].endswith("models/v1")
    cf("models", "promote", "candidate", *r)
    assert reg.resolve("production")["version"] == "v2"
    cf("models", "rollback", *r)
    assert reg.resolve("production")["version"] == "v1"
    bad = cf("models", "archive", "v1", *r, check=False)
    assert bad.returncode == 2 and "in production" in bad.stderr
    cf("models", "archive", "v2", *r)
    assert reg.resolve("v2")["stage"] == "archived"
    missing = cf("models", "show", "v9", *r, check=False)
    assert missing.returncode == 2 and "no version 'v9'" in missing.stderr and "v1 (production)" in missing.stderr
