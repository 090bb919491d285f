"""Generate the built-in support world: the default, offline data set of chatforge.

    from chatforge.data.synth import generate
    world = generate(seed=0)            # a SupportWorld of plain row dicts
    world.conversations[0]["messages"]

`chatforge data synth` writes each list of the returned `SupportWorld` to a dataset.
The store, its policies and the customers' vocabulary live in `chatforge.data.world`;
this module only combines them:

    kb             help-centre text rows (policy pages, product pages, FAQs)
    conversations  raw-looking support chat logs with planted noise (PII, HTML,
                   duplicates, typos, other languages, insults), for the cleaning stage
    preferences    a good and a flawed answer to the same prompt, for DPO
    test           clean chats whose last assistant turn is a reference answer, with
                   the facts it must and must not state
    test_heldout   like test, but every chat uses held-out vocabulary never seen in training
    planted_pii    every identifier planted in `conversations`, so a cleaning stage can
                   prove none survives

Determinism: every random choice comes from `random.Random` objects seeded from `seed`
(one stream per part, so e.g. asking for more preferences does not change the KB), and
nothing iterates over a set of strings (str hashes are salted per process). The same
seed gives byte-identical rows on every run and machine.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from chatforge.atomic import atomic_write_json, staged_dir
from chatforge.config import opt, to_dict
from chatforge.data import world as W
from chatforge.data.dataset import Kind, write_dataset
from chatforge.ui import QUIET, UI

Row = dict[str, Any]
Message = dict[str, str]

NOISE_KINDS: tuple[str, ...] = (
    "email", "phone", "card", "address", "order_number", "name",
    "html", "duplicate", "near_duplicate", "non_english", "toxic", "typo",
)  # fmt: skip
PII_KINDS: tuple[str, ...] = ("email", "phone", "card", "address", "order_number", "name")

# Share of training conversations that get each kind of noise at noise=1.0.
NOISE_RATES: dict[str, float] = {
    "name": 0.08,
    "email": 0.07,
    "phone": 0.05,
    "card": 0.02,
    "address": 0.03,
    "order_number": 0.08,
    "html": 0.05,
    "typo": 0.12,
    "toxic": 0.02,
    "non_english": 0.03,
    "duplicate": 0.02,
    "near_duplicate": 0.03,
}
# Some identifiers are much likelier in some chats (a card number in a payment problem).
_BOOSTED_RATES: dict[tuple[str, str], float] = {
    ("card", "payment_failure"): 0.3,
    ("address", "change_address"): 0.4,
    **{("order_number", intent): 0.2 for intent in W.ORDER_NUMBER_INTENTS + W.ORDER_CONTEXT_INTENTS},
}
# Training mix: the common questions of a real support queue come up more often.
_INTENT_WEIGHTS: dict[str, float] = {
    "order_status": 1.6, "return": 1.3, "refund": 1.2, "shipping": 1.5, "cancel_order": 1.1,
    "greeting": 0.7, "out_of_scope": 0.6, "abusive_user": 0.5,
}  # fmt: skip

_HELD_NICKNAMES = frozenset(W.HELDOUT_NICKNAMES)  # membership tests only, never iterated
_ELECTRONICS = tuple(p for p in W.PRODUCTS if p.category == "electronics")
_SLOT = re.compile(r"\{(\w+)\}")
_MAX_TRIES = 200


@dataclass
class SupportWorld:
    """Every data set of the built-in support world, as lists of canonical rows."""

    kb: list[Row]
    conversations: list[Row]
    preferences: list[Row]
    test: list[Row]
    test_heldout: list[Row]
    planted_pii: list[Row]


def generate(
    seed: int,
    *,
    conversations: int = 3000,
    test_conversations: int = 300,
    heldout_conversations: int = 200,
    kb_articles: int = 400,
    preferences: int = 1000,
    noise: float = 1.0,
) -> SupportWorld:
    """Build the support world for `seed`; `noise` scales the raw-log noise rates (0 = clean)."""
    sizes = {
        "conversations": conversations,
        "test_conversations": test_conversations,
        "heldout_conversations": heldout_conversations,
        "kb_articles": kb_articles,
        "preferences": preferences,
    }
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if not isinstance(noise, int | float) or not math.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")

    def stream(part: str) -> random.Random:
        # A str seed is hashed with SHA-512 by `random`, so it is stable across processes.
        return random.Random(f"chatforge-synth/{seed}/{part}")

    kb = _make_kb(stream("kb"), kb_articles)
    convs, pii = _make_conversations(stream("conversations"), conversations, noise)
    # Prompts already used for training; the test splits must not repeat any of them.
    seen = {_user_key(r["messages"]) for r in convs}
    prefs = _make_preferences(stream("preferences"), preferences, seen)
    test = _make_test(stream("test"), test_conversations, seen, heldout=False)
    heldout = _make_test(stream("test_heldout"), heldout_conversations, seen, heldout=True)
    return SupportWorld(kb, convs, prefs, test, heldout, pii)


def live_users(seed: int, n: int, exclude: Iterable[Row] = (), *, stream: str = "users") -> list[Row]:
    """Conversations like the test split's (the facts a right answer states are in `meta`),
    for simulated users to bring to a served model; drawn from a stream of their own, and
    none repeats a prompt of `exclude` (pass the training and test splits)."""
    seen = {_user_key(r["messages"]) for r in exclude}
    rows = _make_test(random.Random(f"chatforge-synth/{seed}/{stream}"), n, seen, heldout=False)
    for r in rows:
        r["id"] = r["id"].replace("test-", f"{stream}-", 1)
        r["source"] = f"synth/{stream}"
        r["meta"]["split"] = stream
    return rows


# --------------------------------------------------------------------------- scenes


@dataclass
class _Order:
    number: str
    status: str
    carrier: str
    tracking: str
    placed: str
    delivered: str
    items: list[tuple[W.Product, int]]


@dataclass
class _Scene:
    """What one question is about: the intent, its sub-question, a product, maybe an order."""

    intent: str
    variant: str | None
    product: W.Product
    order: _Order | None = None

    @property
    def key(self) -> str:
        return self.intent if self.variant is None else f"{self.intent}/{self.variant}"


def _order_number(rng: random.Random) -> str:
    return f"{W.ORDER_NUMBER_PREFIX}{rng.randrange(100000, 1000000)}"


def _date(day: dt.date) -> str:
    return f"{W.MONTHS[day.month - 1]} {day.day}"


def _new_order(rng: random.Random, status: str, product: W.Product) -> _Order:
    carrier, prefix = rng.choice(W.CARRIERS)
    letters, digits = "ABCDEFGHJKLMNPQRSTUVWXYZ", "0123456789"
    tracking = prefix + "".join(rng.choice(letters) + rng.choice(digits) for _ in range(5))
    placed = dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(350))
    delivered = placed + dt.timedelta(days=rng.randrange(3, 9))
    items = [(product, rng.choice((1, 1, 1, 2)))]
    for other in rng.sample(W.PRODUCTS, rng.choice((0, 0, 1, 2))):
        if other != product:
            items.append((other, 1))
    return _Order(_order_number(rng), status, carrier, tracking, _date(placed), _date(delivered), items)


def _scene(rng: random.Random, intent: str, base: _Scene | None = None) -> _Scene:
    """A scene for `intent`; a follow-up question reuses the product and order of `base`."""
    product = base.product if base else rng.choice(W.PRODUCTS)
    order = base.order if base else None
    variants = W.VARIANTS.get(intent)
    variant = rng.choice(variants) if variants else None
    if intent in W.ORDER_CONTEXT_INTENTS:
        if order is None:
            order = _new_order(rng, rng.choice(W.ORDER_STATUSES), product)
        variant = order.status
    elif intent == "change_address":
        if order is None and rng.random() < 0.7:
            order = _new_order(rng, rng.choice(("processing", "processing", "shipped")), product)
        variant = order.status if order is not None and order.status in ("processing", "shipped") else "none"
    elif base is None and intent in ("return", "refund", "exchange", "damaged_item") and rng.random() < 0.2:
        # The support widget often attaches the customer's latest order even when the
        # answer does not depend on it.
        order = _new_order(rng, "delivered", product)
    needs_warranty = intent == "warranty" or (intent == "product_question" and variant == "warranty")
    if needs_warranty and product.category != "electronics":
        product = rng.choice(_ELECTRONICS)
    return _Scene(intent, variant, product, order)


def _order_record(order: _Order) -> str:
    lines = [
        "Order on file:",
        f"Order number: {order.number}",
        f"Status: {order.status}",
        "Items: " + ", ".join(f"{p.name} x{qty}" for p, qty in order.items),
        f"Placed on: {order.placed}",
    ]
    if order.status in ("shipped", "delivered"):
        lines += [f"Carrier: {order.carrier}", f"Tracking number: {order.tracking}"]
    if order.status == "delivered":
        lines.append(f"Delivered on: {order.delivered}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- answers


@dataclass
class _Answer:
    text: str
    required: list[str]


def _values(scene: _Scene | None) -> dict[str, str]:
    values = {**W.FACTS, **W.EXTRA_FACTS, "store": W.STORE_NAME}
    if scene is not None:
        p = scene.product
        values.update(product=p.name, price=p.price, sku=p.sku, category=p.category, feature=p.feature)
        if scene.order is not None:
            o = scene.order
            values.update(order_no=o.number, carrier=o.carrier, tracking=o.tracking, date=o.delivered)
    return values


def _plural(scene: _Scene | None) -> bool:
    return scene is not None and W.is_plural(scene.product.name)


def _answer(rng: random.Random, key: str, scene: _Scene | None, *, plural: bool | None = None) -> _Answer:
    """Compose the assistant's answer for an ANSWERS key, with the facts it must state.

    Verbs and pronouns agree with the product's name, or with `plural` when the answer
    refers to the customer's own word for it ("did they stop working?").
    """
    values = _values(scene)
    parts = [rng.choice(part) for part in W.ANSWERS[key]]
    text = W.agree(" ".join(p for p in parts if p).format(**values), _plural(scene) if plural is None else plural)
    required = [_required_value(name, scene) for name in W.REQUIRED.get(key, ())]
    for fact in required:
        if fact.lower() not in text.lower():  # a broken template in world.py, not bad input
            raise RuntimeError(f"answer {key!r} does not state required fact {fact!r}: {text!r}")
    return _Answer(text, required)


def _answer_core(rng: random.Random, key: str, scene: _Scene | None) -> str:
    """Just the informative sentence of an answer, without greetings or sign-offs."""
    skip = (W.OPENER, W.CLOSER, W.SORRY)
    parts = [p for p in W.ANSWERS[key] if p not in skip and any(p)]
    return W.agree(rng.choice([a for a in parts[0] if a]).format(**_values(scene)), _plural(scene))


def _required_value(name: str, scene: _Scene | None) -> str:
    if name.startswith('"'):
        return name.strip('"')
    if name in W.FACTS:
        return W.FACTS[name]
    if name in W.EXTRA_FACTS:
        return W.EXTRA_FACTS[name]
    assert scene is not None, name
    if name == "price":
        return scene.product.price
    if name == "feature_key":
        return scene.product.feature_key
    assert scene.order is not None, name
    return {"tracking": scene.order.tracking, "date": scene.order.delivered}[name]


# --------------------------------------------------------------------------- user turns


class _Words:
    """Draws lexicon items and templates for one chat and notes any held-out one used.

    Training splits draw from kept items only. The held-out split mixes in held-out
    items, and `rendered_heldout` tells whether the last `render` (a template with its
    slot fillers) actually landed on one. `plural` is the number of the last product
    word used, which later pronouns agree with ("I dropped them").
    """

    def __init__(self, rng: random.Random, *, heldout: bool) -> None:
        self.rng = rng
        self.heldout = heldout
        self.held_draws = 0
        self.rendered_heldout = False
        self.plural = False

    def _choose(self, kept: Sequence[str], held: Sequence[str]) -> str:
        if self.heldout and held and self.rng.random() < 0.4:
            self.held_draws += 1
            return self.rng.choice(held)
        return self.rng.choice(kept)

    def word(self, pool: str) -> str:
        return self._choose(*W.LEXICON_SPLIT[pool])

    def template(self, key: str) -> str:
        return self._choose(*W.TEMPLATE_SPLIT[key])

    def product(self, product: W.Product) -> str:
        held = [n for n in product.nicknames if n in _HELD_NICKNAMES]
        kept = [n for n in product.nicknames if n not in _HELD_NICKNAMES]
        if self.rng.random() < 0.45 and not (self.heldout and held):
            name = product.name
        else:
            name = self._choose(kept or [product.name], held)
        self.plural = W.is_plural(name)
        return name

    def render(self, key: str, scene: _Scene | None, order_no: str = "") -> str:
        def fill(m: re.Match[str]) -> str:
            slot = m.group(1)
            if slot == "product":
                assert scene is not None
                return self.product(scene.product)
            if slot == "order_no":
                return order_no
            return self.word(slot)

        before = self.held_draws
        text = _SLOT.sub(fill, self.template(key))
        self.rendered_heldout = self.held_draws > before
        # Agreement after filling: the product word of this template decides the number.
        return W.agree(text, self.plural)


def _sentence_case(text: str) -> str:
    return re.sub(r"(^|[.!?]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)


def _join(pieces: Sequence[str]) -> str:
    out = ""
    for piece in pieces:
        if out and out[-1] not in ".?!,:-":
            out += "."
        out = f"{out} {piece}" if out else piece
    return out


def _styled(rng: random.Random, text: str) -> str:
    """Customers type in all sorts of case; vary it (this is style, not noise)."""
    r = rng.random()
    if r < 0.6:
        return _sentence_case(text)
    if r < 0.88:
        return text
    return text.lower()


def _user_turn(
    rng: random.Random, words: _Words, key: str, scene: _Scene, *, first: bool, connector: bool = False
) -> str:
    """One user message: a template for `key`, sometimes with a greeting, context or politeness."""
    pieces = [words.render(key, scene)]
    if connector:
        # Always a separator: "quick follow-up is it too late" reads as one broken sentence.
        pieces[0] = f"{words.word('connector')}{rng.choice((',', ',', ' -'))} {pieces[0]}"
    if first and rng.random() < 0.22:
        ctx = words.word("ctx")
        if rng.random() < 0.5:
            pieces.insert(0, ctx)
        else:
            pieces.append(ctx)
    if first and scene.intent != "greeting" and rng.random() < 0.3:
        pieces.insert(0, words.word("hi") + rng.choice((",", "!", " -", "")))
    if rng.random() < 0.18:
        pieces.append(words.word("polite") + rng.choice((".", "!", "")))
    return _styled(rng, _join(pieces))


# --------------------------------------------------------------------------- dialogues


@dataclass
class _Dialogue:
    system: str | None
    turns: list[Message]  # alternating user / assistant, ending with assistant
    final: _Answer  # the last informative answer
    final_scene: _Scene
    intents: list[str]  # main intent, then any follow-up intent
    answers: list[str] = field(default_factory=list)  # informative answers, in order
    planted: list[tuple[int, str, str]] = field(default_factory=list)  # (turn, kind, value)
    # Per user turn: did its template (with its slot fillers) use held-out vocabulary?
    heldout_turns: list[bool] = field(default_factory=list)


def _follow_up_intent(rng: random.Random, scene: _Scene) -> str | None:
    options = [
        i
        for i in W.FOLLOW_UPS[scene.intent]
        if not (i in W.ORDER_CONTEXT_INTENTS and scene.order is None)
        and not (
            i == "change_address" and scene.order is not None and scene.order.status not in ("processing", "shipped")
        )
    ]
    return rng.choice(options) if options else None


def _template_key(scene: _Scene) -> str:
    return scene.key if scene.key in W.USER_TEMPLATES else scene.intent


def _dialogue(
    rng: random.Random,
    words: _Words,
    scene: _Scene,
    *,
    closing_ok: bool,
    main_last: bool = False,
    ask_order_number: bool = False,
) -> _Dialogue:
    """A chat about `scene`, at most four exchanges: maybe a greeting, maybe a clarifying
    exchange, the question and its answer, maybe a related second question, maybe a
    thank-you. With `main_last` the related question comes first, so the chat ends on the
    answer to `scene` (test references and preference pairs need that)."""
    informative = scene.intent not in ("greeting", "out_of_scope", "abusive_user")
    clarify = None
    if scene.intent == "warranty" and rng.random() < 0.35:
        clarify = "warranty"
    elif scene.intent == "product_question" and rng.random() < 0.3:
        clarify = "product"
    elif informative and rng.random() < 0.12:
        clarify = "vague"
    follow = None
    if rng.random() < 0.25 and not (main_last and scene.intent == "greeting"):
        follow = _follow_up_intent(rng, scene)
    if main_last and follow is not None:
        clarify = None  # "also, I need some help" would not read as a chat
    greet = scene.intent != "greeting" and rng.random() < 0.12
    closing = closing_ok and rng.random() < 0.3
    # Keep the optional exchanges in order of importance while they fit.
    budget = 3 - int(ask_order_number)

    def fits(wanted: bool) -> bool:
        nonlocal budget
        if wanted and budget > 0:
            budget -= 1
            return True
        return False

    clarify = clarify if fits(clarify is not None) else None
    related = _scene(rng, follow, base=scene) if fits(follow is not None) and follow is not None else None
    greet = fits(greet)
    closing = fits(closing)

    system = None
    if scene.order is not None:
        system = rng.choice(W.SYSTEM_PROMPTS) + "\n\n" + _order_record(scene.order)
    elif rng.random() < 0.3:
        system = rng.choice(W.SYSTEM_PROMPTS)

    turns: list[Message] = []
    answers: list[str] = []
    planted: list[tuple[int, str, str]] = []
    heldout_turns: list[bool] = []

    def say(user: str, assistant: str) -> None:
        # Called right after the user turn is rendered, so `rendered_heldout` is its own.
        heldout_turns.append(words.rendered_heldout)
        turns.append({"role": "user", "content": user})
        turns.append({"role": "assistant", "content": assistant})

    def ask_related(related: _Scene) -> _Answer:
        answer = _answer(rng, related.key, related)
        connector = bool(turns) and informative and rng.random() < 0.7
        say(_user_turn(rng, words, _template_key(related), related, first=not turns, connector=connector), answer.text)
        answers.append(answer.text)
        return answer

    if greet:
        hello = _Scene("greeting", None, scene.product)
        say(_user_turn(rng, words, "greeting", hello, first=True), _answer(rng, "greeting", None).text)
    if related is not None and main_last:
        ask_related(related)
    main_key = _template_key(scene)
    if clarify == "warranty":
        vague = _styled(rng, words.render("warranty_vague", scene))
        say(vague, _answer(rng, "clarify/warranty", None, plural=words.plural).text)
        main_key = f"warranty_reply/{scene.variant}"
    elif clarify is not None:
        opener_key = "product_vague" if clarify == "product" else "vague"
        say(_user_turn(rng, words, opener_key, scene, first=not turns), _answer(rng, f"clarify/{clarify}", None).text)
    connector = bool(turns) and related is not None and main_last and informative and rng.random() < 0.7
    question = _user_turn(rng, words, main_key, scene, first=not turns, connector=connector)
    main = _answer(rng, scene.key, scene)
    if ask_order_number:
        number = scene.order.number if scene.order is not None else _order_number(rng)
        say(question, _answer(rng, "ask_order_number", None).text)
        # No case styling here: the planted number must stay exactly as written.
        planted.append((len(turns), "order_number", number))
        question = words.render("order_no_reply", scene, order_no=number)
    say(question, main.text)
    answers.append(main.text)
    final, final_scene = main, scene
    if related is not None and not main_last:
        final, final_scene = ask_related(related), related
    if closing:
        say(_styled(rng, words.render("closing", scene)), _answer(rng, "closing", None).text)
    intents = [scene.intent] + ([related.intent] if related is not None else [])
    return _Dialogue(system, turns, final, final_scene, intents, answers, planted, heldout_turns)


def _messages(system: str | None, turns: list[Message]) -> list[Message]:
    return ([{"role": "system", "content": system}] if system is not None else []) + turns


def _user_key(messages: list[Message]) -> str:
    """What a chat asks, ignoring case and spacing: two chats with the same key are the same prompt."""
    return "\x1f".join(" ".join(m["content"].lower().split()) for m in messages if m["role"] == "user")


def _schedule(rng: random.Random, n: int, weights: dict[str, float] | None = None) -> list[str]:
    """Intents for n chats: each intent once first (so small sets cover all), then weighted."""
    first = list(W.INTENTS)
    rng.shuffle(first)
    w = [(weights or {}).get(i, 1.0) for i in W.INTENTS]
    rest = rng.choices(W.INTENTS, weights=w, k=max(0, n - len(first)))
    return (first + rest)[:n]


# --------------------------------------------------------------------------- noise


def _luhn_check_digit(partial: str) -> str:
    # Double every second digit counting from the right of the full number, i.e. from the
    # rightmost digit of the number without its check digit.
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str(-total % 10)


def _card(rng: random.Random) -> str:
    brand = rng.choice(("visa", "visa", "mastercard", "amex", "discover"))
    prefix, length = {
        "visa": ("4", 16),
        "mastercard": (f"5{rng.randint(1, 5)}", 16),
        "amex": (rng.choice(("34", "37")), 15),
        "discover": ("6011", 16),
    }[brand]
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    number = body + _luhn_check_digit(body)
    sep = rng.choice((" ", " ", "-", ""))
    groups = (4, 6, 5) if length == 15 else (4, 4, 4, 4)
    out, i = [], 0
    for g in groups:
        out.append(number[i : i + g])
        i += g
    return sep.join(out)


def _phone(rng: random.Random) -> str:
    area = rng.randrange(201, 990)
    line = f"01{rng.randrange(100):02d}"  # 555-01xx numbers are reserved for fiction
    style = rng.randrange(8)
    if style == 0:
        return f"({area}) 555-{line}"
    if style == 1:
        return f"+1 {area}-555-{line}"
    if style == 2:
        return f"{area}.555.{line}"
    if style == 3:
        return f"{area}-555-{line}"
    if style == 4:
        return f"+44 7700 900{rng.randrange(1000):03d}"
    if style == 5:
        return f"07700 900{rng.randrange(1000):03d}"
    if style == 6:
        return f"+49 30 5550 {rng.randrange(1000, 10000)}"
    pairs = " ".join(f"{rng.randrange(100):02d}" for _ in range(4))
    return f"+33 6 {pairs}"


def _address(rng: random.Random) -> str:
    city, state, zip3 = rng.choice(W.CITIES)
    street = f"{rng.randrange(12, 9900)} {rng.choice(W.STREETS)}"
    if rng.random() < 0.3:
        street += f", Apt {rng.randrange(1, 40)}{rng.choice('ABCD')}"
    return f"{street}, {city}, {state} {zip3}{rng.randrange(100):02d}"


def _email(rng: random.Random, first: str, last: str) -> str:
    given, family = first.lower(), last.lower()
    local = rng.choice(
        (
            f"{given}.{family}",
            f"{given}{family}{rng.randrange(10, 99)}",
            f"{given[0]}{family}",
            f"{given}_{family}{rng.randrange(70, 100)}",
        )
    )
    return f"{local}@{rng.choice(W.EMAIL_DOMAINS)}"


def _typo(rng: random.Random, text: str) -> str:
    """One or two slips of the finger: swapped, dropped or doubled letters in longer words."""
    words = list(re.finditer(r"[A-Za-z]{4,}", text))
    picked = rng.sample(words, min(len(words), rng.choice((1, 1, 2))))
    # Right to left, so an edit never shifts the position of one still to come.
    for m in sorted(picked, key=lambda m: m.start(), reverse=True):
        w = m.group(0)
        i = rng.randrange(1, len(w) - 1)
        op = rng.randrange(3)
        if op == 0:
            new = w[:i] + w[i + 1] + w[i] + w[i + 2 :]
        elif op == 1:
            new = w[:i] + w[i + 1 :]
        else:
            new = w[:i] + w[i] + w[i:]
        text = text[: m.start()] + new + text[m.end() :]
    return text


def _html(rng: random.Random, text: str) -> str:
    """Markup a chat widget might leave in a log; never touches identifiers inside the text."""
    text = text.replace(" and ", " &amp; ").replace("'", "&#39;")
    text = re.sub(r"([.!?]) ", r"\1<br>", text, count=1)
    return rng.choice(("<p>{}</p>", "<div>{}</div>", "{}<br>", "<b>{}</b>", "{}&nbsp;")).format(text)


def _rate(kind: str, intent: str, noise: float) -> float:
    return min(1.0, _BOOSTED_RATES.get((kind, intent), NOISE_RATES[kind]) * noise)


def _non_english_chat(rng: random.Random, intent: str) -> list[Message] | None:
    """A short chat in Spanish, French or German about `intent`, if the world has one."""
    chats = [c for c in W.NON_ENGLISH_CHATS if c[1] == intent]
    if not chats:
        return None
    lang, _, questions, answer = rng.choice(chats)
    user = f"{rng.choice(W.NON_ENGLISH_GREETINGS[lang])} {rng.choice(questions)}"
    turns = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    if rng.random() < 0.5:
        thanks, reply = rng.choice(W.NON_ENGLISH_THANKS[lang])
        turns += [{"role": "user", "content": thanks}, {"role": "assistant", "content": reply}]
    return turns


def _run_on(text: str, addition: str) -> str:
    """`text` with `addition` after it, punctuated so the two do not read as one sentence.

    A new sentence after a word gets a full stop ("... the counter. Account email: ...");
    a lower-case fragment gets a comma ("... my order, phone: ..."); a parenthesis or a
    dash needs nothing.
    """
    if not text[-1].isalnum() or addition[0] in "(-":
        return f"{text} {addition}"
    glue = "," if addition[0].islower() else "."
    return f"{text}{glue} {addition}"


def _noisy_chat(
    rng: random.Random, intent: str, noise: float
) -> tuple[list[Message], list[str], list[tuple[str, str]]]:
    """One raw training chat: (messages, noise kinds, planted (kind, value) pairs)."""
    # Some of the non-English noise is a whole chat in another language.
    if rng.random() < _rate("non_english", intent, noise) / 2:
        foreign = _non_english_chat(rng, intent)
        if foreign is not None:
            return foreign, ["non_english"], []
    plan = [k for k in (*PII_KINDS, "html", "typo", "toxic", "non_english") if rng.random() < _rate(k, intent, noise)]
    scene = _scene(rng, intent)
    ask = "order_number" in plan and intent in W.ORDER_NUMBER_INTENTS and scene.order is None and rng.random() < 0.6
    d = _dialogue(rng, _Words(rng, heldout=False), scene, closing_ok=True, ask_order_number=ask)
    turns = d.turns
    users = [i for i, m in enumerate(turns) if m["role"] == "user"]
    fixed = {i for i, _, _ in d.planted}  # turns holding an exact identifier already
    kinds: list[str] = []
    planted = [(kind, value) for _, kind, value in d.planted]

    def edit(i: int, fn: Callable[[str], str]) -> bool:
        before = turns[i]["content"]
        turns[i]["content"] = fn(before)
        return turns[i]["content"] != before

    if "toxic" in plan and intent != "abusive_user":
        insult = _Words(rng, heldout=False).word("insult")
        if edit(users[0], lambda t: rng.choice((f"{insult}. {t}", _run_on(t, f"{insult}!")))):
            kinds.append("toxic")
    if "typo" in plan:
        candidates = [i for i in users if i not in fixed]
        changed = False
        for i in rng.sample(candidates, min(2, len(candidates))):
            changed = edit(i, lambda t: _typo(rng, t)) or changed
        if changed:
            kinds.append("typo")
    if "non_english" in plan and edit(rng.choice(users), lambda t: _run_on(t, rng.choice(W.NON_ENGLISH_LINES))):
        kinds.append("non_english")

    first, last = rng.choice(W.FIRST_NAMES), rng.choice(W.LAST_NAMES)
    values: dict[str, Callable[[], str]] = {
        "name": lambda: f"{first} {last}",
        "email": lambda: _email(rng, first, last),
        "phone": lambda: _phone(rng),
        "card": lambda: _card(rng),
        "address": lambda: _address(rng),
        "order_number": lambda: scene.order.number if scene.order is not None else _order_number(rng),
    }
    for kind in PII_KINDS:
        if kind not in plan or (kind == "order_number" and ask):
            continue
        value = values[kind]()
        phrase = rng.choice(W.PII_PHRASES[kind]).format(v=value)
        target = users[0] if kind == "order_number" else rng.choice(users)
        text = turns[target]["content"]
        if kind == "name" and phrase.endswith(".") and rng.random() < 0.5:
            turns[target]["content"] = f"{phrase} {text}"
        else:
            turns[target]["content"] = _run_on(text, phrase)
        planted.append((kind, value))
    planted_kinds = {kind for kind, _ in planted}  # membership only
    kinds += [k for k in PII_KINDS if k in planted_kinds]

    if "html" in plan:
        edit(rng.choice(users), lambda t: _html(rng, t))
        if rng.random() < 0.3:
            i = rng.choice([i for i, m in enumerate(turns) if m["role"] == "assistant"])
            edit(i, lambda t: f"<p>{t}</p>")
        kinds.append("html")
    return _messages(d.system, turns), kinds, planted


def _near_duplicate(rng: random.Random, messages: list[Message]) -> list[Message]:
    """A copy with small edits that keep every identifier intact (a re-sent or re-logged chat)."""
    out = [dict(m) for m in messages]
    first_user = next(i for i, m in enumerate(out) if m["role"] == "user")
    out[first_user]["content"] = rng.choice(W.NEAR_DUP_PREFIXES) + out[first_user]["content"]
    last = out[-1]["content"]
    out[-1]["content"] = rng.choice((last + " :)", last.rstrip(".!") + "!", last + " Thanks!"))
    return out


def _make_conversations(rng: random.Random, n: int, noise: float) -> tuple[list[Row], list[Row]]:
    rows: list[Row] = []
    pii: list[Row] = []
    seen: set[str] = set()  # membership only; rows are kept in a list
    sources: list[tuple[Row, list[tuple[str, str]]]] = []  # fresh rows a duplicate may copy
    schedule = _schedule(rng, n, _INTENT_WEIGHTS)
    for i in range(n):
        rid = f"conv-{i + 1:06d}"
        r = rng.random()
        dup, near = _rate("duplicate", "", noise), _rate("near_duplicate", "", noise)
        if i >= len(W.INTENTS) and sources and r < dup + near:
            src, planted = rng.choice(sources)
            kind = "duplicate" if r < dup else "near_duplicate"
            messages = [dict(m) for m in src["messages"]]
            if kind == "near_duplicate":
                messages = _near_duplicate(rng, messages)
            row = _conversation_row(rid, messages, src["meta"]["intent"], src["meta"]["noise"] + [kind])
        else:
            # Retry on an accidental repeat, so the only exact copies are the labelled ones.
            for _ in range(_MAX_TRIES):
                messages, kinds, planted = _noisy_chat(rng, schedule[i], noise)
                if json.dumps(messages) not in seen:
                    break
            row = _conversation_row(rid, messages, schedule[i], kinds)
            sources.append((row, planted))
        seen.add(json.dumps(row["messages"]))
        rows.append(row)
        pii += [{"id": rid, "type": kind, "value": value} for kind, value in planted]
    return rows, pii


def _conversation_row(rid: str, messages: list[Message], intent: str, kinds: list[str]) -> Row:
    ordered = [k for k in NOISE_KINDS if k in kinds]
    return {
        "id": rid,
        "messages": messages,
        "source": "synth/conversations",
        "meta": {"intent": intent, "noise": ordered},
    }


# --------------------------------------------------------------------------- preferences


# Whole values only: "$4.99" must not be found inside "$14.99".
_WRONG_RE = re.compile(
    r"(?<![\w$.])(?:" + "|".join(re.escape(k) for k in sorted(W.WRONG_FACTS, key=len, reverse=True)) + r")(?!\w)"
)


def _flawed(rng: random.Random, d: _Dialogue) -> tuple[str, str]:
    """A worse answer to the dialogue's last question, and what is wrong with it."""
    chosen = d.turns[-1]["content"]
    scene = d.final_scene
    options = ["rude", "vague"]
    if _WRONG_RE.search(chosen):
        options += ["wrong_policy", "wrong_policy"]
    context_scene = scene.order is not None and scene.intent in (*W.ORDER_CONTEXT_INTENTS, "change_address")
    if context_scene or len(d.answers) >= 2:
        options += ["ignores_context", "ignores_context"]
    flaw = rng.choice(options)
    if flaw == "wrong_policy":
        rejected = _WRONG_RE.sub(lambda m: W.WRONG_FACTS[m.group(0)], chosen)
    elif flaw == "ignores_context" and context_scene:
        # Answer as if the order were in some other state: the record was not read.
        assert scene.order is not None
        statuses = ("processing", "shipped") if scene.intent == "change_address" else W.ORDER_STATUSES
        other = rng.choice([s for s in statuses if s != scene.order.status])
        fake = replace(scene, variant=other, order=replace(scene.order, status=other))
        rejected = _answer(rng, fake.key, fake).text
    elif flaw == "ignores_context":
        rejected = d.answers[-2]  # answers the earlier question again
    elif flaw == "rude":
        core = _answer_core(rng, scene.key, scene)
        rejected = f"{rng.choice(W.RUDE_PREFIX)} {core} {rng.choice(W.RUDE_SUFFIX)}"
    else:
        rejected = rng.choice(W.VAGUE_ANSWERS)
    if rejected == chosen:
        flaw, rejected = "vague", rng.choice(W.VAGUE_ANSWERS)
    return flaw, rejected


def _make_preferences(rng: random.Random, n: int, seen: set[str]) -> list[Row]:
    rows: list[Row] = []
    for i, intent in enumerate(_schedule(rng, n, _INTENT_WEIGHTS)):
        for _ in range(_MAX_TRIES):
            scene = _scene(rng, intent)
            d = _dialogue(rng, _Words(rng, heldout=False), scene, closing_ok=False, main_last=True)
            key = _user_key(d.turns)
            if key not in seen:
                break
        seen.add(key)
        flaw, rejected = _flawed(rng, d)
        rows.append(
            {
                "id": f"pref-{i + 1:06d}",
                "prompt": _messages(d.system, d.turns[:-1]),
                "chosen": d.turns[-1]["content"],
                "rejected": rejected,
                "source": "synth/preferences",
                "meta": {"intent": intent, "flaw": flaw},
            }
        )
    return rows


# --------------------------------------------------------------------------- test splits


def _forbidden(rng: random.Random, d: _Dialogue, messages: list[Message]) -> list[str]:
    """Facts of unrelated topics that a correct final answer must not state."""
    text = " ".join(m["content"] for m in messages).lower()
    topics = [t for intent in d.intents for t in W.ON_TOPIC[intent]]
    candidates = [fact for topic, fact in W.FACT_TOPICS if topic not in topics and fact.lower() not in text]
    out = rng.sample(candidates, min(len(candidates), rng.choice((2, 3))))
    if d.final_scene.intent == "product_question":
        # Another product's price: the answer must be about the product asked.
        others = [p.price for p in W.PRODUCTS if p.price.lower() not in text]
        out.append(rng.choice(others))
    return out


def _make_test(rng: random.Random, n: int, seen: set[str], *, heldout: bool) -> list[Row]:
    split = "test_heldout" if heldout else "test"
    prefix = "heldout" if heldout else "test"
    rows: list[Row] = []
    for i, intent in enumerate(_schedule(rng, n)):
        # The scored question itself must use held-out vocabulary, not just a greeting or
        # an earlier turn. That is a must; a prompt training has not seen is a best effort
        # (a huge split may run out of new ones), as for every other part.
        usable: tuple[_Dialogue, str] | None = None
        for _ in range(_MAX_TRIES):
            d = _dialogue(rng, _Words(rng, heldout=heldout), _scene(rng, intent), closing_ok=False, main_last=True)
            key = _user_key(d.turns)
            if d.heldout_turns[-1] or not heldout:
                usable = (d, key)
                if key not in seen:
                    break
        if usable is None:
            raise RuntimeError(f"no held-out phrasing found for {intent!r} in {_MAX_TRIES} tries")
        d, key = usable
        seen.add(key)
        messages = _messages(d.system, d.turns)
        meta = {
            "intent": intent,
            "required_facts": d.final.required,
            "forbidden_facts": _forbidden(rng, d, messages),
            "split": split,
        }
        rows.append({"id": f"{prefix}-{i + 1:06d}", "messages": messages, "source": f"synth/{split}", "meta": meta})
    return rows


# --------------------------------------------------------------------------- knowledge base


def _article(
    rng: random.Random,
    titles: Sequence[str],
    groups: Sequence[W.Part],
    extras: W.Part,
    values: dict[str, str],
    *,
    plural: bool = False,
) -> str:
    sentences = [rng.choice(g) for g in groups]
    sentences += rng.sample(extras, rng.randint(0, min(2, len(extras))))
    rng.shuffle(sentences)
    layout = rng.random()
    if layout < 0.55:
        body = " ".join(sentences)
    elif layout < 0.85:
        cut = rng.randint(1, max(1, len(sentences) - 1))
        body = " ".join(sentences[:cut]) + "\n\n" + " ".join(sentences[cut:])
    else:
        body = "\n".join(f"- {s}" for s in sentences)
    return W.agree(f"{rng.choice(titles)}\n\n{body.strip()}".format(**values), plural)


def _faq(rng: random.Random, values: dict[str, str]) -> str:
    title = rng.choice(W.FAQ_TITLES)
    items = rng.sample(W.FAQ_ITEMS, rng.randint(3, 5))
    qa = [f"Q: {rng.choice(q)}\nA: {rng.choice(a)}" for _, q, a in items]
    return (title + "\n\n" + "\n\n".join(qa)).format(**values)


def _make_kb(rng: random.Random, n: int) -> list[Row]:
    # Every topic once, then mostly product pages (a catalog is big), some FAQs.
    kinds = [*W.KB_TOPICS, "product", "faq"]
    first = list(kinds)
    rng.shuffle(first)
    weights = [1.0] * len(W.KB_TOPICS) + [len(W.KB_TOPICS) * 0.55, len(W.KB_TOPICS) * 0.2]
    topics = (first + rng.choices(kinds, weights=weights, k=max(0, n - len(first))))[:n]
    rows: list[Row] = []
    seen: set[str] = set()
    for i, topic in enumerate(topics):
        for _ in range(_MAX_TRIES):
            if topic == "product":
                product = rng.choice(W.PRODUCTS)
                values = _values(_Scene("product_question", None, product))
                titles, groups, extras = W.PRODUCT_PAGE
                if product.category == "electronics":
                    groups = (*groups, W.ELECTRONICS_WARRANTY)
                text = _article(rng, titles, groups, extras, values, plural=W.is_plural(product.name))
            elif topic == "faq":
                text = _faq(rng, _values(None))
            else:
                titles, groups, extras = W.KB_TOPICS[topic]
                text = _article(rng, titles, groups, extras, _values(None))
            if text not in seen:
                break
        seen.add(text)
        rows.append({"id": f"kb-{i + 1:06d}", "text": text, "source": "synth/kb", "meta": {"topic": topic}})
    return rows


# --------------------------------------------------------------------------- command

DATASETS: tuple[str, ...] = ("kb", "conversations", "preferences", "test", "test_heldout")
_KINDS: dict[str, Kind] = {
    "kb": "text",
    "conversations": "conversations",
    "preferences": "preferences",
    "test": "conversations",
    "test_heldout": "conversations",
}


@dataclass
class WorldSize:
    """How much of the support world to generate."""

    conversations: int = opt(3000, "training conversations (raw logs, with noise)", ge=1)
    test_conversations: int = opt(300, "test conversations with reference answers and required facts", ge=1)
    heldout_conversations: int = opt(200, "test conversations in held-out vocabulary (phrasings training never uses)", ge=1)
    kb_articles: int = opt(400, "knowledge-base articles (text for pretraining)", ge=1)
    preferences: int = opt(1000, "preference pairs (a good and a flawed answer) for DPO", ge=1)
    noise: float = opt(1.0, "scale of raw-log noise (PII, HTML, duplicates, typos, other languages, insults); 0 = clean", ge=0, le=10)


@dataclass
class SynthConfig(WorldSize):
    """`chatforge data synth`: generate the built-in support world (offline, deterministic)."""

    out: str = opt("", "output directory; one dataset per part is written inside it", required=True)
    seed: int = opt(0, "random seed: the same seed gives the same data, byte for byte")
    overwrite: bool = opt(False, "replace OUT if it already exists (atomically)")


def _is_world_dir(path: Path) -> bool:
    """Whether `path` is a support world written by `data synth` (so `--overwrite` may replace it)."""
    ours = {*DATASETS, "planted_pii.jsonl", "world.json"}
    return (path / "world.json").is_file() and all(p.name in ours for p in path.iterdir())


def main(cfg: SynthConfig, ui: UI = QUIET) -> dict[str, Any]:
    """Run `data synth`: write every part as a dataset under `cfg.out`; returns their manifests."""
    sizes = {f.name: getattr(cfg, f.name) for f in fields(WorldSize)}
    t0 = time.perf_counter()
    with ui.progress("synth", total=1, unit="steps") as advance:
        world = generate(cfg.seed, **sizes)
        advance(1)
    created_by = {"command": "data synth", "config": to_dict(cfg)}
    manifests: dict[str, Any] = {}
    # The whole world directory is swapped in at once: its parts always belong together.
    with staged_dir(Path(cfg.out), overwrite=cfg.overwrite, replaceable=_is_world_dir, what="a support world") as tmp:
        for name in DATASETS:
            rows = getattr(world, name)
            manifests[name] = write_dataset(tmp / name, _KINDS[name], rows, created_by=created_by)
        with open(tmp / "planted_pii.jsonl", "w", encoding="utf-8") as f:
            for item in world.planted_pii:
                f.write(json.dumps(item, ensure_ascii=False) + "\n")
        index = {
            "store": {"name": W.STORE_NAME, "domain": W.STORE_DOMAIN, "facts": W.FACTS},
            "seed": cfg.seed,
            "sizes": sizes,
            "datasets": {n: {"kind": m["kind"], "rows": m["num_rows"], "content_hash": m["content_hash"]} for n, m in manifests.items()},
            "planted_pii": len(world.planted_pii),
            "created_by": created_by,
        }
        atomic_write_json(tmp / "world.json", index)
    ui.note(f"support world (seed {cfg.seed}) written to {cfg.out} in {time.perf_counter() - t0:.1f}s:")
    for name, m in manifests.items():
        ui.note(f"  {name:<14} {m['num_rows']:>6,} {m['kind']:<13} {m['content_hash'][:19]}")
    ui.note(f"  {'planted_pii':<14} {len(world.planted_pii):>6,} identifiers planted in the training logs (planted_pii.jsonl)")
    return manifests
