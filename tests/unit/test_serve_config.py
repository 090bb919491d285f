"""`chatforge serve`'s registry and A/B flags: parsing, and errors that name the field."""

from __future__ import annotations

import pytest

from chatforge.cli import build_parser
from chatforge.config import load_config
from chatforge.errors import ConfigError
from chatforge.serve.config import ServeConfig, ab_split


def parse(*argv: str) -> ServeConfig:
    parser, _ = build_parser(only="serve")
    ns = parser.parse_args(["serve", *argv])
    return load_config(ServeConfig, overrides={k: v for k, v in vars(ns).items() if not k.startswith("_") and k not in ("config", "quiet")})


def test_ab_variants_by_space_or_by_repeating_the_flag():
    want = {"A": ("production", 0.9), "B": ("candidate", 0.1)}
    base = ["--registry", "reg", "--log-conversations"]
    assert ab_split(parse(*base, "--ab", "A=production:0.9", "B=candidate:0.1").ab) == want
    assert ab_split(parse(*base, "--ab", "A=production:0.9", "--ab", "B=candidate:0.1").ab) == want
    assert ab_split(["ctl=v3:9", "new=v4:1"]) == {"ctl": ("v3", 9.0), "new": ("v4", 1.0)}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "model: required; pass --model DIR"),
        (["--model", "m", "--registry", "r"], "not both"),
        (["--model", "m", "--ab", "A=production:1", "B=v2:1"], "ab: an A/B test serves registry versions"),
        (["--registry", "r", "--ab", "A=production:1", "B=v2:1"], "add --log-conversations"),
        (["--registry", "r", "--log-conversations", "--ab", "A=production:1"], "at least two variants"),
        (["--registry", "r", "--log-conversations", "--ab", "A=production", "B=v2:1"], "ab: 'A=production'; expected VARIANT=VERSION:WEIGHT"),
        (["--registry", "r", "--log-conversations", "--ab", "A=production:0", "B=v2:1"], "weight > 0"),
        (["--registry", "r", "--log-conversations", "--ab", "A=v1:1", "A=v2:1"], "variant 'A' is given twice"),
    ],
)
def test_bad_serve_flags_name_the_field(argv, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse(*argv)
