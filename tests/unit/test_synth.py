"""The built-in support world: determinism, row shapes, facts, held-out vocabulary, noise."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter

import pytest

from chatforge.data import world as W
from chatforge.data.synth import NOISE_KINDS, PII_KINDS, SupportWorld, generate

SMALL = {
    "conversations": 300,
    "test_conversations": 60,
    "heldout_conversations": 40,
    "kb_articles": 60,
    "preferences": 80,
}
FLAWS = ("wrong_policy", "rude", "ignores_context", "vague")


@pytest.fixture(scope="module")
def world() -> SupportWorld:
    """The default-size world: noise rates are only meaningful at realistic sizes."""
    return generate(0)


@pytest.fixture(scope="module")
def clean() -> SupportWorld:
    return generate(0, noise=0.0, **SMALL)


def _dump(w: SupportWorld) -> str:
    return json.dumps(
        [w.kb, w.conversations, w.preferences, w.test, w.test_heldout, w.planted_pii],
        ensure_ascii=False,
        sort_keys=True,
    )


def _users(messages: list[dict[str, str]]) -> list[str]:
    return [m["content"] for m in messages if m["role"] == "user"]


def _user_key(messages: list[dict[str, str]]) -> str:
    return "\x1f".join(" ".join(t.lower().split()) for t in _users(messages))


def _luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d = d * 2
            d = d - 9 if d > 9 else d
        total += d
    return total % 10 == 0


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_output_and_different_seeds_differ() -> None:
    a, b, c = generate(3, **SMALL), generate(3, **SMALL), generate(4, **SMALL)
    assert _dump(a) == _dump(b)
    for part in ("kb", "conversations", "preferences", "test", "test_heldout"):
        assert getattr(a, part) != getattr(c, part), part


def test_output_does_not_depend_on_string_hash_salt() -> None:
    # Iterating a set of strings would make the output depend on PYTHONHASHSEED.
    code = (
        "import hashlib, json; from chatforge.data.synth import generate; "
        f"w = generate(5, **{SMALL!r}); "
        "print(hashlib.sha256(json.dumps([w.kb, w.conversations, w.preferences, w.test, w.test_heldout, "
        "w.planted_pii], sort_keys=True).encode()).hexdigest())"
    )
    digests = set()
    for salt in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": salt}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_sizes_are_respected_and_bad_arguments_rejected() -> None:
    w = generate(1, conversations=25, test_conversations=20, heldout_conversations=19, kb_articles=16, preferences=21)
    assert (len(w.conversations), len(w.test), len(w.test_heldout), len(w.kb), len(w.preferences)) == (
        25,
        20,
        19,
        16,
        21,
    )
    empty = generate(1, conversations=0, test_conversations=0, heldout_conversations=0, kb_articles=0, preferences=0)
    assert (empty.conversations, empty.test, empty.kb, empty.preferences, empty.planted_pii) == ([], [], [], [], [])
    with pytest.raises(ValueError, match="conversations"):
        generate(1, conversations=-1)
    with pytest.raises(ValueError, match="noise"):
        generate(1, noise=-0.5)
    with pytest.raises(ValueError, match="noise"):
        generate(1, noise=float("nan"))


# --------------------------------------------------------------------------- structure


def _check_messages(messages: list[dict[str, str]], *, final: str) -> None:
    assert all(set(m) == {"role", "content"} for m in messages)
    assert all(isinstance(m["content"], str) and m["content"].strip() for m in messages)
    turns = messages[1:] if messages[0]["role"] == "system" else messages
    assert all(m["role"] != "system" for m in turns), "a system message may only come first"
    expected = ["user", "assistant"] * len(turns)
    assert [m["role"] for m in turns] == expected[: len(turns)]
    assert turns[-1]["role"] == final


def test_conversation_rows_have_the_canonical_shape(world: SupportWorld) -> None:
    rows = world.conversations + world.test + world.test_heldout
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == len(ids)
    assert [r["id"] for r in world.conversations[:2]] == ["conv-000001", "conv-000002"]
    for r in world.conversations:
        assert set(r) == {"id", "messages", "source", "meta"}
        assert r["source"] == "synth/conversations"
        assert set(r["meta"]) == {"intent", "noise"}
        assert set(r["meta"]["noise"]) <= set(NOISE_KINDS)
    for r in rows:
        _check_messages(r["messages"], final="assistant")
        n = sum(m["role"] != "system" for m in r["messages"])
        assert 2 <= n <= 8 and n % 2 == 0
        assert r["meta"]["intent"] in W.INTENTS
    turn_counts = Counter(sum(m["role"] != "system" for m in r["messages"]) for r in world.conversations)
    assert set(turn_counts) >= {2, 4, 6, 8}, "multi-turn chats of every length should occur"
    for split, rows_ in (("test", world.test), ("test_heldout", world.test_heldout)):
        for r in rows_:
            assert r["source"] == f"synth/{split}"
            assert set(r["meta"]) == {"intent", "required_facts", "forbidden_facts", "split"}
            assert r["meta"]["split"] == split


def test_every_intent_occurs_in_every_split() -> None:
    w = generate(2, **SMALL)
    for rows in (w.conversations, w.test, w.test_heldout, w.preferences):
        assert {r["meta"]["intent"] for r in rows} == set(W.INTENTS)


def test_preference_rows(world: SupportWorld) -> None:
    assert world.preferences[0]["id"] == "pref-000001"
    for r in world.preferences:
        assert set(r) == {"id", "prompt", "chosen", "rejected", "source", "meta"}
        assert r["source"] == "synth/preferences"
        _check_messages(r["prompt"], final="user")
        assert r["chosen"].strip() and r["rejected"].strip() and r["chosen"] != r["rejected"]
        assert r["meta"]["intent"] in W.INTENTS and r["meta"]["flaw"] in FLAWS
    assert {r["meta"]["flaw"] for r in world.preferences} == set(FLAWS)


def test_wrong_policy_rejections_state_a_wrong_value_and_chosen_answers_the_right_one(world: SupportWorld) -> None:
    wrong = [r for r in world.preferences if r["meta"]["flaw"] == "wrong_policy"]
    assert wrong
    for r in wrong:
        assert any(bad in r["rejected"] for bad in W.WRONG_FACTS.values())
        assert any(good in r["chosen"] for good in W.WRONG_FACTS)


def test_kb_rows(world: SupportWorld) -> None:
    assert len({r["text"] for r in world.kb}) == len(world.kb), "KB articles should not repeat"
    for r in world.kb:
        assert set(r) == {"id", "text", "source", "meta"} and r["source"] == "synth/kb"
        assert r["text"].strip() and "{" not in r["text"]
    topics = Counter(r["meta"]["topic"] for r in world.kb)
    assert set(topics) == set(W.KB_TOPICS) | {"product", "faq"}


# --------------------------------------------------------------------------- facts


def test_fact_constants_match_the_policy_table() -> None:
    f = W.FACTS
    assert (W.STORE_NAME, W.STORE_DOMAIN, W.SUPPORT_EMAIL) == (
        "Larkspur Goods",
        "larkspurgoods.com",
        "support@larkspurgoods.com",
    )
    assert (f["return_window"], f["return_condition"]) == ("30 days", "unused items in original packaging")
    assert (f["refund_method"], f["refund_time"]) == ("original payment method", "5-7 business days")
    assert (f["standard_shipping_time"], f["free_shipping_threshold"], f["standard_shipping_fee"]) == (
        "3-5 business days", "$50", "$4.99",
    )  # fmt: skip
    assert (f["express_shipping_time"], f["express_shipping_fee"]) == ("1-2 business days", "$14.99")
    assert f["cancel_status"] == "processing"
    assert (f["warranty_period"], f["warranty_scope"], f["warranty_covers"], f["warranty_excludes"]) == (
        "1 year", "electronics", "defects", "accidental damage",
    )  # fmt: skip
    assert (f["support_days"], f["support_hours"], f["support_timezone"]) == ("Monday-Friday", "9am-6pm", "Eastern")
    assert f["support_email"] == W.SUPPORT_EMAIL
    assert (f["password_link"], f["password_link_expiry"]) == ("Forgot password", "1 hour")
    assert W.ORDER_STATUSES == ("processing", "shipped", "delivered", "cancelled")


def test_catalog_prices_never_collide_with_policy_values() -> None:
    prices = [p.price for p in W.PRODUCTS]
    assert len(set(prices)) == len(prices) and len({p.sku for p in W.PRODUCTS}) == len(prices)
    for p in W.PRODUCTS:
        assert p.feature_key in p.feature
        assert not W.ORDER_NUMBER_RE.search(p.sku)
        for fact in W.FACTS.values():
            assert fact not in p.price and p.price not in fact


def test_reference_answers_state_required_facts_and_no_forbidden_ones(world: SupportWorld) -> None:
    checked_forbidden = 0
    for r in world.test + world.test_heldout:
        answer = r["messages"][-1]["content"].lower()
        for fact in r["meta"]["required_facts"]:
            assert fact.lower() in answer, (r["id"], fact)
        for fact in r["meta"]["forbidden_facts"]:
            assert fact.lower() not in answer, (r["id"], fact)
        checked_forbidden += bool(r["meta"]["forbidden_facts"])
        factless = r["meta"]["intent"] in ("greeting", "out_of_scope", "abusive_user")
        if not factless and len(r["messages"]) <= 3:
            assert r["meta"]["required_facts"], r["id"]
    assert checked_forbidden == len(world.test) + len(world.test_heldout)


def test_required_facts_use_the_table_spelling(world: SupportWorld) -> None:
    facts = Counter(f for r in world.test for f in r["meta"]["required_facts"])
    for expected in (
        "30 days",
        "5-7 business days",
        "3-5 business days",
        "$14.99",
        "1 year",
        "Forgot password",
        "9am-6pm",
    ):
        assert facts[expected] > 0, expected


def test_order_answers_use_the_order_record_in_context(world: SupportWorld) -> None:
    seen = Counter()
    for r in world.test + world.test_heldout:
        intent = r["meta"]["intent"]
        if intent not in W.ORDER_CONTEXT_INTENTS or len(r["messages"]) != 3:
            continue
        system, answer = r["messages"][0]["content"], r["messages"][-1]["content"]
        status = re.search(r"Status: (\w+)", system)
        assert status, r["id"]
        seen[intent, status.group(1)] += 1
        if status.group(1) in ("shipped", "delivered") and intent == "order_status":
            tracking_or_date = r["meta"]["required_facts"][1]
            assert tracking_or_date in system and tracking_or_date in answer
        if intent == "cancel_order":
            # Free while processing; after that the answer is "return it", not "cancel it".
            if status.group(1) == "processing":
                assert "free" in r["meta"]["required_facts"] and "30 days" not in answer
            elif status.group(1) in ("shipped", "delivered"):
                assert "30 days" in r["meta"]["required_facts"] and "free" not in answer.lower()
    assert len(seen) >= 6, seen


def test_kb_articles_state_the_policy_facts(world: SupportWorld) -> None:
    by_name = {p.name: p for p in W.PRODUCTS}
    for r in world.kb:
        text, topic = r["text"].lower(), r["meta"]["topic"]
        for fact in W.KB_REQUIRED_FACTS.get(topic, ()):
            assert fact.lower() in text, (r["id"], topic, fact)
        if topic == "product":
            names = [n for n in by_name if n.lower() in text]
            assert len(names) == 1, r["id"]
            product = by_name[names[0]]
            assert product.price in r["text"] and product.sku in r["text"]
            assert ("1 year" in text) == (product.category == "electronics")


def test_no_text_the_assistant_learns_from_states_a_wrong_policy(world: SupportWorld) -> None:
    texts = [r["text"] for r in world.kb]
    texts += [m["content"] for r in world.conversations + world.test for m in r["messages"] if m["role"] != "user"]
    texts += [r["chosen"] for r in world.preferences]
    for text in texts:
        for bad in W.WRONG_FACTS.values():
            assert bad not in text, (bad, text)


# --------------------------------------------------------------------------- held-out vocabulary


def _heldout_finders() -> list[re.Pattern[str]]:
    phrases = [re.compile(rf"\b{re.escape(p)}\b", re.IGNORECASE) for p in W.heldout_phrases()]
    return phrases + [W.template_pattern(t) for t in W.heldout_templates()]


def test_heldout_choice_is_a_fixed_share_and_a_function_of_the_items_only() -> None:
    for pool in list(W.LEXICON.values()) + list(W.USER_TEMPLATES.values()):
        kept, held = W.split_heldout(pool)
        assert pool[0] in kept and set(kept) | set(held) == set(pool) and not set(kept) & set(held)
        # Same items in another order (first kept) give the same held-out set.
        assert set(W.split_heldout([pool[0], *reversed(pool[1:])])[1]) == set(held)
    n_items = sum(len(v) for v in W.LEXICON.values()) + len(W._ALL_NICKNAMES)
    share = len(W.heldout_phrases()) / n_items
    assert 0.15 <= share <= 0.3, share
    templates = [k for k in W.USER_TEMPLATES if k != "order_no_reply"]
    assert all(W.TEMPLATE_SPLIT[k][1] for k in templates), "every intent holds out some templates"


def test_training_data_never_uses_heldout_vocabulary(world: SupportWorld) -> None:
    finders = _heldout_finders()
    texts = [t for r in world.conversations + world.test for t in _users(r["messages"])]
    texts += [t for r in world.preferences for t in _users(r["prompt"])]
    for text in texts:
        for f in finders:
            assert not f.search(text), (f.pattern, text)


def test_every_heldout_row_uses_heldout_vocabulary(world: SupportWorld) -> None:
    finders = _heldout_finders()
    for r in world.test_heldout:
        text = "\n".join(_users(r["messages"]))
        assert any(f.search(text) for f in finders), r["id"]


def test_test_splits_do_not_repeat_training_prompts(world: SupportWorld) -> None:
    train = {_user_key(r["messages"]) for r in world.conversations}
    train |= {_user_key(r["prompt"]) for r in world.preferences}
    test = [_user_key(r["messages"]) for r in world.test]
    heldout = [_user_key(r["messages"]) for r in world.test_heldout]
    assert not train & set(test) and not train & set(heldout) and not set(test) & set(heldout)
    assert len(set(test)) == len(test) and len(set(heldout)) == len(heldout)


# --------------------------------------------------------------------------- noise


def test_every_noise_kind_is_planted_at_default_rates(world: SupportWorld) -> None:
    counts = Counter(k for r in world.conversations for k in r["meta"]["noise"])
    assert set(counts) == set(NOISE_KINDS)
    n = len(world.conversations)
    for kind in NOISE_KINDS:
        assert 0.005 * n <= counts[kind] <= 0.35 * n, (kind, counts[kind])
    assert 0.4 < sum(not r["meta"]["noise"] for r in world.conversations) / n < 0.9


def test_noise_zero_gives_clean_logs(clean: SupportWorld) -> None:
    assert clean.planted_pii == []
    assert all(r["meta"]["noise"] == [] for r in clean.conversations)
    keys = [json.dumps(r["messages"]) for r in clean.conversations]
    assert len(set(keys)) == len(keys)
    for r in clean.conversations:
        for text in _users(r["messages"]):
            assert not re.search(r"<[a-z/]|&\w+;", text)
            assert not W.ORDER_NUMBER_RE.search(text) and "@" not in text


def test_noise_argument_scales_the_rates() -> None:
    sizes = {**SMALL, "conversations": 800}

    def noisy(level: float) -> int:
        w = generate(6, noise=level, **sizes)
        return sum(bool(r["meta"]["noise"]) for r in w.conversations)

    low, default, high = noisy(0.3), noisy(1.0), noisy(3.0)
    assert 0 < low < default < high


def test_test_splits_are_clean(world: SupportWorld) -> None:
    pii_values = [p["value"] for p in world.planted_pii]
    for r in world.test + world.test_heldout:
        for text in _users(r["messages"]):
            assert not re.search(r"<[a-z/]|&\w+;", text) and "@" not in text
            assert not W.ORDER_NUMBER_RE.search(text)
            assert not re.search(r"\d{3}[ .-]?\d{4}", text), text
        assert not any(v in m["content"] for v in pii_values for m in r["messages"] if m["role"] == "user")


def test_planted_pii_occurs_verbatim_in_its_rows_user_turns(world: SupportWorld) -> None:
    rows = {r["id"]: r for r in world.conversations}
    by_row: dict[str, set[str]] = {}
    for p in world.planted_pii:
        assert set(p) == {"id", "type", "value"} and p["type"] in PII_KINDS
        assert any(p["value"] in t for t in _users(rows[p["id"]]["messages"])), p
        by_row.setdefault(p["id"], set()).add(p["type"])
    # meta.noise lists exactly the kinds planted in the row.
    for rid, row in rows.items():
        assert by_row.get(rid, set()) == set(row["meta"]["noise"]) & set(PII_KINDS), rid
    assert {p["type"] for p in world.planted_pii} == set(PII_KINDS)


def test_identifier_formats(world: SupportWorld) -> None:
    values = {kind: [p["value"] for p in world.planted_pii if p["type"] == kind] for kind in PII_KINDS}
    for card in values["card"]:
        digits = re.sub(r"\D", "", card)
        assert len(digits) in (15, 16) and _luhn_ok(digits), card
    for number in values["order_number"]:
        assert W.ORDER_NUMBER_RE.fullmatch(number), number
    for phone in values["phone"]:
        assert re.fullmatch(r"[+\d(][\d ().+-]{8,}\d", phone), phone
    assert any(p.startswith("+") for p in values["phone"]) and any(not p.startswith("+") for p in values["phone"])
    for email in values["email"]:
        assert re.fullmatch(r"[a-z0-9._]+@[a-z.]+", email), email
    tracking = [
        r["meta"]["required_facts"][1]
        for r in world.test
        if r["meta"]["intent"] == "order_status"
        and len(r["messages"]) == 3
        and "Status: shipped" in r["messages"][0]["content"]
    ]
    assert tracking and all(W.TRACKING_RE.fullmatch(t) for t in tracking)


def test_duplicates_are_exactly_the_labelled_ones(world: SupportWorld) -> None:
    first_seen: dict[str, str] = {}
    for r in world.conversations:
        key = json.dumps(r["messages"])
        if "duplicate" in r["meta"]["noise"]:
            assert key in first_seen, r["id"]
        else:
            assert key not in first_seen, (r["id"], first_seen.get(key))
            first_seen[key] = r["id"]
    # A near duplicate is an earlier chat with small edits at its edges.
    earlier: list[list[dict[str, str]]] = []
    near = 0
    for r in world.conversations:
        msgs = r["messages"]
        if "near_duplicate" in r["meta"]["noise"]:
            assert msgs not in earlier and any(_is_near_copy(msgs, e) for e in earlier), r["id"]
            near += 1
        earlier.append(msgs)
    assert near


def _is_near_copy(msgs: list[dict[str, str]], original: list[dict[str, str]]) -> bool:
    if [m["role"] for m in msgs] != [m["role"] for m in original]:
        return False
    first = next(i for i, m in enumerate(msgs) if m["role"] == "user")
    same_middle = all(
        a == b for i, (a, b) in enumerate(zip(msgs, original, strict=True)) if i not in (first, len(msgs) - 1)
    )
    edited_first = msgs[first]["content"].endswith(original[first]["content"])
    edited_last = msgs[-1]["content"].startswith(original[-1]["content"].rstrip(".!"))
    return same_middle and edited_first and edited_last


def test_abusive_user_chats_are_de_escalated_not_mirrored(world: SupportWorld) -> None:
    insults = [i.lower() for i in W.LEXICON["insult"]]
    # Typos and HTML entities may garble an insult in the raw logs, so look at chats without them.
    rows = [r for r in world.conversations + world.test if r["meta"]["intent"] == "abusive_user"]
    rows = [r for r in rows if not {"typo", "html"} & set(r["meta"].get("noise", ()))]
    assert rows
    for r in rows:
        assert any(i in " ".join(_users(r["messages"])).lower() for i in insults)
        for m in r["messages"]:
            if m["role"] == "assistant":
                assert not any(i in m["content"].lower() for i in insults)
