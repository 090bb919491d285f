"""The shipped presets under configs/ load into their command's config: a renamed or
mistyped field in a preset is an error the user would otherwise meet only on the command line."""

from pathlib import Path

import pytest

from chatforge.config import load_config
from chatforge.errors import ConfigError
from chatforge.train.config import PretrainConfig, SFTConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
REQUIRED = {
    "pretrain": (PretrainConfig, {"data": ["d"], "tokenizer": "t", "out": "o"}),
    "sft": (SFTConfig, {"model": "m", "data": ["d"], "out": "o"}),
}


def presets() -> list[Path]:
    return sorted(CONFIGS.glob("*.yaml"))


def test_every_preset_names_its_command():
    assert presets(), f"no presets in {CONFIGS}"
    assert all(p.name.split("-")[0] in REQUIRED for p in presets()), [p.name for p in presets()]


@pytest.mark.parametrize("path", presets(), ids=lambda p: p.name)
def test_preset_loads(path):
    cls, required = REQUIRED[path.name.split("-")[0]]
    cfg = load_config(cls, file=path, overrides=required)
    assert cfg.train.steps > 0 and cfg.train.optim.lr > 0


def test_a_mistyped_field_in_a_preset_is_an_error(tmp_path):
    bad = tmp_path / "sft-bad.yaml"
    bad.write_text("max_len: 384\ntrain:\n  stpes: 3\n")
    with pytest.raises(ConfigError, match="stpes"):
        load_config(SFTConfig, file=bad, overrides=REQUIRED["sft"][1])
