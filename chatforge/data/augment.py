"""Augmentation: more training conversations from the ones you have, by rewriting user turns.

    chatforge data augment data/clean --out data/augmented --copies 2
    chatforge data augment data/clean --out data/aug --methods synonym paraphrase --rate 0.15

A small support data set teaches a model one phrasing per question. Augmentation adds
variants of each conversation in which the *customer* says the same thing differently or
sloppily, so the model learns to answer the meaning rather than the wording. Methods:

    synonym     words and short phrases swapped for synonyms from a table shipped with
                chatforge (wordlists/synonyms_en.txt: order/purchase, package/parcel,
                my money back/a refund, ...)
    dropout     a few words left out ("where is my order" -> "where my order")
    swap        a few pairs of neighbouring words swapped ("where is" -> "is where")
    typo        slips of the finger: a neighbouring key, a dropped or a doubled letter
    paraphrase  one sentence rewritten from a template ("Can you tell me X?" -> "I'd like to
                know X.", "I want to X" -> "Can I X?"), or a greeting / thank-you added or removed

Each variant of a conversation uses one method, applied to every user turn; the word-level
methods touch `--rate` of the words of each turn (at least one).

What never changes:

  - assistant turns (the training targets) and system turns (they may hold the order on
    file): only user turns are rewritten;
  - protected tokens: any token with a digit or one of  < > @ / \\ & # $ % = _ | ~ ^ * + { } [ ]
    (placeholders like <ORDER_1>, order numbers, prices, emails, URLs, HTML), tokens with a
    dot or colon between letters (domains), words with inner capitals (SKUs, acronyms),
    capitalized words inside a sentence (names, products, brands) and a capitalized first
    word that a name goes on from ("Chloe Williams here"). Every rewrite is checked
    afterwards: if the protected tokens of a turn are not exactly the same, in the same
    order, the rewrite is thrown away.

Each augmented row gets `id = "<original id>~aug<k>"`, `source = "augment/<method>"` and
`meta` = the original's meta plus `augmented_from`, `augment` (the methods), `origin_key`
(the original's split key, so `data split` puts the variant in the same split as its
original) and `original_source`. A variant identical to its original (compared like
exact-duplicate detection: case and whitespace ignored) or to another variant is never
written: another method is tried, and if none gives a new text the variant is skipped and
counted. Rows that are themselves augmented (`meta.augmented_from`) are passed through (with
--include-original) but not augmented again.

Where it fits: after `data clean` (so identifiers are already placeholders) and before
`data split`, which keeps each variant in its original's split and drops the variants of
validation and test conversations; or on the train split alone after splitting.

Determinism: each row's random choices come from a `random.Random` seeded with the seed
and the row's id, so the output does not depend on batching or on other rows; the same
input, config and seed give the same content hash.
"""

from __future__ import annotations

import functools
import itertools
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from chatforge.config import opt, to_dict
from chatforge.data.dataset import Dataset, DatasetWriter, open_dataset
from chatforge.data.steps import Row, content_key, split_key
from chatforge.errors import ConfigError, UserError
from chatforge.ui import QUIET, UI

METHODS: tuple[str, ...] = ("synonym", "dropout", "swap", "typo", "paraphrase")
KIND = "conversations"
SYNONYMS_FILE = "wordlists/synonyms_en.txt"
# Random draws per method before moving on to the next method for a variant: a second
# draw often finds another word to change when the first one gave a duplicate.
_DRAWS_PER_METHOD = 2


@dataclass
class AugmentConfig:
    """`chatforge data augment`: add rewritten variants of conversations (user turns only)."""

    dataset: str = opt("", "input conversations dataset", positional=True, required=True, metavar="DIR")
    out: str = opt("", "output dataset directory", required=True)
    copies: int = opt(1, "augmented variants to make of each conversation", ge=0, le=20)
    methods: list[str] = opt(
        default_factory=lambda: list(METHODS),
        help="methods to use, one per variant: synonym, dropout, swap, typo, paraphrase",
    )
    rate: float = opt(
        0.1, "share of the words of each user turn that word-level methods touch (at least one when > 0)", ge=0.0, le=0.5
    )
    seed: int = opt(0, "random seed: the same input, config and seed give the same output, byte for byte")
    include_original: bool = opt(True, "write the input rows too (false: only the new augmented rows)")
    overwrite: bool = opt(False, "replace OUT if it already exists (atomically)")

    def validate(self) -> None:
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ConfigError(f"methods: unknown method {unknown[0]!r}; choose from {', '.join(METHODS)}")
        if not self.methods:
            raise ConfigError(f"methods: give at least one of {', '.join(METHODS)}")
        twice = sorted({m for m in self.methods if self.methods.count(m) > 1})
        if twice:
            raise ConfigError(f"methods: {', '.join(twice)} given more than once")
        if self.dataset and self.out and Path(self.out).resolve() == Path(self.dataset).resolve():
            raise ConfigError("out: must be a new directory, not the input dataset")


# --------------------------------------------------------------------------------------
# Tokens, and which of them are protected

_TOKEN_RE = re.compile(r"\S+")
# A word token: opening punctuation, a word of letters (inner ' or - allowed), closing punctuation.
_WORD_RE = re.compile(r"^([\"'(\u2018\u201c]*)([^\W\d_]+(?:['\u2019-][^\W\d_]+)*)([.,!?;:\"')\u2019\u201d]*)$")
# Identifiers, numbers, markup, addresses: never edited, dropped or moved.
_PROTECT_RE = re.compile(r"[\d<>@/\\&#$%=_|~^*+{}\[\]]|\w[.:]\w")
_EDGE_PUNCT = "\"'()\u2018\u2019\u201c\u201d.,!?;:"
_SENTENCE_END_RE = re.compile(r"[.!?][\"')\u2019\u201d]*$")
_I_WORDS = frozenset({"i", "i'm", "i'd", "i've", "i'll", "i\u2019m", "i\u2019d", "i\u2019ve", "i\u2019ll"})


def is_protected_token(token: str) -> bool:
    """Whether a whitespace-delimited token must never be changed (identifiers, numbers,
    placeholders, emails, URLs, markup, domains, SKUs and acronyms), whatever its context."""
    if _PROTECT_RE.search(token):
        return True
    letters = token.strip(_EDGE_PUNCT)
    return any(c.isupper() for c in letters[1:])


@dataclass
class _Token:
    start: int
    end: int
    lead: str  # punctuation before the word
    core: str  # the word itself; "" if the token is not a word
    trail: str  # punctuation after the word
    protected: bool
    sentence_start: bool

    @property
    def word(self) -> bool:
        """A word that methods may change."""
        return bool(self.core) and not self.protected

    @property
    def bare(self) -> bool:
        """A changeable word with no punctuation attached."""
        return self.word and not self.lead and not self.trail


def _tokens(text: str) -> list[_Token]:
    toks: list[_Token] = []
    starts_sentence = True
    for m in _TOKEN_RE.finditer(text):
        raw = m.group()
        if toks and "\n" in text[toks[-1].end : m.start()]:
            starts_sentence = True
        wm = _WORD_RE.match(raw)
        lead, core, trail = wm.groups() if wm else ("", "", "")
        protected = is_protected_token(raw)
        # A capitalized word inside a sentence is a name, a product or a brand.
        if core and not starts_sentence and core[0].isupper() and core.lower() not in _I_WORDS:
            protected = True
        toks.append(_Token(m.start(), m.end(), lead, core, trail, protected, starts_sentence))
        starts_sentence = bool(_SENTENCE_END_RE.search(raw))
    # ... and so is the first word of a sentence when a name goes on after it ("Chloe Williams here").
    for a, b in itertools.pairwise(toks):
        name_follows = b.protected and b.core[:1].isupper() and not b.sentence_start
        if name_follows and a.core[:1].isupper() and a.core.lower() not in _I_WORDS:
            a.protected = True
    return toks


def protected_tokens(text: str) -> list[str]:
    """The protected tokens of a text in order, without surrounding punctuation: what every
    augmentation method must leave exactly as it was."""
    return [text[t.start : t.end].strip(_EDGE_PUNCT) for t in _tokens(text) if t.protected]


def _splice(text: str, edits: Iterable[tuple[int, int, str]]) -> str:
    """Apply non-overlapping (start, end, replacement) edits."""
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def _how_many(rate: float, n_words: int) -> int:
    return max(1, round(rate * n_words)) if rate > 0 else 0


def _is_i_word(word: str) -> bool:
    return word.lower() in _I_WORDS


def _with_case_of(model: str, word: str) -> str:
    """`word` with its first letter capitalized if `model`'s is (I-words stay capitalized)."""
    if model[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


# --------------------------------------------------------------------------------------
# synonym


@dataclass(frozen=True)
class SynonymTable:
    """Phrase (a tuple of lowercase words) -> the phrases that may replace it."""

    alternatives: dict[tuple[str, ...], tuple[str, ...]]
    longest: int

    @staticmethod
    def parse(text: str, name: str = SYNONYMS_FILE) -> SynonymTable:
        """Read the table format: one group per line, phrases separated by "|", # comments."""
        alts: dict[tuple[str, ...], list[str]] = {}
        for lineno, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            group = [" ".join(p.split()) for p in line.split("|")]
            if len(group) < 2 or any(not p for p in group):
                raise ValueError(f"{name}:{lineno}: a group needs two or more phrases separated by '|'")
            for phrase in group:
                key = _phrase_key(phrase)
                if any(_PROTECT_RE.search(w) for w in key):
                    raise ValueError(f"{name}:{lineno}: {phrase!r} would be a protected token")
                bucket = alts.setdefault(key, [])
                bucket.extend(p for p in group if _phrase_key(p) != key and p not in bucket)
        return SynonymTable({k: tuple(v) for k, v in alts.items()}, max((len(k) for k in alts), default=0))


def _phrase_key(phrase: str) -> tuple[str, ...]:
    return tuple(phrase.lower().replace("\u2019", "'").split())


@functools.cache
def synonym_table() -> SynonymTable:
    """The synonym table shipped with chatforge (read once)."""
    text = resources.files("chatforge.data").joinpath(SYNONYMS_FILE).read_text(encoding="utf-8")
    return SynonymTable.parse(text)


_VOWEL_SOUND_EXCEPTIONS = ("hour", "honest", "honor", "honour", "heir")
_CONSONANT_SOUND_EXCEPTIONS = ("uni", "use", "usu", "one", "once", "eu", "e-mail")


def _article_for(word: str) -> str:
    w = word.lower()
    if w.startswith(_VOWEL_SOUND_EXCEPTIONS):
        return "an"
    if w.startswith(_CONSONANT_SOUND_EXCEPTIONS):
        return "a"
    return "an" if w[:1] in "aeiou" else "a"


def synonym_replace(text: str, rng: random.Random, rate: float, table: SynonymTable | None = None) -> str:
    """Replace `rate` of the words (at least one) by a synonym phrase from the table."""
    table = table or synonym_table()
    toks = _tokens(text)
    n_words = sum(t.word for t in toks)
    # Candidate phrases, left to right, longest first, not overlapping.
    found: list[tuple[int, int, tuple[str, ...]]] = []  # (first token, token count, alternatives)
    i = 0
    while i < len(toks):
        for length in range(min(table.longest, len(toks) - i), 0, -1):
            span = toks[i : i + length]
            if not all(t.word for t in span):
                continue
            # Only the phrase's outer edges may carry punctuation ("parcel?" but not "my, money").
            if length > 1 and (span[0].trail or span[-1].lead or any(t.lead or t.trail for t in span[1:-1])):
                continue
            if any("\n" in text[a.end : b.start] for a, b in itertools.pairwise(span)):
                continue
            alts = table.alternatives.get(_phrase_key(" ".join(t.core for t in span)))
            if alts:
                found.append((i, length, alts))
                break
        else:
            i += 1
            continue
        i += found[-1][1]
    picked = rng.sample(found, min(len(found), _how_many(rate, n_words)))
    covered = {j for i, length, _ in picked for j in range(i, i + length)}
    edits = []
    for i, length, alts in picked:
        first, last = toks[i], toks[i + length - 1]
        new = _with_case_of(first.core, rng.choice(alts))
        edits.append((first.start, last.end, first.lead + new + last.trail))
        prev = toks[i - 1] if i > 0 else None
        # "an order" -> "a purchase": keep the article in agreement.
        if prev is not None and prev.bare and prev.core.lower() in ("a", "an") and (i - 1) not in covered:
            article = _with_case_of(prev.core, _article_for(new))
            if article != prev.core:
                edits.append((prev.start, prev.end, article))
    return _splice(text, edits)


# --------------------------------------------------------------------------------------
# dropout and swap


def word_dropout(text: str, rng: random.Random, rate: float) -> str:
    """Leave out `rate` of the words (at least one); only plain words, never the last two."""
    toks = _tokens(text)
    if len(toks) < 3:
        return text
    cands = [j for j, t in enumerate(toks) if t.bare]
    n = min(len(cands), _how_many(rate, sum(t.word for t in toks)), len(toks) - 2)
    drop = set(rng.sample(cands, n))
    if not drop:
        return text
    out: list[list[str]] = []  # [token, whitespace after it]
    for j, t in enumerate(toks):
        after = text[t.end : toks[j + 1].start] if j + 1 < len(toks) else text[t.end :]
        if j not in drop:
            out.append([text[t.start : t.end], after])
        # Dropped: keep the text after the last word, and a line break that followed the word.
        elif out and (j + 1 == len(toks) or ("\n" in after and "\n" not in out[-1][1])):
            out[-1][1] = after
    return text[: toks[0].start] + "".join(tok + sep for tok, sep in out)


def word_swap(text: str, rng: random.Random, rate: float) -> str:
    """Swap pairs of neighbouring words: `rate` of the words (at least one pair) move.

    Punctuation stays in place ("hi, there" -> "there, hi"); when the first word of a
    sentence moves, the capital letter stays at the start of the sentence.
    """
    toks = _tokens(text)
    pairs = [
        j
        for j in range(len(toks) - 1)
        if toks[j].word
        and toks[j + 1].word
        and toks[j].core.lower() != toks[j + 1].core.lower()
        and not toks[j + 1].sentence_start  # never across a sentence end or a line break
    ]
    want = max(1, round(_how_many(rate, sum(t.word for t in toks)) / 2)) if rate > 0 else 0
    rng.shuffle(pairs)
    chosen: list[int] = []
    used: set[int] = set()
    for j in pairs:
        if len(chosen) >= want:
            break
        if j in used or j + 1 in used:
            continue
        chosen.append(j)
        used.update((j, j + 1))
    edits = []
    for j in chosen:
        a, b = toks[j], toks[j + 1]
        first, second = b.core, a.core
        if a.sentence_start and a.core[0].isupper():
            first = first[0].upper() + first[1:]
            if not _is_i_word(second):
                second = second[0].lower() + second[1:]
        edits.append((a.start, a.end, a.lead + first + a.trail))
        edits.append((b.start, b.end, b.lead + second + b.trail))
    return _splice(text, edits)


# --------------------------------------------------------------------------------------
# typo

# Keys next to each key on a QWERTY keyboard (same row and the rows above and below).
_NEIGHBOURS: dict[str, str] = {
    "q": "wa", "w": "qeas", "e": "wrsd", "r": "etdf", "t": "ryfg", "y": "tugh", "u": "yihj",
    "i": "uojk", "o": "ipkl", "p": "ol", "a": "qwsz", "s": "awedzx", "d": "serfxc", "f": "drtgcv",
    "g": "ftyhvb", "h": "gyujbn", "j": "huiknm", "k": "jiolm", "l": "kop", "z": "asx",
    "x": "zsdc", "c": "xdfv", "v": "cfgb", "b": "vghn", "n": "bhjm", "m": "njk",
}  # fmt: skip
TYPO_KINDS: tuple[str, ...] = ("neighbour", "drop", "double")


def typo_word(word: str, rng: random.Random) -> str:
    """One slip of the finger in `word` (never its first letter): a neighbouring key
    instead of a letter, a dropped letter, or a doubled one."""
    positions = [k for k in range(1, len(word)) if word[k].isalpha()]
    if not positions:
        return word
    k = rng.choice(positions)
    kind = rng.choice(TYPO_KINDS)
    letter = word[k]
    if kind == "neighbour" and letter.lower() in _NEIGHBOURS:
        sub = rng.choice(_NEIGHBOURS[letter.lower()])
        return word[:k] + (sub.upper() if letter.isupper() else sub) + word[k + 1 :]
    if kind == "drop" and sum(c.isalpha() for c in word) > 3:
        return word[:k] + word[k + 1 :]
    return word[:k] + letter + word[k:]


def inject_typos(text: str, rng: random.Random, rate: float) -> str:
    """Put one typo into each of `rate` of the words (at least one) of three letters or more."""
    toks = _tokens(text)
    cands = [t for t in toks if t.word and sum(c.isalpha() for c in t.core) >= 3]
    picked = rng.sample(cands, min(len(cands), _how_many(rate, sum(t.word for t in toks))))
    return _splice(text, [(t.start, t.end, t.lead + typo_word(t.core, rng) + t.trail) for t in picked])


# --------------------------------------------------------------------------------------
# paraphrase

# Sentence rewrites: (opening words, what may follow them, templates). A template is
# (text with {rest}, its end punctuation); {rest} is the rest of the sentence, verbatim.
_DET = r"(?:my|your|the|a|an|this|that|our)\b"
_REWRITES: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    (r"(?:can|could) you tell me", r".+",
     (("I'd like to know {rest}", "."), ("Do you know {rest}", "?"), ("Could you let me know {rest}", "?"))),
    (r"(?:i'?d|i would) like to know|i want to know", r".+",
     (("Can you tell me {rest}", "?"), ("Could you tell me {rest}", "?"))),
    (r"how (?:do|can) i", r".+",
     (("What's the best way to {rest}", "?"), ("How would I {rest}", "?"), ("What do I need to do to {rest}", "?"),
      ("Could you explain how to {rest}", "?"))),
    (r"where is|where's", _DET + r"(?:\s+\S+){0,3}",
     (("Do you know where {rest} is", "?"), ("Any idea where {rest} is", "?"))),
    (r"what is|what's", _DET + r"(?:\s+\S+){0,3}",
     (("Can you tell me what {rest} is", "?"), ("I'd like to know what {rest} is", "."))),
    (r"what are", _DET + r"(?:\s+\S+){0,3}",
     (("Can you tell me what {rest} are", "?"), ("I'd like to know what {rest} are", "."))),
    (r"i want to|i wanna|i'?d like to|i would like to", r"(?!know\b).+",
     (("Can I {rest}", "?"), ("Is it possible to {rest}", "?"), ("I'd like to {rest}", "."), ("I want to {rest}", "."))),
    (r"i need to", r".+", (("I have to {rest}", "."), ("I want to {rest}", "."))),
    (r"(?:can|could|may) i", r".+",
     (("Is it possible to {rest}", "?"), ("Am I able to {rest}", "?"), ("I'd like to {rest}", "."))),
    (r"is it possible to", r".+", (("Can I {rest}", "?"), ("Could I {rest}", "?"))),
    (r"(?:can|could|would) you(?: please)?", r".+",
     (("Could you please {rest}", "?"), ("Would you {rest}", "?"), ("Please {rest}", "."))),
    (r"please", r".+", (("Could you {rest}", "?"), ("Can you {rest}", "?"), ("Would you {rest}", "?"))),
    (r"do you", r".+", (("Can you tell me if you {rest}", "?"), ("I'd like to know if you {rest}", "."))),
    (r"is there", r".+", (("Do you have {rest}", "?"), ("Can you tell me if there is {rest}", "?"))),
)  # fmt: skip
_REWRITE_RES = tuple(
    (re.compile(rf"(?P<head>{head})\s+(?P<rest>{rest})", re.IGNORECASE | re.DOTALL), templates)
    for head, rest, templates in _REWRITES
)
_SENTENCE_RE = re.compile(r"(?P<body>\S.*?)(?P<end>[.!?]+(?=\s|$)|$)", re.DOTALL)

_GREETINGS = ("Hi! ", "Hello! ", "Hi there! ", "Hey! ", "Good morning! ", "Hello there. ")
_FOLLOW_UPS = ("Quick follow-up. ", "One more thing. ", "Another question. ")
_THANKS_AFTER_SENTENCE = (" Thanks!", " Thank you.", " Thanks in advance.", " Any help is appreciated.")
_THANKS_AFTER_WORD = (", thanks", ", thank you", " please", ", thanks in advance")
_GREETING_RE = re.compile(
    r"^\s*(?:hi there|hey there|hello there|hi|hello|hey|heya|hiya|greetings|good (?:morning|afternoon|evening)"
    r"|dear support(?: team)?)\b(?:\s*[!.,:\u2013\u2014-]+)?\s+",
    re.IGNORECASE,
)
_THANKS_RE = re.compile(
    r"(?:,\s*|\s+)(?:thanks(?: a lot| so much| in advance| a bunch)?|thank you(?: so much| in advance)?|thx|ty|cheers"
    r"|please(?: advise| help)?|any help is appreciated)[.!]*\s*$",
    re.IGNORECASE,
)
_POLITE_WORDS_RE = re.compile(r"\b(?:thanks|thank|thx|appreciate|appreciated|please)\b", re.IGNORECASE)


def _sentence_rewrites(text: str) -> list[str]:
    """Every template rewrite of one sentence of `text`."""
    out = []
    for m in _SENTENCE_RE.finditer(text):
        body, end = m.group("body"), m.group("end")
        for pattern, templates in _REWRITE_RES:
            rm = pattern.fullmatch(body)
            if rm is None:
                continue
            rest = rm.group("rest").strip()
            for template, template_end in templates:
                if "please" in template.lower() and "please" in rest.lower():
                    continue  # "Could you please cancel it please?"
                new = template.format(rest=rest)
                if body[0].islower() and not _is_i_word(new.split()[0]):
                    new = new[0].lower() + new[1:]
                new += template_end if end else ""
                out.append(text[: m.start()] + new + text[m.end() :])
    return out


def _politeness(text: str, first_turn: bool) -> list[str]:
    """Add or remove a greeting (first turn), a follow-up opener (later turns) or a thank-you."""
    out: list[str] = []
    toks = _tokens(text)
    if not toks:
        return out
    greeting = _GREETING_RE.match(text)
    if greeting and len(_tokens(text[greeting.end() :])) >= 2:
        out.append(text[: greeting.start()] + text[greeting.end() :].lstrip())
    elif first_turn and not greeting:
        out += [g + text.lstrip() for g in _GREETINGS]
    elif not first_turn and text.rstrip().endswith("?"):
        out += [f + text.lstrip() for f in _FOLLOW_UPS]
    thanks = _THANKS_RE.search(text)
    if thanks and len(_tokens(text[: thanks.start()])) >= 2:
        out.append(text[: thanks.start()])
    elif not _POLITE_WORDS_RE.search(text):
        last = toks[-1]
        body = text.rstrip()
        if _SENTENCE_END_RE.search(body):
            out += [body + t for t in _THANKS_AFTER_SENTENCE]
        elif last.word and not last.trail:
            out += [body + t for t in _THANKS_AFTER_WORD]
    return out


def paraphrase(text: str, rng: random.Random, first_turn: bool = True) -> str:
    """Rewrite the user turn from a template: most often one sentence reworded ("Can you
    tell me X?" -> "I'd like to know X."), else a greeting or a thank-you added or removed."""
    same = _normalized(text)
    rewrites = [t for t in _sentence_rewrites(text) if _normalized(t) != same]
    polite = [t for t in _politeness(text, first_turn) if _normalized(t) != same]
    if rewrites and (not polite or rng.random() < 0.7):
        return rng.choice(rewrites)
    return rng.choice(polite) if polite else text


def _normalized(text: str) -> str:
    return " ".join(text.lower().split())


# --------------------------------------------------------------------------------------
# Applying a method to a turn and to a row


def augment_text(method: str, text: str, rng: random.Random, rate: float, *, first_turn: bool = True) -> str:
    """Apply one method to one user turn; the turn comes back unchanged if the method has
    nothing to change, or if the result would alter a protected token."""
    if method == "synonym":
        new = synonym_replace(text, rng, rate)
    elif method == "dropout":
        new = word_dropout(text, rng, rate)
    elif method == "swap":
        new = word_swap(text, rng, rate)
    elif method == "typo":
        new = inject_typos(text, rng, rate)
    elif method == "paraphrase":
        new = paraphrase(text, rng, first_turn)
    else:
        raise ValueError(f"unknown augmentation method {method!r}")
    if new != text and protected_tokens(new) != protected_tokens(text):
        return text
    return new


def augment_row(row: Row, method: str, rng: random.Random, rate: float) -> Row:
    """A copy of a conversation row with `method` applied to every user turn; system and
    assistant messages are copied unchanged. The id, source and meta are the original's."""
    messages = []
    first = True
    for m in row["messages"]:
        content = m["content"]
        if m["role"] == "user":
            content = augment_text(method, content, rng, rate, first_turn=first)
            first = False
        messages.append({"role": m["role"], "content": content})
    return {**row, "messages": messages}


@dataclass
class AugmentCounts:
    """What `data augment` did; `requested = augmented_written + skipped_identical + skipped_duplicate`."""

    rows_in: int = 0
    originals: int = 0
    already_augmented: int = 0
    requested: int = 0
    originals_written: int = 0
    augmented_written: int = 0
    per_method: dict[str, int] = field(default_factory=dict)
    skipped_identical: int = 0
    skipped_duplicate: int = 0


class Augmenter:
    """Makes the variants of one conversation at a time (built once from the config).

        aug = Augmenter(cfg)
        for row in rows:
            for out in aug(row):   # the original (if cfg.include_original), then its variants
                ...

    It remembers a 64-bit key of every variant it wrote, so that no two variants are the
    same conversation (8 bytes of payload per augmented row).
    """

    def __init__(self, cfg: AugmentConfig, taken_ids: Iterable[str] = ()) -> None:
        self.cfg = cfg
        self.counts = AugmentCounts(per_method={m: 0 for m in cfg.methods})
        self.taken_ids = set(taken_ids)  # "~aug" ids already in the input: new ids skip them
        self._seen: set[int] = set()

    def __call__(self, row: Row) -> list[Row]:
        cfg, counts = self.cfg, self.counts
        counts.rows_in += 1
        out = [row] if cfg.include_original else []
        counts.originals_written += len(out)
        if row.get("meta", {}).get("augmented_from"):
            counts.already_augmented += 1
            return out
        counts.originals += 1
        counts.requested += cfg.copies
        if cfg.copies == 0:
            return out
        rng = random.Random(f"chatforge-augment/{cfg.seed}/{row['id']}")
        original = content_key(row, KIND)
        methods = list(cfg.methods)
        start = rng.randrange(len(methods))
        index = 0
        for k in range(cfg.copies):
            # Variant k starts with the next method in turn, so variants use different methods.
            first = (start + k) % len(methods)
            got: tuple[Row, str, int] | None = None
            duplicate = False
            for method in methods[first:] + methods[:first]:
                for _ in range(_DRAWS_PER_METHOD):
                    new = augment_row(row, method, rng, cfg.rate)
                    key = content_key(new, KIND)
                    if key == original:
                        continue
                    short = int(key[:16], 16)
                    if short in self._seen:
                        duplicate = True
                        continue
                    got = (new, method, short)
                    break
                if got is not None:
                    break
            if got is None:
                if duplicate:
                    counts.skipped_duplicate += 1
                else:
                    counts.skipped_identical += 1
                continue
            new, method, short = got
            self._seen.add(short)
            index += 1
            while f"{row['id']}~aug{index}" in self.taken_ids:
                index += 1
            out.append(_marked(new, row, index, [method]))
            counts.augmented_written += 1
            counts.per_method[method] += 1
        return out


def _marked(new: Row, original: Row, index: int, methods: list[str]) -> Row:
    meta = {
        **original.get("meta", {}),
        "augmented_from": original["id"],
        "augment": methods,
        "origin_key": split_key(original, KIND),
        "original_source": original["source"],
    }
    return {**new, "id": f"{original['id']}~aug{index}", "source": "augment/" + ",".join(methods), "meta": meta}


def _augmented_ids(ds: Dataset) -> set[str]:
    """Ids in the input that look like augmented ones (read from the id column alone)."""
    ids: set[str] = set()
    for path in ds.shard_paths():
        column = pq.read_table(path, columns=["id"]).column("id")
        ids.update(i for i in column.to_pylist() if i is not None and "~aug" in i)
    return ids


def main(cfg: AugmentConfig, ui: UI = QUIET) -> dict[str, Any]:
    """Run `data augment`; returns the new dataset's manifest."""
    ds = open_dataset(cfg.dataset)
    if ds.kind != KIND:
        raise UserError(
            f"{cfg.dataset}: is a {ds.kind} dataset; data augment rewrites the user turns of conversations, "
            "so it needs a conversations dataset"
        )
    aug = Augmenter(cfg, _augmented_ids(ds))
    with DatasetWriter(
        cfg.out,
        KIND,
        created_by={"command": "data augment", "config": to_dict(cfg)},
        parents=[ds.content_hash],
        overwrite=cfg.overwrite,
    ) as writer, ui.progress("augment", total=ds.num_rows) as advance:
        for batch in ds.iter_batches():
            for row in batch:
                writer.write_all(aug(row))
            advance(len(batch))
        c = aug.counts
        assert c.requested == c.augmented_written + c.skipped_identical + c.skipped_duplicate
        assert writer.rows_written == c.originals_written + c.augmented_written
        writer.manifest_extra["augment"] = {
            "rows_in": c.rows_in,
            "originals": c.originals,
            "already_augmented": c.already_augmented,
            "copies": cfg.copies,
            "requested": c.requested,
            "originals_written": c.originals_written,
            "augmented_written": c.augmented_written,
            "per_method": c.per_method,
            "skipped_identical": c.skipped_identical,
            "skipped_duplicate": c.skipped_duplicate,
        }
    assert writer.manifest is not None
    c = aug.counts
    methods = ", ".join(f"{m} {n:,}" for m, n in c.per_method.items())
    skipped = c.skipped_identical + c.skipped_duplicate
    ui.note(
        f"augment: {c.rows_in:,} rows in, {writer.rows_written:,} written to {cfg.out} "
        f"({c.originals_written:,} input rows, {c.augmented_written:,} augmented: {methods}; "
        f"{skipped:,} variants skipped as identical or duplicate)"
    )
    return writer.manifest
