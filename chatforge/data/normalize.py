"""Normalize the texts of a row: mojibake, HTML, Unicode form, control characters, whitespace.

    from chatforge.data.normalize import NormalizeConfig, Normalizer, normalize_text
    normalize_text("caf\u00c3\u00a9 &amp; <b>tea</b>", NormalizeConfig())  # 'café & tea'
    step = Normalizer(NormalizeConfig())
    step(row, "conversations")  # -> Outcome(row=..., changed=...)

The first step of `chatforge data clean`: later steps (PII, dedup, filters) see one
spelling of each text. Every option is on by default except the classic bag-of-words
recipe (lowercasing, punctuation and stop-word removal): a generative model learns to
write what it is trained on, so those would teach it to write without capitals,
punctuation or function words.

One pass, in this order (each part can be switched off):
  1. mojibake: UTF-8 read as Latin-1/cp1252 ("cafÃ©") is repaired with ftfy, but only
     when a cheap regex sees the typical marks, so clean text costs nothing;
  2. HTML: script/style blocks and comments removed, tags removed (block tags such as
     <br>, <li>, </div> become a line break, <p> a blank line), entities decoded. Only
     real tag syntax is a tag: a known HTML element name right after "<", attributes
     written name=value (or a known boolean attribute), then ">". So "a < b and c > d",
     "<3", "x<y" and placeholders like "<EMAIL_1>" are text, not markup;
  3. Unicode normal form (NFC by default);
  4. control characters: line-break controls (\\r, \\f, U+2028, ...) become "\\n", other
     controls, zero-width and bidi-control characters and soft hyphens are removed;
  5. whitespace: runs of spaces/tabs become one space, spaces around line breaks and
     more than one blank line go, the text is stripped;
  6. optionally lowercasing, punctuation and stop-word removal.

Normalization is idempotent (a test checks it with hypothesis): a pass can create new
work for an earlier part (an entity decoding to markup, "&lt;b&gt;", or NFKC turning a
full-width "＜" into "<"), so a text that changed is passed through again until it is
stable. Clean text takes one cheap pass: ASCII text skips the Unicode parts, and
printable text (no control, format or odd whitespace character: one C call tells) skips
the control-character regexes.
"""

from __future__ import annotations

import functools
import html
import importlib.resources
import re
import string
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import ftfy

from chatforge.config import opt
from chatforge.data.steps import Outcome, Row, row_texts, with_texts

_CLASSIC_HARM = "the classic NLP recipe; off by default because it hurts a generative model: it learns to write"


@dataclass
class NormalizeConfig:
    """Text normalization (the first cleaning step)."""

    enabled: bool = opt(True, "normalize texts (Unicode, HTML, control characters, mojibake, whitespace)")
    unicode: Literal["NFC", "NFKC", "none"] = opt(
        "NFC",
        "Unicode normal form: NFC composes accents (lossless); NFKC also folds compatibility "
        "characters (full-width letters, ligatures, superscripts: x² -> x2); none keeps code points",
    )
    strip_html: bool = opt(
        True,
        "remove HTML tags (block tags like <br>, <p>, </div> become line breaks; script, style "
        "and comments are removed with their content) and decode entities (&amp; -> &); only real "
        "tag syntax is removed, so 'a < b', '<3' and '<EMAIL_1>' stay",
    )
    remove_control: bool = opt(
        True,
        "remove control characters (except newline and tab; \\r and other line breaks become "
        "newlines), zero-width and bidi-control characters and soft hyphens",
    )
    fix_mojibake: bool = opt(
        True,
        "repair text decoded with the wrong encoding (cafÃ© -> café, donâ€™t -> don’t) with ftfy; "
        "only texts that show typical mojibake are checked",
    )
    collapse_whitespace: bool = opt(
        True,
        "collapse runs of spaces/tabs to one space, remove spaces at line starts and ends, keep at "
        "most one blank line, strip the text",
    )
    lowercase: bool = opt(False, f"lowercase all text ({_CLASSIC_HARM} without capitals)")
    remove_punctuation: bool = opt(False, f"delete punctuation characters ({_CLASSIC_HARM} without punctuation)")
    remove_stopwords: bool = opt(
        False,
        f"delete English stop words listed in wordlists/stopwords_en.txt ({_CLASSIC_HARM} "
        "without function words like 'the', 'is', 'you')",
    )


# --------------------------------------------------------------------------------------
# word lists shipped with the package


def read_wordlist(name_or_path: str | Path) -> list[str]:
    """The entries of a word list: one per line; blank lines and lines starting with '#' skipped.

    A bare name like "toxic.txt" is read from the package's `chatforge/data/wordlists/`.
    """
    p = Path(name_or_path)
    if p.parent == Path(".") and not p.exists():
        text = importlib.resources.files("chatforge.data").joinpath("wordlists", p.name).read_text(encoding="utf-8")
    else:
        text = p.read_text(encoding="utf-8")
    entries = []
    for line in text.splitlines():
        s = line.strip()
        if s and not s.startswith("#"):
            entries.append(s)
    return entries


# --------------------------------------------------------------------------------------
# the parts of a pass

# Continuation bytes 0x80-0xBF of UTF-8 as they look when decoded as Latin-1 or cp1252.
_CONT = "\x80-\xbf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122"
# A UTF-8 lead byte (as Latin-1) followed by the right number of continuation bytes: "Ã©",
# "â€™". Legit text rarely looks like this; when it does, ftfy leaves it unchanged.
_MOJIBAKE = re.compile(f"[\xc2-\xdf][{_CONT}]|[\xe0-\xef][{_CONT}]{{2}}|[\xf0-\xf4][{_CONT}]{{3}}")

_BLOCK_TAGS = (
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main",
    "nav", "ol", "p", "pre", "section", "table", "tbody", "tfoot", "thead", "tr", "ul",
)  # fmt: skip
_CELL_TAGS = ("td", "th")  # a space between table cells, not a line break
_INLINE_TAGS = (
    "a", "abbr", "b", "bdi", "bdo", "big", "body", "button", "center", "cite", "code", "del", "dfn",
    "em", "font", "head", "html", "i", "img", "input", "ins", "kbd", "label", "link", "mark",
    "meta", "noscript", "option", "q", "s", "samp", "select", "small", "span", "strike", "strong",
    "sub", "sup", "textarea", "time", "title", "tt", "u", "var", "wbr",
)  # fmt: skip
_BOOLEAN_ATTRS = (
    "async", "autofocus", "autoplay", "checked", "controls", "default", "defer", "disabled",
    "hidden", "ismap", "loop", "multiple", "muted", "nomodule", "novalidate", "nowrap", "open",
    "readonly", "required", "reversed", "selected",
)  # fmt: skip
_TAG_NAMES = "|".join(sorted(_BLOCK_TAGS + _CELL_TAGS + _INLINE_TAGS, key=len, reverse=True))
_ATTR = (
    r"\s+(?:[a-zA-Z_:][-\w:.]*\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+)"
    rf"|(?:{'|'.join(_BOOLEAN_ATTRS)})(?=[\s/>]))"
)
# One pattern for all markup, so a text is scanned once. Groups: 1 = script/style block,
# 2 = comment or doctype, 3 = the tag name of an ordinary tag.
_MARKUP = re.compile(
    r"<(script|style)(?=[\s>])[^>]*>.*?</\1\s*>"
    r"|(<!--.*?-->|<!doctype\b[^>]*>)"
    rf"|</?({_TAG_NAMES})(?=[\s/>])(?:{_ATTR})*\s*/?>",
    re.IGNORECASE | re.DOTALL,
)
# Block tags leave a mark first; a run of marks (with only whitespace between) becomes one
# line break, or a blank line if a paragraph tag is among them: "<div>a</div><div>b</div>"
# -> "a\nb", "<p>a</p><p>b</p>" -> "a\n\nb". <br> is a line break of its own ("<br><br>"
# is a blank line). The marks are private-use characters, which do not occur in text.
_BLOCK_MARK, _PARAGRAPH_MARK = "\ue000", "\ue001"
_TAG_REPLACEMENT = {
    **{t: _BLOCK_MARK for t in _BLOCK_TAGS},
    **{t: " " for t in _CELL_TAGS},
    "br": "\n",
    "p": _PARAGRAPH_MARK,
}
_MARK_RUN = re.compile(f"\\s*[{_BLOCK_MARK}{_PARAGRAPH_MARK}][\\s{_BLOCK_MARK}{_PARAGRAPH_MARK}]*")
# Entities with their closing semicolon only: "AT&T", "R&D" or "&not that" stay text.
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")

_LINEBREAKS = re.compile("\r\n?|[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_CONTROL = re.compile(
    "[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f\xad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
_SPACES = re.compile(r"[^\S\n]+")  # any whitespace but a newline: tabs, NBSP, thin spaces, ...
_LINE_EDGES = re.compile(r" ?\n ?")
_BLANK_LINES = re.compile(r"\n{3,}")
_MULTI_SPACE = re.compile(r"  +")
_PLAIN, _LINES, _OTHER = 0, 1, 2


def _markup_sub(m: re.Match[str]) -> str:
    name = m.group(3)
    if name is None:
        return ""  # script/style block, comment, doctype
    return _TAG_REPLACEMENT.get(name.lower(), "")


def _mark_run_sub(m: re.Match[str]) -> str:
    return "\n\n" if _PARAGRAPH_MARK in m.group(0) else "\n"


def _strip_html(text: str) -> str:
    if "<" in text:
        text = _MARKUP.sub(_markup_sub, text)
        if _BLOCK_MARK in text or _PARAGRAPH_MARK in text:
            text = _MARK_RUN.sub(_mark_run_sub, text)
    if "&" in text:
        text = _ENTITY.sub(lambda m: html.unescape(m.group(0)), text)
    return text


def _collapse_whitespace(text: str, layout: int) -> str:
    if layout == _OTHER:
        text = _SPACES.sub(" ", text)
        if "\n" in text:
            text = _BLANK_LINES.sub("\n\n", _LINE_EDGES.sub("\n", text))
        return text.strip()
    # Printable text has no whitespace but " " (and "\n" in the _LINES layout): plain
    # string methods do the same as the regexes above, several times faster.
    if "  " in text:
        text = _MULTI_SPACE.sub(" ", text)
    if layout == _LINES:
        if " \n" in text or "\n " in text:
            text = text.replace(" \n", "\n").replace("\n ", "\n")
        if "\n\n\n" in text:
            text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


def _layout(text: str) -> int:
    """_PLAIN: printable (no control, format or line-break character, no whitespace but " ");
    _LINES: the same plus newlines; _OTHER: anything else."""
    if text.isprintable():
        return _PLAIN
    if "\n" in text and text.replace("\n", "").isprintable():
        return _LINES
    return _OTHER


@functools.lru_cache(maxsize=1)
def _punctuation_table() -> dict[int, None]:
    """Every punctuation character (Unicode category P*, Basic Multilingual Plane) and ASCII symbol."""
    chars = {c for c in string.punctuation}
    chars.update(chr(i) for i in range(0x80, 0x10000) if unicodedata.category(chr(i)).startswith("P"))
    return {ord(c): None for c in chars}


@functools.lru_cache(maxsize=1)
def _stopword_pattern() -> re.Pattern[str]:
    words = sorted(read_wordlist("stopwords_en.txt"), key=len, reverse=True)
    # Whole words only; an apostrophe binds ("I'm", "don't" are not the stop word "i").
    return re.compile(rf"(?<![\w'’])(?:{'|'.join(map(re.escape, words))})(?![\w'’])", re.IGNORECASE)


_MAX_PASSES = 5


class _Pipeline:
    """The compiled parts of one NormalizeConfig."""

    def __init__(self, cfg: NormalizeConfig) -> None:
        self.cfg = cfg
        self.form: Literal["NFC", "NFKC"] | None = None if cfg.unicode == "none" else cfg.unicode
        self.punct = _punctuation_table() if cfg.remove_punctuation else None
        self.stopwords = _stopword_pattern() if cfg.remove_stopwords else None
        self.linebreaks = cfg.remove_control or cfg.collapse_whitespace
        self.plain_is_clean = not (cfg.lowercase or cfg.remove_punctuation or cfg.remove_stopwords)

    def one_pass(self, text: str) -> str:
        cfg = self.cfg
        if cfg.fix_mojibake and not text.isascii() and _MOJIBAKE.search(text):
            text = ftfy.fix_encoding(text)
        if cfg.strip_html and ("<" in text or "&" in text):
            text = _strip_html(text)
        if self.form is not None and not text.isascii() and not unicodedata.is_normalized(self.form, text):
            text = unicodedata.normalize(self.form, text)
        # Most texts are printable (one fast C check) and hold nothing the regexes below
        # would change; only the others pay for them.
        layout = _layout(text)
        if layout == _OTHER:
            if self.linebreaks:
                text = _LINEBREAKS.sub("\n", text)
            if cfg.remove_control:
                text = _CONTROL.sub("", text)
        if cfg.collapse_whitespace:
            text = _collapse_whitespace(text, layout)
        if cfg.lowercase:
            text = text.lower()
        if self.punct is not None:
            text = text.translate(self.punct)
        if self.stopwords is not None:
            text = self.stopwords.sub("", text)
        if (self.punct is not None or self.stopwords is not None) and cfg.collapse_whitespace:
            text = _collapse_whitespace(text, _OTHER)
        return text

    def __call__(self, text: str) -> str:
        # Printable ASCII with no markup or entity character, no double space and nothing
        # to strip is what no part of a pass changes (the classic recipe's parts aside): a
        # few C calls tell, half the cost of a pass. Most texts of a chat log are like this.
        if (
            self.plain_is_clean
            and text.isascii()
            and text.isprintable()
            and "<" not in text
            and "&" not in text
            and "  " not in text
            and text[:1] != " "
            and text[-1:] != " "
        ):
            return text
        for _ in range(_MAX_PASSES):
            out = self.one_pass(text)
            if out == text:
                return out
            text = out
        return text


def normalize_text(text: str, cfg: NormalizeConfig | None = None) -> str:
    """`text` normalized as `cfg` says (defaults if None); idempotent."""
    cfg = cfg or NormalizeConfig()
    if not cfg.enabled:
        return text
    return _Pipeline(cfg)(text)  # cheap to build: the tables behind it are cached


class Normalizer:
    """Cleaning step: normalize every text of a row.

    `changed` when any text changed; a row with a text that normalization leaves empty
    (e.g. a message that was only markup) is dropped as "empty_after_normalize", since
    a dataset row may not hold an empty message.
    """

    REASONS = ("empty_after_normalize",)

    def __init__(self, cfg: NormalizeConfig) -> None:
        self.cfg = cfg
        self._fn = _Pipeline(cfg)

    def __reduce__(self) -> tuple[type[Normalizer], tuple[NormalizeConfig]]:
        return (type(self), (self.cfg,))  # worker processes rebuild the step from its config

    def __call__(self, row: Row, kind: str) -> Outcome:
        if not self.cfg.enabled:
            return Outcome(row)
        old = row_texts(row, kind)
        new = [self._fn(t) for t in old]
        for text in new:
            if not text or text.isspace():
                return Outcome.drop("empty_after_normalize")
        if new == old:
            return Outcome(row)
        return Outcome(with_texts(row, kind, new), changed=True)
