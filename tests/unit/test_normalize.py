"""Text normalization (`chatforge.data.normalize`): each part, its switch, idempotence, the step."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatforge.config import load_config
from chatforge.data.normalize import NormalizeConfig, Normalizer, _Pipeline, normalize_text, read_wordlist
from chatforge.data.synth import generate
from chatforge.errors import ConfigError

DEFAULT = NormalizeConfig()


def norm(text: str, **options: Any) -> str:
    return normalize_text(text, NormalizeConfig(**options))


def conv(*contents: str, system: str | None = None) -> dict[str, Any]:
    """A conversation row: contents alternate user / assistant."""
    messages = [{"role": "system", "content": system}] if system is not None else []
    messages += [{"role": ("user", "assistant")[i % 2], "content": c} for i, c in enumerate(contents)]
    return {"id": "c1", "messages": messages, "source": "test", "meta": {"intent": "x"}}


# --------------------------------------------------------------------------------------
# HTML


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("<p>Hi<br>there</p>", "Hi\nthere"),
        ("one<br/>two<br />three", "one\ntwo\nthree"),
        ("<div>first</div><div>second</div>", "first\nsecond"),
        ("<b>bold</b> and <i>italic</i> and <span class='x'>span</span>", "bold and italic and span"),
        ("<div><p><b><i>deep</i></b></p></div>", "deep"),
        ('<a href="https://example.com/?a=1&amp;b=2" target=_blank>the link</a>', "the link"),
        ("<UL><LI>one</LI><LI>two</LI></UL>", "one\ntwo"),
        ("<table><tr><td>a</td><td>b</td></tr></table>", "a b"),
        ("before<script type='text/javascript'>alert('x<y')</script>after", "beforeafter"),
        ("<style>p { color: red }</style>styled", "styled"),
        ("keep <!-- a comment <b>x</b> --> this", "keep this"),
        ("<!DOCTYPE html><html><body>page</body></html>", "page"),
        ("<input type='checkbox' checked> ok", "ok"),
    ],
)
def test_html_tags_are_removed_and_block_tags_become_line_breaks(raw: str, want: str) -> None:
    assert normalize_text(raw) == want


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("fish &amp; chips", "fish & chips"),
        ("&lt;3 &quot;quoted&quot; it&#39;s &#x27;hex&#x27;", "<3 \"quoted\" it's 'hex'"),
        ("price&nbsp;$5", "price $5"),
        ("caf&eacute; &euro;3", "café €3"),
    ],
)
def test_html_entities_are_decoded(raw: str, want: str) -> None:
    assert normalize_text(raw) == want


@pytest.mark.parametrize(
    "text",
    [
        "a < b and c > d",
        "I <3 this store",
        "if x<y then y>x",
        "a<b and c>d",  # a tag name, but its "attributes" are not attribute syntax
        "Contact <EMAIL_1> or <PHONE_2> about <ORDER_1>",  # PII placeholders
        "use <angle brackets> freely",
        "AT&T, R&D, Q&A and &not an entity; &madeup;",
        "1 << 3 >> 1",
    ],
)
def test_text_that_only_looks_like_markup_survives(text: str) -> None:
    assert normalize_text(text) == text


def test_escaped_markup_is_markup_too_so_normalizing_stays_idempotent() -> None:
    # "&lt;b&gt;" decodes to "<b>", which a second pass would strip; so it goes in the first.
    assert normalize_text("&lt;b&gt;bold&lt;/b&gt; text") == "bold text"
    assert normalize_text("&amp;amp;") == "&"


def test_strip_html_off_keeps_tags_and_entities() -> None:
    assert norm("<b>x</b> &amp; y", strip_html=False) == "<b>x</b> &amp; y"


# --------------------------------------------------------------------------------------
# control and invisible characters


def test_control_and_zero_width_characters_are_removed() -> None:
    raw = "a\x00b\x07c\x1bd\x7fe\u200bf\u200cg\u200dh\u2060i\ufeffj\u00adk\u202el"
    assert normalize_text(raw) == "abcdefghijkl"


def test_line_break_controls_become_newlines_and_tabs_survive_without_collapsing() -> None:
    assert normalize_text("one\r\ntwo\rthree\x0bfour\u2028five") == "one\ntwo\nthree\nfour\nfive"
    assert norm("a\tb\x01c", collapse_whitespace=False) == "a\tbc"


def test_remove_control_off_keeps_them() -> None:
    assert norm("a\x00b\u200bc", remove_control=False) == "a\x00b\u200bc"


# --------------------------------------------------------------------------------------
# Unicode forms and mojibake


def test_nfc_composes_accents_but_keeps_compatibility_characters() -> None:
    assert normalize_text("cafe\u0301") == "caf\u00e9"
    assert normalize_text("ﬁle x² ＡＢＣ") == "ﬁle x² ＡＢＣ"


def test_nfkc_also_folds_compatibility_characters() -> None:
    assert norm("ﬁle x² ＡＢＣ cafe\u0301", unicode="NFKC") == "file x2 ABC caf\u00e9"


def test_nfkc_full_width_markup_is_folded_then_stripped() -> None:
    assert norm("＜b＞bold＜/b＞", unicode="NFKC") == "bold"


def test_unicode_none_keeps_code_points() -> None:
    assert norm("cafe\u0301", unicode="none") == "cafe\u0301"


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("cafÃ©", "café"),
        ("donâ€™t", "don’t"),
        ("Ã¼ber naÃ¯ve", "über naïve"),
        ("â€œquotedâ€\x9d", "“quoted”"),
    ],
)
def test_mojibake_is_repaired(raw: str, want: str) -> None:
    assert normalize_text(raw) == want


@pytest.mark.parametrize(
    "text", ["café", "naïve résumé", "SÃO PAULO", "Ärger über Öl", "ÂBC", "日本語のテキスト", "Привет"]
)
def test_clean_unicode_text_is_left_alone(text: str) -> None:
    assert normalize_text(text) == text


def test_fix_mojibake_off_keeps_it() -> None:
    assert norm("cafÃ©", fix_mojibake=False) == "cafÃ©"


# --------------------------------------------------------------------------------------
# whitespace


def test_whitespace_is_collapsed() -> None:
    raw = "  a   b\t\tc \u00a0 d  \n\n\n\n  e   \n f\u3000g  "
    assert normalize_text(raw) == "a b c d\n\ne\nf g"


def test_collapse_whitespace_off_keeps_it() -> None:
    assert norm("  a   b \n\n\n c ", collapse_whitespace=False) == "  a   b \n\n\n c "


def test_empty_and_blank_strings() -> None:
    assert normalize_text("") == ""
    assert normalize_text(" \n\t \u200b ") == ""


# --------------------------------------------------------------------------------------
# the classic recipe (off by default)


def test_classic_recipe_options() -> None:
    text = "The Cat, sadly, sat on THE mat!"
    assert normalize_text(text) == text  # all three are off by default
    assert norm(text, lowercase=True) == "the cat, sadly, sat on the mat!"
    assert norm(text, remove_punctuation=True) == "The Cat sadly sat on THE mat"
    assert norm(text, remove_stopwords=True) == "Cat, sadly, sat mat!"
    assert norm(text, lowercase=True, remove_punctuation=True, remove_stopwords=True) == "cat sadly sat mat"


def test_stopword_removal_keeps_contractions_and_words_containing_stopwords() -> None:
    assert norm("I'm theory and other items", remove_stopwords=True) == "I'm theory items"
    assert "the" in read_wordlist("stopwords_en.txt")


def test_unicode_punctuation_is_removed_too() -> None:
    assert norm("«Bonjour» — dit-il… ¿qué? “ok”", remove_punctuation=True) == "Bonjour ditil qué ok"


def test_help_says_the_classic_recipe_hurts_a_generative_model() -> None:
    fields = {f.name: f for f in dataclasses.fields(NormalizeConfig)}
    for name in ("lowercase", "remove_punctuation", "remove_stopwords"):
        help_text = fields[name].metadata["help"]
        assert "generative model" in help_text and "off by default" in help_text, name


def test_config_rejects_an_unknown_unicode_form() -> None:
    with pytest.raises(ConfigError, match="unicode"):
        load_config(NormalizeConfig, overrides={"unicode": "NFD"})


def test_disabled_changes_nothing() -> None:
    raw = "<b>x</b>  \u200b"
    assert norm(raw, enabled=False) == raw


# --------------------------------------------------------------------------------------
# idempotence and size

_PIECES = st.sampled_from(
    [*"ab <>/&;#1\n\t\r é́ÃÂ©â€™\u200b\xad\xa0ＡＣ＜＞ﬁ²İ", "<br>", "&amp;", "<p>", "</div>", "&lt;", "&gt;",
     "&#x26;", "&#769;", "<!--", "-->", "<script>", "</script>", "Ã©", "â€™", "&nbsp;", " the ", "I'm", "<b>"]
)  # fmt: skip
_TEXTS = st.lists(_PIECES, max_size=40).map("".join) | st.text(max_size=80)
_CONFIGS = [
    NormalizeConfig(),
    NormalizeConfig(unicode="NFKC"),
    NormalizeConfig(unicode="NFKC", lowercase=True, remove_punctuation=True, remove_stopwords=True),
    NormalizeConfig(collapse_whitespace=False),
    NormalizeConfig(strip_html=False, remove_control=False, unicode="none"),
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_TEXTS, which=st.integers(0, len(_CONFIGS) - 1))
def test_normalizing_twice_equals_normalizing_once(text: str, which: int) -> None:
    cfg = _CONFIGS[which]
    once = normalize_text(text, cfg)
    assert normalize_text(once, cfg) == once


def test_a_very_long_text_is_normalized_whole() -> None:
    raw = "<p>caf\u00c3\u00a9 &amp; tea</p>  \u200b" * 20_000  # ~0.6 MB
    out = normalize_text(raw)
    assert out.count("café & tea") == 20_000
    assert "<" not in out and "\u200b" not in out and "  " not in out


def test_clean_support_world_text_is_unchanged() -> None:
    world = generate(
        0, conversations=10, test_conversations=60, heldout_conversations=10, kb_articles=60, preferences=10
    )
    texts = [m["content"] for r in world.test for m in r["messages"]] + [r["text"] for r in world.kb]
    assert [normalize_text(t) for t in texts] == texts


# --------------------------------------------------------------------------------------
# the step


def test_step_normalizes_every_text_and_reports_a_change() -> None:
    row = conv("<p>Where&#39;s my order?</p>", "It  shipped<br>yesterday.", system="Be nice.\r\n")
    before = pickle.dumps(row)
    out = Normalizer(DEFAULT)(row, "conversations")
    assert out.changed and out.reason is None and out.row is not None
    assert [m["content"] for m in out.row["messages"]] == ["Be nice.", "Where's my order?", "It shipped\nyesterday."]
    assert out.row["id"] == "c1" and out.row["meta"] == {"intent": "x"}
    assert pickle.dumps(row) == before  # the input row is not modified


def test_step_leaves_a_clean_row_unchanged() -> None:
    row = conv("Where is my order?", "It shipped yesterday.")
    out = Normalizer(DEFAULT)(row, "conversations")
    assert out.row is row and not out.changed


def test_step_handles_text_and_preference_rows() -> None:
    text = Normalizer(DEFAULT)({"id": "t", "text": "<h1>Returns</h1>30 days.", "source": "", "meta": {}}, "text")
    assert text.row is not None and text.row["text"] == "Returns\n30 days."
    pref = {
        "id": "p",
        "prompt": [{"role": "user", "content": "hi&nbsp;there"}],
        "chosen": "<b>Hello!</b>",
        "rejected": "what\u200b",
        "source": "",
        "meta": {},
    }
    out = Normalizer(DEFAULT)(pref, "preferences")
    assert out.row is not None
    assert (out.row["prompt"][0]["content"], out.row["chosen"], out.row["rejected"]) == ("hi there", "Hello!", "what")


@pytest.mark.parametrize(
    ("row", "kind"),
    [
        (conv("hello", "<br>"), "conversations"),
        (conv("<p> </p>", "hello"), "conversations"),
        ({"id": "t", "text": " \u200b ", "source": "", "meta": {}}, "text"),
        ({"id": "p", "prompt": [{"role": "user", "content": "q"}], "chosen": "a", "rejected": "<div></div>",
          "source": "", "meta": {}}, "preferences"),
    ],
)  # fmt: skip
def test_step_drops_rows_left_with_an_empty_text(row: dict[str, Any], kind: str) -> None:
    out = Normalizer(DEFAULT)(row, kind)
    assert out.row is None and out.reason == "empty_after_normalize"


def test_disabled_step_passes_rows_through() -> None:
    row = conv("<b>x</b>", "<br>")
    out = Normalizer(NormalizeConfig(enabled=False))(row, "conversations")
    assert out.row is row and not out.changed


def test_step_survives_pickling_for_worker_processes() -> None:
    step = pickle.loads(pickle.dumps(Normalizer(NormalizeConfig(unicode="NFKC"))))
    out = step(conv("ＡＢＣ", "ok"), "conversations")
    assert out.row is not None and out.row["messages"][0]["content"] == "ABC"


def test_support_world_markup_is_gone_after_normalizing() -> None:
    world = generate(
        0, conversations=600, test_conversations=10, heldout_conversations=10, kb_articles=10, preferences=10
    )
    noisy = [r for r in world.conversations if "html" in r["meta"]["noise"]]
    assert len(noisy) >= 10
    step = Normalizer(DEFAULT)
    for row in noisy:
        out = step(row, "conversations")
        assert out.changed and out.row is not None
        for m in out.row["messages"]:
            for mark in ("<p>", "</p>", "<br>", "<b>", "<div>", "&amp;", "&#39;", "&nbsp;"):
                assert mark not in m["content"], (mark, m["content"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "Z", "7", " ", "  ", ".", "<b>", "<", "&amp;", "&", "\n", "\t", "é", "\x7f"]), max_size=12))
def test_the_plain_text_shortcut_agrees_with_the_passes(pieces):
    # printable ASCII texts skip the passes when nothing in them could change; the result
    # must be what the passes give
    text = "".join(pieces)
    pipeline = _Pipeline(NormalizeConfig())
    expect = text
    for _ in range(5):
        out = pipeline.one_pass(expect)
        if out == expect:
            break
        expect = out
    assert pipeline(text) == expect
