"""Config loading: defaults < YAML < flags, type conversion, errors that name the field."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Literal

import pytest

from chatforge.config import add_config_arguments, load_config, normalize_bool_flags, opt, save_config
from chatforge.errors import ConfigError, UserError


@dataclass
class Inner:
    lr: float = opt(3e-4, "learning rate", gt=0)
    steps: int = opt(10, "steps", ge=1, le=1000)


@dataclass
class Outer:
    name: str = opt("run", "a name")
    seed: int = opt(0, "seed")
    verbose: bool = opt(False, "say more")
    mode: Literal["a", "b"] = opt("a", "a mode")
    tags: list[str] = opt(default_factory=list, help="tags")
    out: str = opt("", "output dir", required=True)
    train: Inner = opt(default_factory=Inner)

    def validate(self) -> None:
        if self.mode == "b" and self.train.steps > 100:
            raise ConfigError(f"train.steps: must be <= 100 when mode is b, got {self.train.steps}")


def write(tmp_path, text: str):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_precedence_defaults_yaml_flags(tmp_path):
    f = write(tmp_path, "name: fromfile\ntrain:\n  lr: 1e-3\n  steps: 20\nout: o\n")
    cfg = load_config(Outer, file=f, overrides={"train.steps": "30"})
    assert cfg.name == "fromfile"
    assert cfg.train.lr == pytest.approx(1e-3)  # YAML 1.1 reads "1e-3" as a string; converted
    assert cfg.train.steps == 30  # the flag wins over the file
    assert cfg.seed == 0  # the default stays


def test_types_are_converted_from_strings():
    cfg = load_config(Outer, overrides={"out": "o", "verbose": "true", "tags": "x,y", "seed": "1_000", "mode": "b"})
    assert cfg.verbose is True and cfg.tags == ["x", "y"] and cfg.seed == 1000 and cfg.mode == "b"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"train.steps": "0"}, "--train.steps: must be >= 1, got 0"),
        ({"train.steps": "5000"}, "--train.steps: must be <= 1000, got 5000"),
        ({"train.lr": "0"}, "--train.lr: must be > 0, got 0.0"),
        ({"train.lr": "fast"}, "--train.lr: must be a number; got 'fast'"),
        ({"seed": "1.5"}, "--seed: must be an integer; got '1.5'"),
        ({"mode": "c"}, "--mode: must be one of a, b; got 'c'"),
        ({"verbose": "maybe"}, "--verbose: must be true or false; got 'maybe'"),
    ],
)
def test_flag_errors_name_the_flag_and_range(overrides, message):
    with pytest.raises(ConfigError) as e:
        load_config(Outer, overrides={"out": "o", **overrides})
    assert str(e.value) == message


def test_yaml_errors_name_file_line_and_field(tmp_path):
    f = write(tmp_path, "out: o\ntrain:\n  lr: 1e-3\n  steps: -2\n")
    with pytest.raises(ConfigError) as e:
        load_config(Outer, file=f)
    assert str(e.value) == f"{f}:4: train.steps: must be >= 1, got -2"


def test_unknown_yaml_field_suggests_the_right_one(tmp_path):
    f = write(tmp_path, "out: o\ntrain:\n  stesp: 3\n")
    with pytest.raises(ConfigError) as e:
        load_config(Outer, file=f)
    assert str(e.value) == f"{f}:3: unknown field 'train.stesp'; did you mean 'train.steps'?"


def test_invalid_yaml_names_the_line(tmp_path):
    f = write(tmp_path, "out: o\ntrain:\n  lr: [1,\n")
    with pytest.raises(UserError, match=rf"^{f}:4: invalid YAML"):
        load_config(Outer, file=f)


def test_group_and_value_confusion(tmp_path):
    f = write(tmp_path, "out: o\ntrain: 3\n")
    with pytest.raises(ConfigError, match=r"c.yaml:2: train: expected a group of fields"):
        load_config(Outer, file=f)
    f = write(tmp_path, "out:\n  x: 1\n")
    with pytest.raises(ConfigError, match=r"c.yaml:1: out: expected a value, got a group"):
        load_config(Outer, file=f)


def test_required_and_cross_field_validation():
    with pytest.raises(ConfigError, match=r"^out: required \(output dir\); pass --out$"):
        load_config(Outer)
    with pytest.raises(ConfigError, match="must be <= 100 when mode is b"):
        load_config(Outer, overrides={"out": "o", "mode": "b", "train.steps": "500"})


def test_missing_config_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        load_config(Outer, file=tmp_path / "nope.yaml")


def test_saved_config_loads_back_identical(tmp_path):
    cfg = load_config(Outer, overrides={"out": "o", "tags": "a,b", "train.lr": "0.01", "verbose": "yes"})
    save_config(cfg, tmp_path / "resolved.yaml")
    assert load_config(Outer, file=tmp_path / "resolved.yaml") == cfg


def test_generated_flags_parse_like_overrides():
    parser = argparse.ArgumentParser()
    bools = add_config_arguments(parser, Outer)
    assert bools == ["verbose"]
    argv = normalize_bool_flags(["--train.steps", "7", "--verbose=false", "--tags", "p", "q", "--out", "o"], bools)
    ns = vars(parser.parse_args(argv))
    assert ns == {"train.steps": "7", "verbose": "false", "tags": ["p", "q"], "out": "o"}
    cfg = load_config(Outer, overrides=ns)
    assert cfg.train.steps == 7 and cfg.verbose is False and cfg.tags == ["p", "q"]
    # --verbose alone switches it on; the kebab-case spelling is accepted for snake_case fields
    assert vars(parser.parse_args(["--verbose"])) == {"verbose": "true"}
    with pytest.raises(ConfigError, match="--verbose: must be true or false"):
        normalize_bool_flags(["--verbose=perhaps"], bools)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_numbers_are_refused(value):
    with pytest.raises(ConfigError, match=r"^--train\.lr: must be a finite number"):
        load_config(Outer, overrides={"out": "o", "train.lr": value})


@dataclass
class Preset:
    """A parent whose nested group has its own defaults (as quickstart's tiny model does)."""

    train: Inner = opt(default_factory=lambda: Inner(lr=0.5, steps=3))


def test_a_nested_groups_declared_defaults_are_kept_unless_overridden(tmp_path):
    assert load_config(Preset).train == Inner(lr=0.5, steps=3)
    assert load_config(Preset, overrides={"train.steps": "9"}).train == Inner(lr=0.5, steps=9)
    assert load_config(Preset, file=write(tmp_path, "train:\n  lr: 0.1\n")).train == Inner(lr=0.1, steps=3)
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, Preset)
    assert "(default: 3)" in parser.format_help() and "(default: 10)" not in parser.format_help()


@dataclass
class Derived:
    """A group that fills one field in from another (as ModelConfig does for n_kv_head)."""

    heads: int = opt(4, "heads", ge=1)
    kv: int = opt(0, "0 = heads", ge=0)

    def __post_init__(self) -> None:
        self.kv = self.kv or self.heads


@dataclass
class WithDerived:
    plain: Derived = opt(default_factory=Derived)
    preset: Derived = opt(default_factory=lambda: Derived(heads=8))


def test_derived_fields_follow_an_override_not_the_default_instance():
    cfg = load_config(WithDerived, overrides={"plain.heads": "2", "preset.heads": "2"})
    assert cfg.plain == Derived(heads=2, kv=2) and cfg.preset == Derived(heads=2, kv=2)
    assert load_config(WithDerived).preset == Derived(heads=8, kv=8)
