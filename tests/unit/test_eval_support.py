"""Support-world task success: required and forbidden facts, declines, the summary."""

from __future__ import annotations

import pytest

from chatforge.eval.support import is_decline, score_reply, summarize

META = {"intent": "return", "required_facts": ["30 days", "original packaging"], "forbidden_facts": ["$4.99"]}


def test_a_reply_needs_every_required_fact_and_no_forbidden_one():
    assert score_reply("Returns are free within 30 DAYS if in the Original Packaging.", META)["ok"]
    r = score_reply("Returns are free within 30 days.", META)
    assert not r["ok"] and r["missing"] == ["original packaging"]
    r = score_reply("Within 30 days, in original packaging; shipping back costs $4.99.", META)
    assert not r["ok"] and r["forbidden"] == ["$4.99"]  # a fact of another topic fails the reply


@pytest.mark.parametrize(
    ("reply", "declines"),
    [
        ("Sorry, that's outside what I can help with. I'm here for store questions.", True),
        ("I'm afraid I can't help with that one.", True),
        ("I can only help with Larkspur Goods orders, shipping, returns and products.", True),
        ("That's not something I can answer, sorry!", True),
        ("Standard shipping takes 3-5 business days.", False),
        ("I can help with that. What's the order number?", False),
    ],
)
def test_declines_are_recognised(reply, declines):
    assert is_decline(reply) is declines


def test_out_of_scope_requests_succeed_only_when_declined():
    meta = {"intent": "out_of_scope", "required_facts": [], "forbidden_facts": ["3-5 business days"]}
    assert score_reply("Sorry, that's outside what I can help with.", meta)["ok"]
    assert not score_reply("The election will be won by the best candidate.", meta)["ok"]
    assert not score_reply("I can't help with that, but shipping takes 3-5 business days.", meta)["ok"]


def test_summary_rates():
    rows = [
        {"intent": "return", "ok": True, "declined": False, "stopped": True},
        {"intent": "return", "ok": False, "declined": True, "stopped": True},
        {"intent": "out_of_scope", "ok": True, "declined": True, "stopped": False},
        {"intent": "shipping", "ok": True, "declined": False, "stopped": True},
    ]
    s = summarize(rows)
    assert s["success"] == 0.75 and s["stop_rate"] == 0.75
    assert s["decline_rate"] == 1.0 and s["false_decline_rate"] == pytest.approx(1 / 3)
    assert s["per_intent"] == {"out_of_scope": 1.0, "return": 0.5, "shipping": 1.0}
