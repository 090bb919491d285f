"""The sweep's search-space file and the tracking helpers that need no training run."""

from __future__ import annotations

import pytest
import yaml

from chatforge import hpo, tracking
from chatforge.errors import UserError


def write(tmp_path, data):
    p = tmp_path / "space.yaml"
    p.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return str(p)


def test_space_is_read_into_typed_params(tmp_path):
    space = hpo.read_space(
        write(
            tmp_path,
            {
                "train.optim.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
                "train.batch_size": {"type": "categorical", "choices": [8, 16]},
                "lora.r": {"type": "int", "low": 4, "high": 12, "step": 4},
            },
        )
    )
    by = {p.name: p for p in space}
    assert by["train.optim.lr"].log and by["train.optim.lr"].low == 1e-4
    assert by["train.batch_size"].grid() == [8, 16]
    assert by["lora.r"].grid() == [4, 8, 12]
    with pytest.raises(UserError, match="grid sampler needs categorical"):
        by["train.optim.lr"].grid()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"lr": {"type": "uniform", "low": 0, "high": 1}}, "lr: type 'uniform'"),
        ({"lr": {"type": "float", "low": 2, "high": 1}}, "lr: needs numbers low <= high"),
        ({"lr": {"type": "float", "low": 0, "high": 1, "log": True}}, "lr: a log range needs low > 0"),
        ({"bs": {"type": "categorical", "choices": []}}, "bs: categorical needs a non-empty list"),
        ({"bs": {"type": "categorical", "choices": [1], "bounds": 3}}, "bs: unknown key"),
        ({"lr": 0.1}, "lr: expected"),
        ("[1, 2]", "expected a mapping"),
    ],
)
def test_space_errors_name_the_file_and_field(tmp_path, spec, message):
    path = write(tmp_path, spec)
    with pytest.raises(UserError, match=message) as e:
        hpo.read_space(path)
    assert str(e.value).startswith(path)


def test_a_space_field_the_stage_does_not_have_stops_before_any_trial(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({"model": str(tmp_path / "m"), "data": [str(tmp_path / "d")]}))
    space = write(tmp_path, {"train.optim.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3}})
    cfg = hpo.SweepConfig(stage="sft", base=str(base), space=space, out=str(tmp_path / "out"))
    with pytest.raises(UserError, match="learning_rate"):
        hpo.main(cfg)
    assert not (tmp_path / "out" / "study.db").exists()


def test_flatten_and_metric_names():
    assert tracking.flatten({"train": {"optim": {"lr": 1e-3}}, "data": ["a", "b"]}) == {"train.optim.lr": 1e-3, "data": '["a", "b"]'}
    (m,) = tracking._metric_list({"probe.I'm 19 (age)": 0.5}, step=3)
    assert m.key == "probe.I_m 19 _age_" and m.value == 0.5 and m.step == 3


def test_artifacts_live_beside_a_sqlite_store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    assert tracking._artifact_root() == (tmp_path / "mlartifacts").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example.com")
    assert tracking._artifact_root() is None
