"""The built-in support world: determinism, row shapes, facts, held-out vocabulary, noise."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence

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
    assert (empty.conversations, empty.test, empty.test_heldout, empty.kb, empty.preferences, empty.planted_pii) == (
        [], [], [], [], [], [],
    )  # fmt: skip
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


def _states(text: str, value: str) -> bool:
    """Whether `text` states `value` as a whole value ("$14.99" does not state "$4.99")."""
    return re.search(rf"(?<![\w$.]){re.escape(value)}(?!\w)", text) is not None


def test_wrong_policy_rejections_contradict_the_facts_and_chosen_answers_state_only_true_ones(
    world: SupportWorld,
) -> None:
    true_values = {**W.FACTS, **W.EXTRA_FACTS}
    topic = {value: name for name, value in true_values.items()}
    # Each wrong value stands for one row of the facts table and differs from every true value.
    assert set(W.WRONG_FACTS) <= set(topic)
    assert not any(_states(true, bad) or _states(bad, true) for true in topic for bad in W.WRONG_FACTS.values())
    wrong = [r for r in world.preferences if r["meta"]["flaw"] == "wrong_policy"]
    assert len(wrong) >= 0.1 * len(world.preferences)
    for r in wrong:
        chosen, rejected = r["chosen"], r["rejected"]
        contradicted = [true for true, bad in W.WRONG_FACTS.items() if _states(rejected, bad)]
        assert contradicted, (r["id"], rejected)
        for true, bad in W.WRONG_FACTS.items():
            # The rejected answer gives the wrong value exactly where the chosen one gives
            # the true value for that topic, and never the true value itself.
            assert not _states(rejected, true), (r["id"], topic[true], rejected)
            assert _states(rejected, bad) == _states(chosen, true), (r["id"], topic[true], chosen, rejected)
    for r in world.preferences:
        for bad in W.WRONG_FACTS.values():
            assert not _states(r["chosen"], bad), (r["id"], bad, r["chosen"])


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
            assert not _states(text, bad), (bad, text)


# --------------------------------------------------------------------------- held-out vocabulary


Finder = tuple[str, re.Pattern[str]]  # (lower-case text any match contains, pattern)


def _phrase_finders(phrases: Sequence[str]) -> list[Finder]:
    return [(p.lower(), re.compile(rf"\b{re.escape(p)}\b", re.IGNORECASE)) for p in phrases]


def _template_finders(templates: Sequence[str]) -> list[Finder]:
    # The longest literal piece between slots and [singular|plural] choices.
    literal = [max(re.split(r"\{\w+\}|\[[^\]]*\]", t), key=len).lower() for t in templates]
    return list(zip(literal, [W.template_pattern(t) for t in templates], strict=True))


def _heldout_finders() -> list[Finder]:
    return _phrase_finders(W.heldout_phrases()) + _template_finders(W.heldout_templates())


def _training_texts(w: SupportWorld) -> list[tuple[str, str]]:
    """(where, text) for every text field of every part a model may train on."""
    out = [(r["id"], r["text"]) for r in w.kb]
    for r in w.conversations + w.test:
        out += [(f"{r['id']} {m['role']}", m["content"]) for m in r["messages"]]
    for r in w.preferences:
        out += [(f"{r['id']} prompt {m['role']}", m["content"]) for m in r["prompt"]]
        out += [(f"{r['id']} chosen", r["chosen"]), (f"{r['id']} rejected", r["rejected"])]
    return out


def _first_hit(finders: list[Finder], texts: list[tuple[str, str]]) -> tuple[str, str, str] | None:
    """The first (pattern, where, text) where a finder matches, or None."""
    # One search per finder over all texts joined: no finder matches across a newline
    # (`.` stops there), so this finds exactly what a search per text would. A substring
    # test first skips the regex for the many finders whose literal text never occurs.
    joined = "\n".join(text for _, text in texts)
    lower = joined.lower()
    for literal, f in finders:
        if literal in lower and f.search(joined):
            where, text = next((w, t) for w, t in texts if f.search(t))
            return f.pattern, where, text
    return None


def _fixed_texts() -> list[str]:
    """Every alternative of the fixed text the generator writes besides user templates."""
    texts = [alt for parts in W.ANSWERS.values() for part in parts for alt in part]
    for titles, groups, extras in (*W.KB_TOPICS.values(), W.PRODUCT_PAGE):
        texts += [*titles, *(alt for g in groups for alt in g), *extras]
    texts += [x for _, q, a in W.FAQ_ITEMS for x in (*q, *a)]
    texts += [*W.ELECTRONICS_WARRANTY, *W.FAQ_TITLES, *W.SYSTEM_PROMPTS]
    texts += [*W.RUDE_PREFIX, *W.RUDE_SUFFIX, *W.VAGUE_ANSWERS, *(x for p in W.PII_PHRASES.values() for x in p)]
    values = {**W.FACTS, **W.EXTRA_FACTS, "store": W.STORE_NAME}
    # Scene slots ({product}, {order_no}) become a line break, which no finder crosses.
    filled = [re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "\n"), t) for t in texts]
    return [W.agree(t, plural) for t in filled for plural in (False, True)]


def test_heldout_choice_is_a_fixed_share_and_a_function_of_the_items_only() -> None:
    for pool in list(W.LEXICON.values()) + list(W.USER_TEMPLATES.values()):
        kept, held = W.split_heldout(pool)
        assert pool[0] in kept and set(kept) | set(held) == set(pool) and not set(kept) & set(held)
        # Same items in another order (first kept) give the same held-out set.
        assert set(W.split_heldout([pool[0], *reversed(pool[1:])])[1]) == set(held)
    # Items that are not eligible are never held out; the rest are ranked the same way.
    pool = W.LEXICON["closing"]
    held = W.split_heldout(pool, eligible=lambda x: x != "that helps")[1]
    assert "that helps" not in held and held
    assert W.split_heldout(pool, eligible=lambda x: False)[1] == ()
    n_items = sum(len(v) for v in W.LEXICON.values()) + len(W._ALL_NICKNAMES)
    share = len(W.heldout_phrases()) / n_items
    assert 0.15 <= share <= 0.3, share
    templates = [k for k in W.USER_TEMPLATES if k != "order_no_reply"]
    assert all(W.TEMPLATE_SPLIT[k][1] for k in templates), "every intent holds out some templates"


def test_training_data_never_uses_heldout_vocabulary(world: SupportWorld) -> None:
    # Every role and field counts: "Hope that helps!" in an answer or "basic stuff" in a
    # rejected answer teaches a held-out phrase just as well as a user turn would.
    texts = _training_texts(world)
    assert {where.split()[-1] for where, _ in texts} >= {"system", "user", "assistant", "chosen", "rejected"}
    assert _first_hit(_heldout_finders(), texts) is None


def test_heldout_items_never_occur_in_fixed_training_text() -> None:
    # Every alternative, not just those a sample happens to draw.
    fixed = [("fixed", t) for t in _fixed_texts()]
    kept = [t for k, (templates, _) in W.TEMPLATE_SPLIT.items() for t in templates]
    kept_templates = [("template", W.agree(re.sub(r"\{\w+\}", "\n", t), p)) for t in kept for p in (False, True)]
    assert _first_hit(_phrase_finders(W.heldout_phrases()), fixed + kept_templates) is None
    assert _first_hit(_template_finders(W.heldout_templates()), fixed) is None


def test_every_heldout_row_asks_its_final_question_in_heldout_vocabulary(world: SupportWorld) -> None:
    # A held-out greeting or context sentence before a question in training words would
    # score the model on phrasing it has seen.
    finders = _heldout_finders()
    for r in world.test_heldout:
        final = _users(r["messages"])[-1]
        assert any(f.search(final) for _, f in finders), (r["id"], final)


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


# --------------------------------------------------------------------------- grammar


def _alternation(words: Sequence[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


def _grammar_slips() -> dict[str, re.Pattern[str]]:
    """Slips that templates and slot filling made often, as patterns over lower-cased text."""
    names = [x.lower() for p in W.PRODUCTS for x in (p.name, *p.nicknames)]
    plural = _alternation([n for n in names if W.is_plural(n)])
    singular = _alternation([n for n in names if not W.is_plural(n)])
    connectors = _alternation(W.LEXICON["connector"])
    # Literal text first and lookbehinds after it: these run over megabytes of text.
    slips = {
        "doubled word": r"\b([a-z]+) \1\b",
        "repeated phrase": r"\b(\w+ \w+ \w+) \1\b",
        "'a' before a vowel": r"\ba [aeio]",
        "'an' before a consonant": r"\ban [b-df-gj-np-tv-z]",
        "separable phrasal verb before a pronoun (call off it)": r"(?:call off|look up|(?:send|ship|mail|bring) back) (?:it|them)\b",
        "fault that needs its own subject (it just is defective)": r"it just is\b|and is defective\b|and keeps\b",
        "connector run into the question": rf"(?:^|[.!?] )(?:{connectors}) [a-z]",
        "plural product, singular verb": rf"(?:the|my) (?<!of the )(?<!of my )(?:{plural}) "
        r"(?:is|isn't|was|has|does|doesn't|costs|comes|features|sells|stops)\b"
        rf"|\b(?:is|isn't|does|doesn't|was|has) the (?:{plural})\b",
        "singular product, plural verb": rf"(?:the|my) (?<!of the )(?<!of my )(?<!does the )(?:{singular}) "
        r"(?:are|aren't|were|have|do|don't|cost|come|feature|sell|stop)\b"
        rf"|\b(?:are|aren't|do|don't|were|have) the (?:{singular})\b",
        "unfilled slot or agreement choice": r"\{\w+\}|\[[^\]]*\|[^\]]*\]",
    }
    # MULTILINE: the texts are searched joined by newlines, one line each (see below).
    return {k: re.compile(v, re.M) for k, v in slips.items()}


def _run_on_sentence() -> re.Pattern[str]:
    """A capitalised sentence planted right after a word ("... the counter Account email: ...")."""
    openers = [p.split("{v}")[0].strip() for ps in W.PII_PHRASES.values() for p in ps if p[0].isupper()]
    return re.compile(rf"[a-z0-9] (?:{_alternation([o for o in openers if o] + list(W.NON_ENGLISH_LINES))})")


def test_generated_text_has_none_of_the_frequent_grammar_slips() -> None:
    # Large enough that a slip in one template alternative with one slot filler (about
    # 1 in 10,000 turns) shows up.
    w = generate(1, conversations=20_000)
    # Planted typos ("doees the mouse have") are noise on purpose, not template slips.
    rows = [r for r in w.conversations if "typo" not in r["meta"]["noise"]] + w.test + w.test_heldout
    # System prompts are fixed text plus the order record; everything else is checked.
    texts = {m["content"] for r in rows for m in r["messages"] if m["role"] != "system"}
    texts |= {t for r in w.preferences for t in (r["chosen"], r["rejected"], *_users(r["prompt"]))}
    texts |= {r["text"] for r in w.kb}
    # No slip spans a line break, so one search over all texts joined finds them all.
    joined = "\n".join(sorted(texts))
    lower = joined.lower()
    for name, slip in _grammar_slips().items():
        assert not slip.search(lower), (name, [t for t in sorted(texts) if slip.search(t.lower())][:3])
    run_on = _run_on_sentence()
    assert not run_on.search(joined), [t for t in sorted(texts) if run_on.search(t)][:3]


def test_agreement_follows_the_product_word() -> None:
    plural = {x for p in W.PRODUCTS for x in (p.name, *p.nicknames) if W.is_plural(x)}
    assert {"Aurora Wireless Earbuds", "over-ear headphones", "wool socks", "Stride Trekking Poles"} <= plural
    assert not {"Merino Crew Socks 3-Pack", "Glide Wireless Mouse", "Shea Hand Cream Trio", "cozy throw"} & plural
    template = "the {product} [doesn't|don't] work, can I get [it|them] repaired?"
    assert W.agree(template, False) == "the {product} doesn't work, can I get it repaired?"
    assert W.agree(template, True) == "the {product} don't work, can I get them repaired?"
    # template_pattern finds either spelling, whatever fills the slot.
    found = W.template_pattern(template)
    assert found.search("Hi! The wool socks don't work, can I get them repaired? thanks")
    assert found.search("the glide mouse doesn't work, can I get it repaired?")
    assert not found.search("the glide mouse doesn't work, can I get it replaced?")
    # Slots at the ends need some text there, and literal ends are whole words.
    ok_thanks = W.template_pattern("ok {thanks}")
    assert ok_thanks.search("ok thanks") and not ok_thanks.search("look around")
    assert not W.template_pattern("{hi}, just popping in").search(", just popping in")
