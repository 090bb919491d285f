"""PII anonymization: find personal identifiers in chat text and replace them with placeholders.

    anon = Anonymizer(PIIConfig())
    texts, counts = anon.anonymize_texts(["Hi, I'm Grace Silva, grace@example.com", "Thanks, Grace Silva!"])
    # ["Hi, I'm <NAME_1>, <EMAIL_1>", "Thanks, <NAME_1>!"], {"NAME": 2, "EMAIL": 1}
    outcome = anon(row, "conversations")         # the cleaning-step interface (steps.py)
    outcomes = anon.batch(rows, "conversations")  # the same for many rows, in one scan

    chatforge data anonymize chat.log --out clean.log      # or: cat chat.log | chatforge data anonymize

The command reads each line after the end of the one before (a sign-off on one line, the name
on the next; a street on one line, city and ZIP on the next) and replaces names found earlier
in the stream on later lines; memory stays flat (see `anonymize_lines`).

Placeholders are typed and consistent within one conversation: the same value (compared
in a normalized form: digits only for phones and cards, lower case for emails, no "#"
before an order number) gets the same placeholder in every message and role, so "my
order <ORDER_1>" in the user turn and "order <ORDER_1> has shipped" in the answer still
agree. Numbering starts above any `<TYPE_n>` already in the conversation, so a text that
mentions an old placeholder never has it reused for a new value. `--pii.mode=hash` writes
`<EMAIL_3fa2c1d0>` instead (SHA-256 of a secret `--pii.salt`, required in that mode, the type
and the normalized value: the same in every conversation and run); `drop-conversation` drops
every row with any detection.

Rows (the cleaning step): a row's texts, every string in its `meta` (recursively; a field
named like a person's name, "customer_name", is read as "Name: <value>") and its `id` are one
conversation. Meta strings get placeholders like the texts; an id with anything found in it
becomes a stable pseudonym, "anon-" + 16 hex digits of SHA-256(salt, id). Counts say how many
replacements were in `meta` ("META") and whether the id was replaced ("ID").

Recognizers (TYPES); each is a regex plus a check a regex cannot do:

    EMAIL    local@domain.tld; role mailboxes (support@, info@, sales@ ...) name a team, not a
             person, and are kept unless --pii.keep-role-emails=false
    PHONE    international (+44 7700 900123, +1 312-555-0147, +33 6 12 34 56 78, +44 (0)20 7946 0958)
             and national ((312) 555-0147, 312.555.0147, 07700 900123, 030 5550 1234) formats; digit
             count, North American area/exchange codes, one kind of separator, not a date
    CARD     13-19 digits in card groupings (4-4-4-4, 4-6-5, plain), Luhn check, an issuer's prefix
             with one of its lengths (13 digits only for a Visa), not after "IMEI", "UPC", "EAN",
             "barcode", "serial", "S/N" (the same label guard applies to phones)
    IBAN     country code + check digits + BBAN, per-country length, ISO 7064 mod-97 check
    SSN      US 123-45-6789 without the never-issued ranges (area 000/666/9xx, group 00, serial
             0000); without dashes only right after "SSN" / "social security number"
    IP       IPv4 and IPv6, validated by the standard library's `ipaddress`; a dotted quad after
             "version", "firmware", "v" ... or all of single digits (2.4.1.3) without an IP
             context is a version number
    ADDRESS  house number + capitalised street name + suffix (St, Avenue, Road, ...), optional
             apartment/unit, optional city with state/ZIP or UK postcode, on the same line or on
             the next one(s) when they hold only a unit and the city with ZIP or postcode
    ORDER    the configured order-number patterns (default: the support world's LG-482913);
             a "#" right before a match is part of it
    URL      URLs whose query string or fragment carries personal parameters (email=, token=, id=, ...;
             the id or name of a thing, product_id= or item_name=, is none)
    NAME     person names in context: "my name is X", "Name: X", "I'm X" / "this is X", "X here"
             (and "X here again", "X here from ..." at a sentence start), greetings ("Hi X",
             "Dear X", "Dear Mr. van Dijk"), sign-offs ("Thanks, X", "Thanks for your help, X",
             "Regards,\\nX", "Yours faithfully,\\n\\nX", "- X" at the end of a message); an initial
             may lead ("J. Pemberton") and de/van/der ... join ("Sanne de Vries"); after "my name
             is" and a "name:" label the name may be in lower case or capitals ("my name is grace
             silva"). Stoplists keep "Hi there", "I'm Sorry", "I'm Canadian", "Thanks, Larkspur
             Goods" out; a role noun, company suffix or event word in or right after the words (or
             after an "&") makes them no person ("Hiring Manager", "Accounts Payable", "Brightwave
             Media Ltd", "Black Friday", "Holloway & Finch Ltd"); "Company name:" is no
             name label. A name found once is replaced wherever else it occurs in the conversation

Precision guards: every number recognizer refuses to start or end inside a longer token,
number, price, decimal or date (so SKUs like EL-1001, tracking numbers like 1ZK4Q7X2M5P8,
$1,299.99, 2024-06-10 and 06/10/2024 are never phones or cards), and the checks above reject
what only looks like an identifier (a 16-digit number failing Luhn, v1.2.3, 2.4.1.3).

Compatibility forms ("ｇｒａｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", full-width digits, no-break spaces, styled letters)
are found in a folded view of the text (NFKC per character, so offsets map back); the
original characters are replaced, and both forms of a value share a placeholder.

Consistency: a value found once is replaced wherever else it occurs in the conversation,
and whatever a placeholder's new neighbourhood would reveal to a second run is replaced in
the first (`Anonymizer._settle`), so anonymizing twice changes nothing and no copy of a
detected value survives. Placeholders match no recognizer.

Speed (benchmarks/pii_benchmark.py): a conversation's texts are scanned together; every
identifier that starts with a digit, "+" or "(" is found in one pass over the text's UTF-8
bytes with digits mapped to "0", and name candidates in one pass with capitals mapped to
"A", so that each pattern starts with a literal the regex engine skips to at memory speed
(patterns led by a character class scan ~20x slower). Emails, URLs and IPv6 are looked for
only when "@", "=" with "://" or "www.", or ":" occur. `anonymize_many` / `batch` scan many
conversations at once and are faster still than one call per row.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
import sys
import time
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Literal, NamedTuple
from urllib.parse import parse_qsl, urlsplit

from rich.text import Text

from chatforge.atomic import atomic_open
from chatforge.config import opt
from chatforge.data.steps import Outcome, Row, row_texts, with_texts
from chatforge.errors import ConfigError, DataError, UserError
from chatforge.ui import QUIET, UI

# Every supported type; placeholders are <TYPE_n>. Earlier types win when two detections
# overlap (a URL holding an email is one URL; a card number is not also a phone).
TYPES: tuple[str, ...] = ("URL", "EMAIL", "IBAN", "CARD", "SSN", "ORDER", "IP", "PHONE", "ADDRESS", "NAME")
_PRIORITY = {t: i for i, t in enumerate(TYPES)}

DEFAULT_ORDER_PATTERNS: tuple[str, ...] = (r"LG-\d{6}",)

# Letters that start (_UP) and continue (_LOW) a capitalised word, Latin scripts.
_UP = "A-Z\u00c0-\u00d6\u00d8-\u00de\u0100-\u024f"
_LOW = "a-z\u00df-\u00f6\u00f8-\u00ff\u0100-\u024f'’"

Mode = Literal["mask", "hash", "drop-conversation"]


@dataclass
class PIIConfig:
    """PII anonymization: which identifiers to find and what to put in their place."""

    enabled: bool = opt(True, "find and replace personal identifiers (emails, phones, cards, names, ...)")
    mode: Mode = opt(
        "mask",
        "mask: typed placeholders numbered per conversation (<EMAIL_1>); hash: salted hash of the value "
        "(<EMAIL_3fa2c1d0>, the same in every conversation); drop-conversation: drop rows that contain any",
    )
    types: list[str] = opt(
        default_factory=lambda: list(TYPES),
        help="identifier types to find, any of " + ", ".join(TYPES),
    )
    order_patterns: list[str] = opt(
        default_factory=lambda: list(DEFAULT_ORDER_PATTERNS),
        help='regexes for your order numbers, matched as whole words in any case; a "#" before one is included',
    )
    salt: str = opt(
        "",
        "secret mixed into hash placeholders and id pseudonyms, so a value cannot be confirmed by hashing "
        "guesses; required in hash mode",
    )
    keep_role_emails: bool = opt(
        True, "keep role addresses like support@, info@, sales@ (they name a team, not a person)"
    )
    allow: list[str] = opt(
        default_factory=list,
        help="values never replaced, e.g. your own support phone number (compared like placeholders: "
        "digits of phones, lower-case emails)",
    )
    not_names: list[str] = opt(
        default_factory=list,
        help="extra capitalised words that are never person names (your brand, products, team names)",
    )

    def validate(self) -> None:
        """Check type names and regexes; raises ConfigError naming the field."""
        types = [t.strip().upper() for item in self.types for t in item.split(",") if t.strip()]
        unknown = [t for t in types if t not in _PRIORITY]
        if not types:
            raise ConfigError("pii.types: empty; to find no PII at all, set pii.enabled to false")
        if unknown:
            raise ConfigError(f"pii.types: unknown type {unknown[0]!r}; choose from {', '.join(TYPES)}")
        self.types = list(dict.fromkeys(types))
        for i, pattern in enumerate(self.order_patterns):
            if not pattern:
                raise ConfigError(f"pii.order_patterns[{i}]: empty pattern")
            try:
                rx = re.compile(rf"(?:{pattern})(?!\w)")
            except re.error as e:
                raise ConfigError(f"pii.order_patterns[{i}]: invalid regex {pattern!r}: {e}") from None
            if rx.match(""):
                raise ConfigError(f"pii.order_patterns[{i}]: {pattern!r} matches empty text")
        if self.enabled and self.mode == "hash" and not self.salt:
            # Without a secret, <EMAIL_3fa2c1d0> is sha256 of a guessable string: anyone with a
            # list of candidate emails (or phone numbers: a small space) can confirm them.
            raise ConfigError(
                "pii.salt: required in hash mode (without a secret, anyone can confirm a guessed value by "
                "hashing it); pass --pii.salt=<a long random secret> and keep it out of the data"
            )

    def redacted(self) -> dict[str, Any]:
        """This config as a dict for manifests and reports, with the secret `salt` shown as "<redacted>"."""
        d = asdict(self)
        if d["salt"]:
            d["salt"] = "<redacted>"
        return d


class Span(NamedTuple):
    """One detected identifier: text[start:end] == value."""

    start: int
    end: int
    type: str
    value: str


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# --------------------------------------------------------------------------------------
# Checks that a regex cannot do


def luhn_ok(digits: str) -> bool:
    """Whether a digit string passes the Luhn checksum (payment cards)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# IBAN length per country (ISO 13616 registry); other country codes need 15-34 characters.
_IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24,
    "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21,
    "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31,
    "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22,
    "SA": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}  # fmt: skip


def iban_ok(iban: str) -> bool:
    """Whether an IBAN (no spaces, upper case) has its country's length and a valid mod-97 check."""
    want = _IBAN_LENGTHS.get(iban[:2])
    if (want is not None and len(iban) != want) or not 15 <= len(iban) <= 34 or not iban.isalnum():
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def card_ok(digits: str) -> bool:
    """Whether a digit string is a payment card number: an issuer's prefix with one of its
    lengths, and the Luhn checksum. The lengths keep out other Luhn-checked numbers: 15-digit
    IMEIs, 13-digit EAN barcodes (a 13-digit card is an old Visa, starting with 4)."""
    n = len(digits)
    if not 13 <= n <= 19 or not luhn_ok(digits):
        return False
    p2, p4 = int(digits[:2]), int(digits[:4])
    if digits[0] == "4":  # Visa
        return n in (13, 16, 19)
    if p2 in (34, 37):  # American Express
        return n == 15
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:  # Mastercard
        return n == 16
    if p2 in (36, 38, 39) or 300 <= int(digits[:3]) <= 305:  # Diners Club
        return 14 <= n <= 19
    if 2200 <= p4 <= 2204 or 3528 <= p4 <= 3589:  # Mir, JCB
        return 16 <= n <= 19
    if digits[0] in "56":  # Discover, UnionPay, Maestro, RuPay and other 5/6 issuers
        return 16 <= n <= 19
    return False


def ssn_ok(digits: str) -> bool:
    """Whether 9 digits form a US SSN that could have been issued."""
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _digits(s: str) -> str:
    return "".join(c for c in s if c.isdigit())


_DATE_LIKE = re.compile(r"\d{1,4}([.\-/])\d{1,2}\1\d{2,4}(?!\d)")


# Most digits (with the country code) of numbers in a few common countries; others: 15 (E.164).
_PHONE_MAX_DIGITS = {"33": 11, "34": 11, "31": 11, "44": 12, "49": 13, "39": 13, "61": 11, "91": 12, "86": 13}


def phone_ok(value: str) -> bool:
    """Whether a phone-shaped string is plausibly a phone number (see the module docstring)."""
    digits = _digits(value)
    if value.startswith("+"):
        # "+44 (0)20 7946 0958": the "(0)" is the trunk prefix dialled at home, not part of the number.
        digits = _digits(value.replace("(0)", "", 1))
        if not 8 <= len(digits) <= _PHONE_MAX_DIGITS.get(digits[:2], 15):
            return False
        if digits[0] == "1":  # +1: a North American number, 10 digits after the 1
            return len(digits) == 11 and digits[1] in "23456789" and digits[4] in "23456789"
        return True
    if _DATE_LIKE.match(value):
        return False
    # One kind of separator (a parenthesised area code aside): "01.02.2023 10" is no phone.
    core = re.sub(r"\(\d+\)[ ]?", "", value)
    if len({c for c in core if not c.isdigit()}) > 1:
        return False
    if digits[0] == "0":
        return 9 <= len(digits) <= 12
    if len(digits) == 11:
        if digits[0] != "1" or value[1:2].isdigit():  # "1-312-555-0147", not "145.254.13.237"
            return False
        digits = digits[1:]
    return len(digits) == 10 and digits[0] in "23456789" and digits[3] in "23456789"


# --------------------------------------------------------------------------------------
# Identifiers that start with a digit, "+" or "(". Each pattern below is the part after
# its first character and checks what came before that character with a look-behind
# (`(?<!X\d)` right after a digit finds what `(?<!X)\d` finds): the first character can
# then be a plain literal, which the regex engine finds at memory speed (see _SHAPE).


def _not_in_number(first: str) -> str:
    """Not inside a longer token, number, price or date, nor the 2nd group of a number."""
    return rf"(?<![\w+$€£¥#@.,/:\-]{first})(?<!\d[ .\-]{first})"


_AFTER = r"(?!\w|[.,\-/:]\d)"  # ... and not followed by more of one
_NOT_IN_NUMBER = _not_in_number(r"\d")
_PHONE_INTL = r"(?<![\w+]\+)\d{1,3}(?:[ .\-]?\(0\))?(?>(?:[ .\-]?\(?\d+\)?)+)" + _AFTER  # after "+"
_PHONE_PAREN = (  # after "(": (312) 555-0147, (030) 5550 1234
    r"(?<![\w(]\()(?:\d{3}\)[ .\-]?\d{3}[ .\-]\d{4}|0\d{1,4}\)[ .\-]?\d{2,4}(?:[ .\-]?\d{2,4}){1,3})" + _AFTER
)
# The rest follow their first digit, and _not_in_number() unless they check on their own.
_PHONE_NANP = r"(?:\d{2}|[ .\-]\d{3})[ .\-]\d{3}[ .\-]\d{4}" + _AFTER  # 312-555-0147, 1-312-555-0147
_PHONE_TRUNK = r"\d{1,4}(?:[ .\-]?\d{2,4}){2,4}" + _AFTER  # after a "0": 07700 900123, 06 12 34 56 78
_CARD = (  # after a 2-6
    r"(?:\d{3}(?P<s1>[ \-]?)\d{4}(?P=s1)\d{4}(?P=s1)\d{1,4}(?:(?P=s1)\d{3})?"  # 4-4-4-1..4(-3)
    r"|\d{3}(?P<s2>[ \-]?)\d{6}(?P=s2)\d{4,5}"  # 4-6-5 (Amex), 4-6-4 (Diners)
    r"|\d{12,18})"
    r"(?!\w|[.,\-/:]\d|[ \-]\d{3})"  # a group of 3+ digits after it: part of a longer number
)  # fmt: skip
_SSN = r"\d{2}-\d{2}-\d{4}" + _AFTER
_SSN_BARE = r"\d{2}[ .]?\d{2}[ .]?\d{4}" + _AFTER  # only right after "SSN" (checked in Python)
_SSN_KEYWORD = re.compile(r"(?i)\b(?:ssn|social security(?: number| no\.?)?)\b[ \t]*(?:is|:|#|=)?[ \t]*\Z")
# Labels of numbers that are neither cards nor phones, though some pass Luhn or look like one:
# "IMEI 356938035643809", "UPC 036000291452", "barcode 5901234123457", "S/N: 4411 2233 ...".
_NUMBER_LABELS = _words("imei meid iccid upc upc-a ean ean-13 gtin isbn asin barcode serial s/n sn tracking")
_LABEL_FILLER = _words("is no no. nr number num : # =")


def _number_labelled(text: str, start: int) -> bool:
    """Whether the number at `start` follows a label of a non-personal number ("IMEI", "serial no.")."""
    before = text[max(0, start - 32) : start].lower()
    words = before.replace("bar code", "barcode").replace(":", " : ").replace("#", " # ").split()
    while words and words[-1] in _LABEL_FILLER:
        words.pop()
    return bool(words) and words[-1] in _NUMBER_LABELS


_IPV4 = r"(?<![\w.]\d)\d{0,2}(?:\.\d{1,3}){3}(?!\w|\.\d)"
# An IBAN is found at its first check digit, after the two letters of the country code.
_IBAN = r"(?<=[A-Z]{2}\d)(?<![A-Za-z0-9][A-Z]{2}\d)\d(?:[ \-]?[A-Z0-9]){11,30}(?![A-Za-z0-9])"
_STREET_SUFFIX = (
    "Street|St|Avenue|Ave|Av|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Ter|"
    "Parkway|Pkwy|Circle|Cir|Highway|Hwy|Square|Sq|Trail|Trl|Alley|Crescent|Close|Grove|Gardens|Row|Plaza|Mews|"
    "Broadway"
)
_ADDRESS = (
    r"(?<![\w$#.,/\-]\d)\d{0,5}[A-Za-z]?(?:[\-/]\d{1,5})?[ \t]+"  # house number: 12, 12B, 12-14
    r"(?:(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West)\.?[ \t]+)?"
    r"(?:(?:[A-Z][a-z'’\-]+|\d{1,3}(?:st|nd|rd|th))[ \t]+){0,4}"  # street name words
    r"(?:" + _STREET_SUFFIX + r")\b(?:(?<=[a-z]{2}[a-z])|\.?)"  # "St." takes its dot, "Street." does not
    r"(?:[ \t]+(?:N|S|E|W|NE|NW|SE|SW)\b\.?)?"
    r"(?:,?[ \t]*(?:Apt|Apartment|Unit|Suite|Ste|Flat|Floor|Fl|Room|Rm|Bldg|Building|\#)\.?[ \t]*\#?"
    r"[A-Za-z0-9][A-Za-z0-9\-]{0,5}\b)?"
    # City, then a state (+ ZIP), a ZIP or a UK postcode; a city alone is not included.
    r"(?:,[ \t]*[A-Z][A-Za-z'’.\-]+(?:[ \t]+[A-Z][A-Za-z'’.\-]+){0,2},?[ \t]*"
    r"(?:[A-Z]{2}(?:[ \t]+\d{5}(?:-\d{4})?)?|\d{5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]?[ \t]*\d[A-Z]{2})(?![\w\-]))?"
)

# An address line may end where the next line is only a unit and/or city, state and ZIP or town
# and postcode ("2217 Lakeview Drive\nAustin, TX 78704", "14 Gower Street\nLondon WC1E 6BT").
_UNIT = r"(?:Apt|Apartment|Unit|Suite|Ste|Flat|Floor|Fl|Room|Rm|Bldg|Building|\#)\.?[ \t]*\#?[A-Za-z0-9][A-Za-z0-9\-]{0,5}"
_CITY_ZIP = (
    rf"[{_UP}][\w'’.\-]+(?:[ \t]+[{_UP}][\w'’.\-]+){{0,2}},?[ \t]*"
    r"(?:[A-Z]{2},?[ \t]+\d{5}(?:-\d{4})?|\d{5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]?[ \t]*\d[A-Z]{2})"
)
_ADDRESS_NEXT_LINES = re.compile(
    rf"[ \t]*,?[ \t]*\r?\n[ \t]*(?:{_UNIT}[ \t]*,?[ \t]*\r?\n[ \t]*)?{_CITY_ZIP}(?=[ \t]*(?:\r?\n|$))"
)
_ADDRESS_HAS_CITY = re.compile(r"(?:\b[A-Z]{2}|\d{5}(?:-\d{4})?|\d[A-Z]{2})\Z")

# Each digit-led type on its own, over the text itself: to retry a position whose first
# match failed its check ("4111 1111 1111 1112" is no card; is it anything else?).
_SINGLE: dict[str, re.Pattern[str]] = {
    "IBAN": re.compile(r"\d" + _IBAN),
    "CARD": re.compile("[2-6]" + _not_in_number("[2-6]") + _CARD),
    "SSN": re.compile(r"\d" + _NOT_IN_NUMBER + _SSN),
    "IP": re.compile(r"\d" + _IPV4),
    "PHONE": re.compile(
        rf"\+{_PHONE_INTL}|\({_PHONE_PAREN}"
        rf"|\d{_NOT_IN_NUMBER}{_PHONE_NANP}|0{_not_in_number('0')}{_PHONE_TRUNK}"
    ),
    "ADDRESS": re.compile(r"\d" + _ADDRESS),
}


def _b(pattern: str) -> bytes:
    """A str pattern as one over UTF-8 bytes: a non-ASCII character in a class becomes any non-ASCII byte."""
    for ch in "€£¥’":
        pattern = pattern.replace(ch, r"\x80-\xff")
    return pattern.encode("ascii")


# The digit-led patterns run over the text's "digit shape": its UTF-8 bytes with every
# digit turned into "0", so each starts with the literal "0" (a pattern led by a class
# like [0-9] is scanned ~20 times slower). Which digits a phone, card or address has does
# not change its structure; that is checked afterwards on the real text. An empty group
# named after the type ends each branch (`lastgroup`); earlier branches win.
_DIGITS_SHAPE = re.compile(
    _b(
        r"0(?<![0-9a-z_]0)(?:"  # a digit inside a number or word starts nothing (but an IBAN's check digits)
        rf"{_IBAN}(?P<IBAN>)"
        rf"|{_IPV4}(?P<IP>)"
        rf"|{_NOT_IN_NUMBER}(?:"
        rf"{_SSN}(?P<SSN>)|{_SSN_BARE}(?P<SSN_BARE>)|{_CARD}(?P<CARD>)"
        rf"|{_PHONE_NANP}(?P<PHONE_NANP>)|{_PHONE_TRUNK}(?P<PHONE_TRUNK>))"
        rf"|{_ADDRESS}(?P<ADDRESS>))"
    )
)
_PLUS_SHAPE = re.compile(_b(rf"\+{_PHONE_INTL}(?P<PHONE_INTL>)"))
_PAREN_SHAPE = re.compile(_b(rf"\({_PHONE_PAREN}(?P<PHONE_PAREN>)"))
_DIGIT_TABLE = bytes.maketrans(b"123456789", b"000000000")
_UPPER_TABLE = bytes.maketrans(b"BCDEFGHIJKLMNOPQRSTUVWXYZ", b"A" * 25)
_GROUP_TYPE = {"PHONE_INTL": "PHONE", "PHONE_PAREN": "PHONE", "PHONE_NANP": "PHONE", "PHONE_TRUNK": "PHONE", "SSN_BARE": "SSN"}

_EMAIL = re.compile(
    r"(?<![\w.%+\-])[\w%+\-](?:[\w.%+\-]{0,62}[\w%+\-])?@"
    r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*"
    r"\.[A-Za-z]{2,24}(?![\w\-]|\.[A-Za-z0-9])"
)
_ROLE_MAILBOXES = _words(
    "support help helpdesk info contact contactus hello sales billing accounts orders order returns service "
    "customerservice customercare care team office admin webmaster postmaster hostmaster abuse security "
    "privacy legal press media marketing careers jobs hr noreply no-reply donotreply do-not-reply "
    "notifications alerts feedback enquiries inquiries shop store finance accounting invoices invoice payments "
    "payroll procurement purchasing wholesale partners"
)
_IPV6_HINT = re.compile(r":[0-9A-Fa-f]{0,4}:")
_IPV6 = re.compile(
    r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:(?<=:)\d{1,3}(?:\.\d{1,3}){3})?(?:%\w+)?(?![\w:])"
)
_VERSION_BEFORE = re.compile(
    r"(?i)\b(?:v|ver|version|versions|firmware|release|build|update|updated|app|software|os|ios|android|"
    r"patch|rev|revision|model|driver|library|package|sdk|api)\b[^.\n\d]{0,12}$"
)
_IP_CONTEXT = re.compile(r"(?i)\b(?:ip|ips|ipv4|address|server|host|dns|gateway|router|subnet|ping)\b")

_URL = re.compile(r"(?:[Hh][Tt][Tt][Pp][Ss]?://|[Ww][Ww][Ww]\.)[^\s<>\"'\x00]+")
_URL_TRAILING = ".,;:!?)]}'\"’"
# Query keys (or parts of keys split on _ - .) that carry something about a person.
_PERSONAL_KEYS = _words(
    "email e-mail mail user username userid uid login token access_token auth key apikey api_key session "
    "sessionid sid name firstname lastname fullname first last phone tel mobile cell id customer customerid "
    "account acct address addr zip zipcode postcode postal dob birthdate birthday ssn password pass pwd "
    "passwd secret card iban member memberid contact otp signature sig"
)

# ----------------------------------------------------------------------------- names
# A name is 1-3 capitalised words (an initial like "J." may sit between two); each word
# is checked in Python (`_name_length`). Candidates are capitalised words right after a
# separator that does not end a sentence ("Hi Grace", "Thanks, Grace", "Regards,\nGrace",
# "- Grace"); the word before them must then be a trigger (`_TRIGGERS`).

# At a capital: it must follow a space or line break that does not end a sentence, and
# before that the last four characters of a trigger ("Hi Grace", "thanks\nGrace"), with
# or without a comma ("Thanks, Grace"), "me:" ("Name: Grace") or a dash ("- Grace"). Text
# is scanned with two line breaks in front, so a trigger at the very start has characters
# before it.
# A sign-off may stand a blank line above the name ("Kind regards,\n\nFiona"); the name may
# start with an initial ("J. Pemberton").
_NAME_START_TEMPLATE = (
    r"[{up}](?=[{low}]|\.[ \t][{up}][{low}])(?:"
    r"(?<=[^.!?\s\x00][ \t\n][{up}])"
    r"(?<=(?:{ends2}|[^\s],|{e}:|\s{dash})[ \t\n][{up}])(?:"  # a cheaper first test: two characters
    r"(?<=(?:{ends})[ \t\n][{up}])|(?<=(?:{ends}|{comma_ends}),[ \t\n][{up}])|(?<=(?:{comma_ends})\n[{up}])"
    r"|(?<={m}{e}:[ \t][{up}])|(?<=\s{dash}[ \t][{up}]))"
    r"|(?<=\s{dash}[{up}])"
    r"|(?<=[^\s]\n\n[{up}])(?:(?<=(?:{ends}|{comma_ends}),\n\n[{up}])|(?<=(?:{comma_ends})\n\n[{up}])))"
)
_NAME_WORD = rf"[{_UP}][\w'’\-]*"
# Lower-case particles between name words: "Sanne de Vries", "Pieter van der Berg".
_PARTICLES = _words("de da di du del della der den van von le la ter ten dos das bin ibn al el")
_PARTICLE = "(?:" + "|".join(sorted(_PARTICLES, key=lambda p: (-len(p), p))) + ")"
_TITLE = re.compile(rf"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?[ \t]+(?=[A-Z]|(?:{_PARTICLE}[ \t]+){{1,2}}[A-Z])")
_LEADING_PARTICLES = re.compile(rf"(?:{_PARTICLE}[ \t]+){{1,2}}(?=[A-Z])")  # "Dear Mr. van Dijk"
_NAME_AT = re.compile(
    rf"(?:[{_UP}]\.[ \t]+)?{_NAME_WORD}(?:[ \t]+(?:[A-Z]\.[ \t]+|{_PARTICLE}[ \t]+){{0,2}}{_NAME_WORD}){{0,2}}"
)
# "Grace Silva here." (found from " here"); "Sam here again, ...", "Sam here from accounts" at
# the start of a sentence.
_HERE = re.compile(
    r"here(?<=[ \t]here)\b(?:(?=[ \t]*(?:[.!,;:—–\-<&]|$))|(?P<more>(?=[ \t]+(?:again\b|from[ \t]+[^\W\d_]))))", re.MULTILINE
)
# After "- Grace": the end of the message or sentence (or of an HTML element).
_DASH_END = re.compile(r"[ \t]*(?:[.!]?[ \t]*(?:\n|$)|[.!][ \t]|<|&)")

# Trigger phrases by their last word. "strong": a stop word that is also a given name
# ("June", "Will") is still accepted; "comma": needs a comma, colon or line break before
# the name ("Regards, Grace"), not just a space ("best Aurora").
_TRIGGERS: dict[str, tuple[tuple[str, str], ...]] = {}
for _phrase, _kind in (
    [(p, "strong") for p in ("my name is", "my name's", "name", "full name", "name is", "call me")]
    + [(p, "plain") for p in ("hi", "hello", "hey", "hiya", "dear", "good morning", "good afternoon",
                              "good evening", "greetings", "thanks", "thank you", "thx", "ty", "cheers",
                              "many thanks", "i'm", "i’m", "i am", "this is")]
    + [(p, "comma") for p in ("regards", "best", "sincerely", "yours", "love", "take care", "best wishes",
                              "signed", "respectfully", "warmly", "yours faithfully", "yours truly",
                              "thanks for your help", "thank you for your help", "thanks for the help",
                              "thanks in advance", "thank you in advance")]
):  # fmt: skip
    _last = _phrase.split()[-1]
    _TRIGGERS[_last] = (*_TRIGGERS.get(_last, ()), (_phrase, _kind))


Letter = Callable[[str, bool], str]  # (letter, is it the trigger's first letter) -> regex piece


def _ends(kinds: tuple[str, ...], width: int, letter: Letter, ascii: bool) -> str:
    """The last `width` characters of the triggers of `kinds` as regex alternatives, grouped by
    their first piece (the regex engine then rejects most groups with one test)."""
    ends: set[tuple[str, ...]] = set()
    for options in _TRIGGERS.values():
        for phrase, kind in options:
            if kind not in kinds or (ascii and not phrase.isascii()):
                continue
            pieces = [
                "[^A-Za-z0-9]" if c == "\x01" else "[ \\t]" if c == " " else letter(c, i == 1) if c.isalpha() else re.escape(c)
                for i, c in enumerate("\x01" + phrase)
            ]
            ends.add(tuple(["[\\s\\S]"] * (width - len(pieces)) + pieces[-width:]))
    groups: dict[str, list[str]] = {}
    for end in sorted(ends):
        groups.setdefault(end[0], []).append("".join(end[1:]))
    return "|".join(head + (rest[0] if len(rest) == 1 else "(?:" + "|".join(rest) + ")") for head, rest in groups.items())


def _name_start(up: str, low: str, dash: str, letter: Letter, ascii: bool) -> str:
    return _NAME_START_TEMPLATE.format(
        up=up,
        low=low,
        dash=dash,
        e=letter("e", False),
        m=letter("m", False),
        ends=_ends(("strong", "plain"), 4, letter, ascii),
        comma_ends=_ends(("comma",), 4, letter, ascii),
        ends2=_ends(("strong", "plain", "comma"), 2, letter, ascii),
    )


# Scanned over the "capital shape": UTF-8 bytes with every capital A-Z turned into "A", so
# the scan skips to the literal "A" (see _DIGITS_SHAPE); the first letter of a trigger may
# then be a capital ("[hA]i" for "hi" and "Hi"). A text with any non-ASCII character (É, Ł,
# a curly apostrophe, an em dash) is also scanned with the slower pattern over the text.
_NAME_START_SHAPE = re.compile(
    _name_start("A", "a-z'\\x80-\\xff", "[-~]", lambda c, first: f"[{c}A]" if first else c, ascii=True).encode()
)
_NAME_START_TEXT = re.compile(
    _name_start(_UP, _LOW, "[-–—~]", lambda c, first: f"[{c}{c.upper()}]" if first else c, ascii=False)
)


# Capitalised words that are not names: they follow "Hi", "Thanks," or "I'm" in ordinary
# text ("Hi there", "Thanks, Team", "I'm Sorry"), or they are the built-in store's brand
# and product words ("Thanks, Larkspur Goods"). Compared in lower case.
_STOP_WORDS = _words(
    """
    a an the and or but if so as at by for from in into of on onto to with without about above after again
    against all almost also although always am among any anybody anyone anything anyway anywhere are around
    away back be because been before being below between both can cannot could did do does doing done down
    during each either else enough even ever every everybody everyone everything everywhere few first for
    further had has have having he her here hers herself him himself his how however i i'd i'll i'm i've
    it it's its itself just last least less let like likely many may maybe me might mine more most much must
    my myself neither never next no nobody none noone nor not nothing now nowhere of off often once one only
    other others otherwise our ours ourselves out over own perhaps please quite rather really same she should
    since so some somebody someone something sometimes somewhere soon still such than that that's their
    theirs them themselves then there there's these they this those though through thus till to together too
    under until up upon us very was we well were what whatever when where whether which while who whoever
    whole whom whose why will with within would yes yet you your yours yourself yourselves ok okay
    hi hello hey hiya howdy greetings dear morning afternoon evening night day good great thanks thank
    thx ty cheers regards best kind warm warmly sincerely respectfully love care wishes signed again
    all everyone everybody folks guys team teams support staff customer customers client service services
    sir sirs madam madame mam ma'am mr mrs ms miss dr prof friend friends buddy mate pal man dude bro
    agent agents bot assistant admin administrator manager supervisor human person people department
    help helpdesk desk sales billing shipping delivery returns refund refunds order orders account store shop
    company world
    monday tuesday wednesday thursday friday saturday sunday today tomorrow yesterday tonight weekend week
    january february march april may june july august september october november december
    happy sorry fine glad sure afraid home new ready trying looking writing calling contacting
    interested confused frustrated disappointed upset annoyed angry excited waiting
    urgent ridiculous unacceptable amazing awesome perfect terrible horrible crazy insane absurd
    important serious weird strange correct right wrong true false real fake broken late early
    unhappy disappointing useless pathetic nice cool lovely wonderful fantastic excellent brilliant
    yeah yep nope alright hmm um uh oh wow lol pls plz
    click tap look sign check see stop wait stay come go read type enter scroll down over right out up in
    write send call email contact let tell ship deliver cancel refund return track find give get make take
    keep need want can could would should will is are was were has have had do does did got also just
    number email phone address card name tracking status item items product products
    english french german spanish chinese italian portuguese american british
    god jesus christ lord
    larkspur goods aurora wireless earbuds summit noise cancelling headphones pulse fitness tracker beacon
    smart speaker volt power bank lumen led desk lamp orbit action camera nimbus mechanical keyboard glide
    mouse halo thermostat drift portable vista tablet cozy knit throw blanket terra ceramic planter set haven
    memory foam pillow linen blackout curtains birch wall clock ember scented candle copper pour-over kettle
    forge chef knife maple cutting board stoneware dinner steep cold brew pitcher thermo insulated bottle
    trailhead rain jacket merino crew socks everyday canvas sneakers harbor fleece hoodie alpine beanie
    ridge leather belt basecamp tent ridgeline daypack stride trekking poles campfire enamel mug drowse
    sleeping bag bloom facial cleanser dew hydrating moisturizer shea hand cream trio bamboo hair brush
    ups fedex dhl usps amazon paypal visa mastercard amex discover apple google microsoft
    """
)
# Stop words that are also given names: accepted after "my name is" / "Name:" only.
_GIVEN_NAME_WORDS = _words(
    "may june april august will grace hope faith joy rose mark bill summer dawn art jack frank sky autumn "
    "ray rich sunny charity destiny amber crystal ruby pearl iris lily holly ivy ginger penny sandy "
    "guy drew hunter chase miles king glen dale mercy patience honor felicity christian angel harmony"
)
# Capitalised words that are no first name, though they may be a surname ("I'm Canadian",
# "I'm Vegan", "Dear Valued Customer", but "Regards, Rachel Welsh"): demonyms, adjectives.
_NOT_FIRST_NAMES = _words(
    """
    canadian mexican australian irish scottish welsh dutch belgian swiss austrian swedish norwegian danish
    finnish polish russian ukrainian greek turkish indian pakistani bangladeshi japanese korean vietnamese
    thai filipino indonesian malaysian singaporean brazilian argentinian argentine chilean colombian peruvian
    venezuelan cuban nigerian kenyan ghanaian ethiopian egyptian moroccan african european asian latino
    latina hispanic arab israeli iranian persian iraqi syrian lebanese jewish muslim catholic protestant
    hindu buddhist sikh atheist czech slovak hungarian romanian bulgarian serbian croatian lithuanian
    latvian estonian icelandic scandinavian kiwi aussie texan californian
    vegan vegetarian allergic pregnant disabled deaf blind diabetic retired unemployed single married
    divorced widowed sick ill tired busy free available away abroad online offline based located
    curious concerned worried nervous stuck unable able lost satisfied dissatisfied thrilled delighted
    pleased grateful thankful hopeful impressed shocked surprised gutted furious livid disgusted
    embarrassed done finished moving travelling traveling visiting staying leaving returning ordering
    buying shopping asking wondering following replying responding reaching emailing chasing currently
    valued hiring dear loyal regular frequent longtime long-time existing potential prospective
    cyber black boxing prime giving
    problem problems issue issues question questions update updates error errors parcel parcels package
    packages box boxes price prices size sizes stock weather rain snow
    """
)
# Words that make the capitalised words around them a role, team, company or event, not a
# person: inside a candidate ("Accounts Payable", "Hiring Manager", "Brightwave Media Ltd") or
# right after it on the same line ("Procurement Team", "Black Friday").
_ROLE_NOUNS = _words(
    "team teams department dept customer customers client clients manager managers payable receivable "
    "accounts procurement purchasing officer director coordinator specialist representative rep agent "
    "assistant support staff member members committee board office desk service services operations admin "
    "administrator supervisor recruiter recruitment owner partner partners colleague colleagues associate "
    "user users shopper buyer vendor supplier applicant candidate resident tenant subscriber group division "
    "helpdesk crew folks everyone"
)
_COMPANY_SUFFIXES = _words(
    "ltd ltd. limited inc inc. incorporated corp corp. corporation co co. llc llp lp plc gmbh ag sa sas sarl "
    "bv nv srl spa pty oy ab kg holdings company"
)
_EVENT_WORDS = _words("day days sale sales deal deals weekend week eve season holiday holidays christmas easter")
_FOLLOWERS = _ROLE_NOUNS | _COMPANY_SUFFIXES | _EVENT_WORDS
_FOLLOWER = re.compile(r"[ \t]+([A-Za-z][A-Za-z.]*)(?![\w@'’\-])")
_FIRM_TAIL = re.compile(r"[ \t]*[&+][ \t]*((?:[A-Z][\w'’\-]*\.?[ \t]*){1,4})")  # "& Finch Ltd", "+ Partners"
# Words before "name:" that keep it a label of a person's name ("Full name:", "Customer name:");
# after any other word on the line ("Company name:", "Product name:") it is not.
_NAME_LABEL_WORDS = _words(
    "full first last given family middle maiden legal customer client contact recipient cardholder holder "
    "account sender buyer patient my your his her their"
)
# Sign-offs after which the name may follow a blank line (greetings may not: "Hi,\n\nWondering ...").
_THANKS = frozenset(("thanks", "thank you", "many thanks", "cheers", "thx", "ty"))
# After "my name is" / "name:", a name in lower case or capitals ("my name is grace silva"): 1-2
# words, none of them a stop word or one of these, then the end, punctuation or a stop word.
_INTRO = re.compile(r"(?i)name(?:[ \t]+(?P<is>is)|[ \t]*:)[ \t]*")  # matched where "name" was found
_INTRO_MY = re.compile(r"(?i)(?<![\w'’])my[ \t]+\Z")
_INTRO_WORDS = re.compile(r"([^\W\d_]+(?:['’\-][^\W\d_]+)*)(?:[ \t]+([^\W\d_]+(?:['’\-][^\W\d_]+)*))?")
_INTRO_AFTER = re.compile(r"[ \t]+([^\W\d_]+)(?![\w@'’\-])")  # the word after the name, if any
_NOT_LOWER_NAMES = _words(
    "spelled spelt misspelled misspelt listed printed written shown showing displayed missing incorrect "
    "incorrectly different changed changing attached included mentioned registered associated linked saved "
    "stored used being correct unknown blank anonymous test none withheld confidential private hidden "
    "required optional above below actually really literally officially legally currently"
)

_WORD_RE = re.compile(r"\S+")
_NAME_TOKEN = re.compile(r"[\w'’.\-]+")


def _name_length(candidate: str, strong: bool, extra_stop: frozenset[str]) -> int:
    """How many characters at the start of `candidate` are a name (0: none).

    Words are taken while they look like name parts: an upper-case first letter, a
    lower-case letter after it, letters only (and ' -), not a stop word; a possessive
    "'s" ends the name. An initial ("J.") may sit between two words.
    """
    end = 0
    for m in _WORD_RE.finditer(candidate):
        word = m.group()
        if len(word) == 2 and word[1] == "." and word[0].isupper():
            continue  # an initial: kept only if a name word follows ("J. Pemberton", "Mary J. Watson")
        if end and word in _PARTICLES:
            continue  # "de", "van der": kept only if a name word follows
        possessive = word.endswith(("'s", "’s"))
        if possessive:
            word = word[:-2]
        word = word.rstrip("'’-")
        low = word.lower()
        if low in _ROLE_NOUNS or low in _COMPANY_SUFFIXES:
            return 0  # "Accounts Payable", "Hiring Manager", "Brightwave Media Ltd": not a person
        if (
            len(word) < 2
            or (not end and low in _NOT_FIRST_NAMES)
            or not word[0].isupper()
            or word[1:].isupper()  # no lower-case letter after the first: "UPS", "I"
            or not (word.isalpha() or word.replace("'", "").replace("’", "").replace("-", "").isalpha())
            or low in extra_stop
            or (low in _STOP_WORDS and not (strong and low in _GIVEN_NAME_WORDS))
        ):
            break
        end = m.start() + len(word)
        if possessive:
            break
    return end


def _trigger_before(text: str, start: int) -> str | None:
    """The kind of name trigger that ends right before `start` ("strong", "plain", "dash"), if any."""
    window_at = max(0, start - 32)
    window = text[window_at:start]
    core = window.rstrip()
    if not core:
        return None
    last = core[-1]
    if last in "-–—~":  # "- Grace": the dash must follow a space or start the line
        before = core[:-1].rstrip("-")
        return "dash" if not before or before[-1].isspace() or before[-1] == "\x00" else None
    punctuated = last in ",:"
    if punctuated:
        core = core[:-1].rstrip(" \t")
    elif len(core) == len(window):
        return None
    lower = core[-28:].lower()  # the longest trigger: "thank you for your help"
    cut = max(lower.rfind(" "), lower.rfind("\n"), lower.rfind("\t"))
    options = _TRIGGERS.get(lower[cut + 1 :])
    if not options:
        return None
    gap = window[len(window.rstrip()) :]
    newline = "\n" in gap
    blank_line = gap.count("\n") > 1
    for phrase, kind in options:
        if not lower.endswith(phrase):
            continue
        at = len(lower) - len(phrase)
        if at > 0 and (lower[at - 1].isalnum() or lower[at - 1] in "'’"):
            continue
        if phrase in ("name", "full name") and (
            last != ":" or not _name_label_ok(text, window_at + len(core) - len(phrase))
        ):
            continue  # "name" alone only as a label of its own: "Name: Grace", not "Company name: ..."
        if kind == "comma" and not (punctuated or newline):
            continue
        if blank_line and not (kind == "comma" or phrase in _THANKS):
            continue
        return "strong" if kind == "strong" else "plain"
    return None


def _name_label_ok(text: str, at: int) -> bool:
    """Whether the "name:" label at `at` is a label of its own, not the end of a longer one about
    a thing ("Company name:", "Product Name:"). It is when it starts its line (after punctuation
    at most), when the word before it keeps it about a person ("Full name:", "Customer name:"),
    or when a capitalised "Name:" follows a word that is not ("... in the box Name: Jonas")."""
    line = text[max(0, at - 40) : at]
    line = line[line.rfind("\n") + 1 :].rstrip(" \t")
    if not line or not (line[-1].isalnum() or line[-1] in "'’"):
        return True
    word = line.split()[-1]
    if word.lower() in _NAME_LABEL_WORDS or not word.isalpha():
        return True  # (not a plain word, e.g. an email: as after the placeholder it becomes)
    label = text[at : at + 4]
    if label.islower():
        return False  # "Company name:"
    if label.isupper():
        return not word.isupper()  # "COMPANY NAME:"
    return not (word[:1].isupper() and word[1:2].islower())  # "Company Name:"


def _followed_by_non_person(text: str, end: int) -> bool:
    """Whether the word right after a name on its line makes it a role, company or event ("Team",
    "Ltd", "Friday"), or an "&" joins it to such words ("Holloway & Finch Ltd"; "Tom & Anna" stays)."""
    def follower(word: str) -> bool:
        return word.lower() in _FOLLOWERS or word.rstrip(".").lower() in _FOLLOWERS

    m = _FOLLOWER.match(text, end)
    if m is not None and follower(m.group(1)):
        return True
    firm = _FIRM_TAIL.match(text, end)
    return firm is not None and any(map(follower, firm.group(1).split()))


# --------------------------------------------------------------------------------------
# Compatibility forms: "ｇｒａｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", "４１１１ １１１１ ...", "4111\u00a01111 ...". The
# recognizers see a folded view of a non-ASCII text in which each such character is its NFKC
# form; folding per character keeps every offset mappable back to the text, whose own
# characters are what gets replaced.

_FOLD_TAGS = frozenset(("<wide>", "<narrow>", "<font>", "<noBreak>", "<compat>", "<circle>"))
_foldable: re.Pattern[str] | None = None


def _foldable_chars() -> re.Pattern[str]:
    """A class of the characters `_fold` changes: full- and half-width forms, styled letters and
    digits (𝐠, ⓖ), compatibility spaces, ligatures. Not super- or subscripts and fractions
    ("m²", "2½" are no digits of a number), nor spacing accents (´ would become a space).
    Built on first use (~50 ms)."""
    global _foldable
    if _foldable is None:
        chars = []
        for cp in [*range(0x80, 0x10000), *range(0x1D400, 0x1D800), *range(0x1F100, 0x1F200)]:
            c = chr(cp)
            tag = unicodedata.decomposition(c).split(" ", 1)[0]
            if not tag or tag in ("<super>", "<sub>", "<fraction>"):
                continue
            f = unicodedata.normalize("NFKC", c)
            if f != c and (tag in _FOLD_TAGS or f.isascii()) and not (f[:1] == " " and not c.isspace()):
                chars.append(re.escape(c))
        _foldable = re.compile("[" + "".join(chars) + "]")
    return _foldable


def _fold(text: str) -> tuple[str, list[int] | None]:
    """The folded view of `text`, and for each of its characters the offset in `text` of the
    character it came from (None when folding changes nothing: the usual case)."""
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        return text, None
    changes = [(m.start(), unicodedata.normalize("NFKC", m.group())) for m in _foldable_chars().finditer(text)]
    if not changes:
        return text, None
    pieces: list[str] = []
    origin: list[int] = []
    at = 0
    for i, folded in changes:
        pieces += (text[at:i], folded)
        origin += range(at, i)
        origin += [i] * len(folded)
        at = i + 1
    pieces.append(text[at:])
    origin += range(at, len(text) + 1)  # one past the end too
    return "".join(pieces), origin


def _unfold(text: str, spans: list[Span], origin: list[int]) -> list[Span]:
    """`spans` of the folded view of `text` as spans of `text` (whole characters of it)."""
    out = []
    for s in spans:
        a, b = origin[s.start], origin[s.end - 1] + 1
        out.append(Span(a, b, s.type, text[a:b]))
    return _resolve(out)  # two spans in one expanded character ("ﬁ" -> "fi") would overlap


# --------------------------------------------------------------------------------------
# Normalized values: the same identifier written two ways gets the same placeholder.


def normalize(kind: str, value: str) -> str:
    """The form of `value` under which equal identifiers are recognised as the same."""
    if not value.isascii():
        value = unicodedata.normalize("NFKC", value)  # "ｇｒａｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ" is grace@example.com
    if kind == "PHONE":
        d = _digits(value.replace("(0)", "", 1) if value.startswith("+") else value)
        return d[1:] if len(d) == 11 and d[0] == "1" else d
    if kind in ("CARD", "SSN"):
        return _digits(value)
    if kind in ("EMAIL", "URL"):
        return value.lower()
    if kind == "IBAN":
        return "".join(value.split()).replace("-", "").upper()
    if kind == "ORDER":
        return value.strip().lstrip("#").strip().upper()
    if kind == "IP":
        try:
            return str(ipaddress.ip_address(value.split("%")[0]))
        except ValueError:
            return value.lower()
    return " ".join(value.casefold().replace(".", " ").split())


class Registry:
    """Placeholders given out in one conversation (or one stream): value -> `<TYPE_n>`."""

    def __init__(self, hashed: bool = False, salt: str = "") -> None:
        self.hashed = hashed
        self.salt = salt
        self.assigned: dict[tuple[str, str], str] = {}
        self.numbers: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.assigned)

    def reserve(self, text: str) -> None:
        """Number new placeholders above every `<TYPE_n>` already in `text`: a text that says
        "my old email <EMAIL_1> is dead, use bob@example.com" must not get <EMAIL_1> for bob."""
        if "<" not in text:
            return
        for m in _NUMBERED.finditer(text):
            kind, n = m.group(1), int(m.group(2))
            if n > self.numbers.get(kind, 0):
                self.numbers[kind] = n

    def placeholder(self, kind: str, value: str) -> str:
        """The placeholder for `value` of type `kind`, the same one every time it is asked."""
        key = (kind, normalize(kind, value))
        found = self.assigned.get(key)
        if found is not None:
            return found
        if self.hashed:
            digest = hashlib.sha256(f"{self.salt}\x00{kind}\x00{key[1]}".encode()).hexdigest()[:8]
            found = f"<{kind}_{digest}>"
        else:
            n = self.numbers.get(kind, 0) + 1
            self.numbers[kind] = n
            found = f"<{kind}_{n}>"
        self.assigned[key] = found
        return found


# --------------------------------------------------------------------------------------
# The anonymizer

_JOIN = "\n\x00\n"  # between a conversation's texts: no recognizer matches across it
_PLACEHOLDER = re.compile(r"<([A-Z]+)_[0-9a-f]+>")
_NUMBERED = re.compile(r"<([A-Z]+)_([0-9]{1,18})>")
_SETTLE_RADIUS = 96  # characters around a placeholder looked at again (see `_settle`)
_SETTLE_MARGIN = 40  # ... of which the outer ones only give context

def _literal_prefix(pattern: str) -> str:
    """The plain characters a pattern starts with ("LG-" for r"LG-\\d{6}"), for a quick `in` test."""
    m = re.match(r"[A-Za-z0-9\-_/ ]+", pattern)
    prefix = m.group() if m else ""
    rest = pattern[len(prefix) :]
    if rest[:1] in ("?", "*", "{") and prefix:  # the last character is optional
        prefix = prefix[:-1]
    if rest[:1] == "|" or "|" in pattern:
        return ""
    return prefix


class _Chars:
    """Turns byte offsets into `text.encode()` into str offsets (fastest when asked in increasing order)."""

    def __init__(self, text: str, raw: bytes) -> None:
        self.ascii = len(raw) == len(text)
        self.raw = raw
        self.byte = 0
        self.char = 0

    def __call__(self, offset: int) -> int:
        if self.ascii:
            return offset
        if offset < self.byte:
            self.byte = self.char = 0
        self.char += len(self.raw[self.byte : offset].decode("utf-8", "surrogatepass"))
        self.byte = offset
        return self.char


class Anonymizer:
    """Finds and replaces PII; built once from a PIIConfig, then called per row (a cleaning step)."""

    def __init__(self, cfg: PIIConfig | None = None) -> None:
        cfg = cfg or PIIConfig()
        cfg.validate()
        self.cfg = cfg
        self.types = frozenset(cfg.types)
        self._not_names = frozenset(w.lower() for w in cfg.not_names)
        self._allow = frozenset(
            normalize(kind, value) for value in cfg.allow for kind in ("PHONE", "EMAIL", "CARD", "ORDER", "NAME")
        )
        # Order patterns: a case-sensitive regex (fast when it starts with plain text) and a
        # case-insensitive one, used only when the text has the prefix in another case.
        self._orders: list[tuple[str, tuple[str, ...], re.Pattern[str], re.Pattern[str]]] = []
        for p in cfg.order_patterns:
            prefix = _literal_prefix(p)
            variants = tuple({prefix.upper(), prefix.lower(), prefix.title()} - {prefix})
            exact = re.compile(rf"(?:{p})(?!\w)")
            self._orders.append((prefix, variants, exact, re.compile(exact.pattern, re.IGNORECASE)))
        self._number_types = {"IBAN", "CARD", "SSN", "IP", "PHONE", "ADDRESS"} & self.types
        self._want = {t: t in self.types for t in TYPES}

    # ---------------------------------------------------------------- detection

    def detect(self, text: str) -> list[Span]:
        """Every identifier in `text`: non-overlapping spans, sorted by position.

        A value found once is also found wherever else it occurs as a whole word: a name
        after "Hi" is a name in "thanks Grace" too, and no copy of a detected phone number
        survives because its second copy sits in a context that hides it. These spans are
        exactly what `anonymize_texts` replaces (see `_settle`). A text with compatibility
        forms (full-width "４１１１ １１１１ ...") is looked at in its folded view (`_fold`).
        """
        return self._detect(text, None)

    def _detect(self, text: str, known: dict[str, str] | None) -> list[Span]:
        """`detect`, also finding every whole-word occurrence of the `known` values (value -> type)."""
        folded, origin = _fold(text)
        spans = self._detect_folded(folded, known)
        return _unfold(text, spans, origin) if origin is not None and spans else spans

    def _detect_folded(self, text: str, known: dict[str, str] | None) -> list[Span]:
        found = self._find_all(text)
        if not found and not known:
            return []
        values = {**known, **{s.value: s.type for s in found}} if known else {s.value: s.type for s in found}
        found += _occurrences(text, values, found)
        if not found:
            return []
        spans = _resolve(found)
        return self._settle(text, spans) if _may_unsettle(text, spans) else spans

    def _find_all(self, text: str) -> list[Span]:
        """Every candidate span (may overlap; values found once are not yet looked for again)."""
        found: list[Span] = []
        if not text:
            return found
        want = self._want
        raw = text.encode("utf-8", "surrogatepass")
        # Each finder runs only if a cheap test says it could find something.
        if self._number_types:
            self._find_numbers(text, raw, found)
        if want["EMAIL"] and "@" in text:
            self._find_emails(text, found)
        if want["URL"] and "=" in text and ("://" in text or "www." in text or "WWW." in text):
            self._find_urls(text, found)
        if want["ORDER"]:
            self._find_orders(text, found)
        if want["IP"] and ":" in text:
            self._find_ipv6(text, found)
        if want["NAME"]:
            self._find_names(text, raw, found)
        if found and self._allow:
            found = [s for s in found if normalize(s.type, s.value) not in self._allow]
        return found

    def _find_numbers(self, text: str, raw: bytes, out: list[Span]) -> None:
        shape = raw.translate(_DIGIT_TABLE)
        chars = _Chars(text, raw)
        extra: list[re.Match[bytes]] = []  # phones led by "+" or "(" (never overlapping the digit-led ones)
        if b"+" in shape:
            extra += _PLUS_SHAPE.finditer(shape)
        if b"(" in shape:
            extra += _PAREN_SHAPE.finditer(shape)
        for hit in extra:
            span, _, _ = self._number_at(text, hit, chars)
            if span is not None:
                out.append(span)
        pos = 0
        chars = _Chars(text, raw)  # offsets are asked for in increasing order again
        while (m := _DIGITS_SHAPE.search(shape, pos)) is not None:
            span, at, end = self._number_at(text, m, chars)
            pos = m.end()
            if span is not None:
                out.append(span)
                if span.end < end:  # cut short (an IBAN or phone ran on): look again right after it
                    pos = m.start() + len(text[at : span.end].encode("utf-8", "surrogatepass"))

    def _number_at(self, text: str, m: re.Match[bytes], chars: _Chars) -> tuple[Span | None, int, int]:
        """The identifier a shape match stands for, checked on the real text (or another type at its
        place), and where the match starts and ends in the text."""
        group = m.lastgroup or ""
        kind = _GROUP_TYPE.get(group, group)
        types = self._number_types
        at, end = chars(m.start()), chars(m.end())
        start = at - 2 if kind == "IBAN" else at
        # The shape has every digit as "0": a trunk-0 phone must really start with 0.
        fits = kind in types and not (group == "PHONE_TRUNK" and text[start] != "0")
        if group == "SSN_BARE":  # only right after "SSN", "social security number"
            fits = fits and bool(_SSN_KEYWORD.search(text[max(0, start - 40) : start]))
        span = self._check_number(kind, text, start, end) if fits else None
        if span is None:  # retry this position with the other digit-led types
            for other in _SINGLE:
                if other == kind or other not in types:
                    continue
                single = _SINGLE[other].match(text, at)
                if single is not None:
                    s = single.start() - 2 if other == "IBAN" else single.start()
                    span = self._check_number(other, text, s, single.end())
                    if span is not None:
                        break
        return span, at, end

    def _check_number(self, kind: str, text: str, start: int, end: int) -> Span | None:
        value = text[start:end]
        if kind == "PHONE":
            ok = phone_ok(value) and not _number_labelled(text, start)
            # "+44 7700 900123 2 items", "07547 667258 23 left": the match took a group too
            # many. An international number may give back several groups, others one space-separated group.
            intl = value.startswith("+")
            for _ in range(4 if intl else 1):
                if ok:
                    break
                cut = max(value.rfind(" "), value.rfind("-"), value.rfind(".")) if intl else value.rfind(" ")
                if cut <= 3:
                    break
                value = value[:cut].rstrip(" .-")
                end = start + len(value)
                ok = phone_ok(value)
        elif kind == "CARD":
            ok = card_ok(_digits(value)) and not _number_labelled(text, start)
        elif kind == "SSN":
            ok = ssn_ok(_digits(value))
        elif kind == "IP":
            ok = _ipv4_ok(text, start, value)
        elif kind == "IBAN":
            value = _iban_value(value)
            end = start + len(value)
            ok = bool(value)
        else:  # ADDRESS
            value = value.rstrip(" \t")
            end = start + len(value)
            # "12 Street" with no name word is too vague; "350 Broadway" is not.
            ok = len(value.split(",")[0].split()) >= 3 or value.split()[1].startswith("Broadway")
            if ok and not _ADDRESS_HAS_CITY.search(value):
                rest = _ADDRESS_NEXT_LINES.match(text, end)  # "2217 Lakeview Drive\nAustin, TX 78704"
                if rest is not None:
                    end = rest.end()
                    value = text[start:end]
        return Span(start, end, kind, value) if ok else None

    def _find_emails(self, text: str, out: list[Span]) -> None:
        # Search only near each "@" (a local part has at most 64 characters).
        pos = 0
        while (at := text.find("@", pos)) != -1:
            m = _EMAIL.search(text, max(pos, at - 64))
            if m is None:
                return
            local = m.group().split("@", 1)[0].lower()
            if not (self.cfg.keep_role_emails and local in _ROLE_MAILBOXES):
                out.append(Span(m.start(), m.end(), "EMAIL", m.group()))
            pos = m.end()

    def _find_urls(self, text: str, out: list[Span]) -> None:
        # Only where "://" or "www." occurs: back up over the scheme, then match there.
        starts = set()
        for needle in ("://", "www.", "WWW.", "Www."):
            at = text.find(needle)
            while at != -1:
                start = at
                if needle == "://":
                    while start > 0 and at - start < 5 and text[start - 1].isalpha():
                        start -= 1
                starts.add(start)
                at = text.find(needle, at + 1)
        end = 0
        for start in sorted(starts):
            if start < end or (start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_")):
                continue
            m = _URL.match(text, start)
            if m is None:
                continue
            url = m.group().rstrip(_URL_TRAILING)
            end = m.start() + len(url)
            if _personal_url(url):
                out.append(Span(m.start(), end, "URL", url))

    def _find_orders(self, text: str, out: list[Span]) -> None:
        for prefix, variants, exact, anycase in self._orders:
            rx = anycase
            if prefix:
                other_case = False
                for v in variants:
                    if v in text:
                        other_case = True
                        break
                if not other_case:
                    if prefix not in text:
                        continue
                    rx = exact
            for m in rx.finditer(text):
                start = m.start()
                if start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
                    continue
                if start > 0 and text[start - 1] == "#" and not (start > 1 and text[start - 2].isalnum()):
                    start -= 1
                out.append(Span(start, m.end(), "ORDER", text[start : m.end()]))

    def _find_ipv6(self, text: str, out: list[Span]) -> None:
        # Only around ":h:" or "::" (every IPv6 address has one); an address is at most 45 characters.
        end = 0
        for hint in _IPV6_HINT.finditer(text):
            if hint.start() < end:
                continue
            m = _IPV6.search(text, max(end, hint.start() - 40), hint.start() + 50)
            if m is None or m.end() >= hint.start() + 50 or m.start() > hint.start():
                continue
            end = m.end()
            value = m.group()
            if sum(c.isalnum() for c in value) < 2:
                continue
            try:
                ipaddress.IPv6Address(value.split("%")[0])
            except ValueError:
                continue
            out.append(Span(m.start(), m.end(), "IP", value))

    def _find_names(self, text: str, raw: bytes, out: list[Span]) -> None:
        shape = b"\n\n" + raw.translate(_UPPER_TABLE)
        ascii_text = len(raw) == len(text)
        if ascii_text:
            starts = [m.start() - 2 for m in _NAME_START_SHAPE.finditer(shape)]
        else:
            chars = _Chars(text, raw)
            starts = [chars(m.start() - 2) for m in _NAME_START_SHAPE.finditer(shape)]
        if not ascii_text:  # each non-ASCII text of a conversation once more, over the text itself
            found = set(starts)
            at = 0
            for part in text.split(_JOIN):
                if not part.isascii():
                    found.update(at + m.start() - 2 for m in _NAME_START_TEXT.finditer("\n\n" + part))
                at += len(part) + len(_JOIN)
            starts = sorted(found)
        for start in starts:
            kind = _trigger_before(text, start)
            if kind is None:
                continue
            title = _TITLE.match(text, start)  # "Dear Mr. Smith": the name is "Smith"
            lead = 0  # after a title, a surname may start with particles: "Mr. van Dijk"
            if title is not None:
                start = title.end()
                particles = _LEADING_PARTICLES.match(text, start)
                lead = 0 if particles is None else particles.end() - start
            words = _NAME_AT.match(text, start + lead)
            if words is None:
                continue
            length = _name_length(words.group(), kind == "strong", self._not_names)
            if not length:
                continue
            length += lead
            if kind == "dash" and not _DASH_END.match(text, start + length):
                continue
            if _followed_by_non_person(text, start + length):
                continue
            out.append(Span(start, start + length, "NAME", text[start : start + length]))
        self._find_names_here(text, out)
        for label in ("name", "Name", "NAME"):  # str.find runs at memory speed; a (?i) regex does not
            if label in text:
                self._find_names_lower(text, label, out)

    def _find_names_lower(self, text: str, label: str, out: list[Span]) -> None:
        """"my name is grace silva", "name: grace", "MY NAME IS JOHN SMITH": names after the explicit
        introductions that are not capitalised (those are found by `_find_names`), at each `label`."""
        at = text.find(label)
        while at != -1:
            m = _INTRO.match(text, at)
            at = text.find(label, at + 4)
            if m is None or (m.start() > 0 and (text[m.start() - 1].isalnum() or text[m.start() - 1] == "_")):
                continue
            if m.group("is") is not None and not _INTRO_MY.search(text, max(0, m.start() - 12), m.start()):
                continue
            start = m.end()
            words = _INTRO_WORDS.match(text, start)
            if words is None:
                continue
            first, second = words.group(1), words.group(2)
            if first[:1].isupper() and not first.isupper():
                continue  # "my name is Grace": a capitalised name, found by the other rules
            if m.group("is") is None and not _name_label_ok(text, m.start()):
                continue
            if not self._lower_name_word(first):
                continue
            end = words.end(1)
            if second is not None and self._lower_name_word(second):
                end = words.end(2)
            if end < len(text) and (text[end].isalnum() or (text[end] in "_@'’-" and text[end + 1 : end + 2].isalnum())):
                continue  # part of a longer token: "grace.silva@...", "grace_92"
            after = _INTRO_AFTER.match(text, end)
            if after is not None and after.group(1).lower() not in _STOP_WORDS:
                continue  # "my name is spelled incorrectly on ...": no name, or more than we can tell
            out.append(Span(start, end, "NAME", text[start:end]))

    def _lower_name_word(self, word: str) -> bool:
        low = word.lower()
        return (
            len(word) >= 2
            and (word.islower() or word.isupper())
            and low not in _STOP_WORDS
            and low not in _NOT_LOWER_NAMES
            and low not in _NOT_FIRST_NAMES
            and low not in self._not_names
        )

    def _find_names_here(self, text: str, out: list[Span]) -> None:
        """"Grace Silva here." / "... Camille here!": the one to three name words right before "here"."""
        for m in _HERE.finditer(text):
            end = m.start()
            while end > 0 and text[end - 1] in " \t":
                end -= 1
            words = [w.start() for w in _NAME_TOKEN.finditer(text, max(0, end - 80), end)][-3:]
            for at in words:  # the longest run of words that is a name wins
                candidate = text[at:end]
                if _name_length(candidate, False, self._not_names) == len(candidate):
                    # "Sam here again": only at the start of a sentence ("Prices here with ..." is none)
                    if m.group("more") is not None and text[max(0, at - 40) : at].rstrip(" \t")[-1:] not in (
                        "", ".", "!", "?", ",", ":", ";", "\n", "\x00", "-", "—", "–"
                    ):
                        break
                    out.append(Span(at, end, "NAME", candidate))
                    break

    # ---------------------------------------------------------------- replacement

    def anonymize_texts(self, texts: list[str]) -> tuple[list[str], dict[str, int]]:
        """Anonymize one conversation's texts with one placeholder registry; (texts, counts by type)."""
        registry = Registry(hashed=self.cfg.mode == "hash", salt=self.cfg.salt)
        return self.anonymize_with(texts, registry)

    def anonymize_with(self, texts: list[str], registry: Registry) -> tuple[list[str], dict[str, int]]:
        """Like `anonymize_texts`, with a registry the caller keeps (e.g. across a stream)."""
        if not self.cfg.enabled or not texts:
            return list(texts), {}
        joined = _JOIN.join(texts)
        if joined.count("\x00") != len(texts) - 1:  # a text holds a NUL: cannot join safely
            return self._one_by_one(texts, registry)
        spans = self.detect(joined)
        if not spans:
            return list(texts), {}
        registry.reserve(joined)
        out, counts = self._replace(joined, spans, registry)
        return out.split(_JOIN), counts

    def anonymize_many(self, conversations: Sequence[list[str]]) -> list[tuple[list[str], dict[str, int]]]:
        """`anonymize_texts` for many conversations at once (one registry each), scanned in one pass.

        The same result as calling `anonymize_texts` on each; faster, because every
        recognizer runs once over all the texts instead of once per conversation.
        """
        joined = [_JOIN.join(conv) for conv in conversations]
        if not self.cfg.enabled or any(
            j.count("\x00") != max(0, len(c) - 1) for j, c in zip(joined, conversations, strict=True)
        ):
            return [self.anonymize_texts(conv) for conv in conversations]
        folds = [_fold(j) for j in joined]  # each conversation is looked at in its folded view
        # Each conversation's spans are found in one scan over all of them (nothing matches
        # across _JOIN), in two groups: the ASCII conversations, and the others, whose byte
        # offsets must be turned into str offsets. One non-ASCII conversation among a
        # thousand would otherwise make every offset need that.
        found: list[list[Span]] = [[] for _ in folds]
        ascii_ones = [k for k, (f, _) in enumerate(folds) if f.isascii()]
        if len(ascii_ones) == len(folds):
            groups = [ascii_ones]
        else:
            is_ascii = set(ascii_ones)
            groups = [ascii_ones, [k for k in range(len(folds)) if k not in is_ascii]]
        for group in groups:
            spans = _resolve(self._find_all(_JOIN.join([folds[k][0] for k in group])))
            i, offset = 0, 0
            for k in group:
                end = offset + len(folds[k][0])
                while i < len(spans) and spans[i].start < end:
                    s = spans[i]
                    found[k].append(Span(s.start - offset, s.end - offset, s.type, s.value))
                    i += 1
                offset = end + len(_JOIN)
        out: list[tuple[list[str], dict[str, int]]] = []
        for conv, original, (text, origin), mine in zip(conversations, joined, folds, found, strict=True):
            if not mine:
                out.append((list(conv), {}))
                continue
            mine = _resolve(mine + _occurrences(text, {s.value: s.type for s in mine}, mine))
            if _may_unsettle(text, mine):
                mine = self._settle(text, mine)
            if origin is not None:
                mine = _unfold(original, mine, origin)
            registry = Registry(hashed=self.cfg.mode == "hash", salt=self.cfg.salt)
            registry.reserve(original)
            new, counts = self._replace(original, mine, registry)
            out.append((new.split(_JOIN) if len(conv) > 1 else [new], counts))
        return out

    def anonymize_after(
        self, before: str, text: str, registry: Registry, known: dict[str, str] | None = None
    ) -> tuple[str, dict[str, int], list[str]]:
        """Anonymize `text` read right after `before` (which only gives context and is not
        changed), also replacing the `known` values (value -> type); returns the new text, counts
        by type, and the names found in `text`."""
        if not self.cfg.enabled:
            return text, {}, []
        at = len(before)
        spans = []
        for s in self._detect(before + text, known):
            if s.end <= at:
                continue
            if s.start < at:  # an address that began on the line before: its part on this line
                start = at + len(text) - len(text.lstrip())
                if start >= s.end:
                    continue
                s = Span(start, s.end, s.type, text[start - at : s.end - at])
            spans.append(Span(s.start - at, s.end - at, s.type, s.value))
        if not spans:
            return text, {}, []
        registry.reserve(text)
        new, counts = self._replace(text, spans, registry)
        return new, counts, [s.value for s in spans if s.type == "NAME"]

    def _one_by_one(self, texts: list[str], registry: Registry) -> tuple[list[str], dict[str, int]]:
        """`anonymize_with` for texts that cannot be joined (they hold NUL characters)."""
        folds = [_fold(t) for t in texts]  # all in the folded views, as in `detect`
        found = [self._detect_folded(f, None) for f, _ in folds]
        values = {s.value: s.type for spans in found for s in spans}
        for t in texts:
            registry.reserve(t)
        out: list[str] = []
        counts: dict[str, int] = {}
        for t, (f, origin), spans in zip(texts, folds, found, strict=True):  # a value found in one text is replaced in all
            spans = _resolve(spans + _occurrences(f, values, spans))
            if _may_unsettle(f, spans):
                spans = self._settle(f, spans)
            new, c = self._replace(t, _unfold(t, spans, origin) if origin is not None and spans else spans, registry)
            out.append(new)
            for k, v in c.items():
                counts[k] = counts.get(k, 0) + v
        return out, counts

    def _replace(self, text: str, spans: list[Span], registry: Registry) -> tuple[str, dict[str, int]]:
        """`text` with `spans` replaced by placeholders; and counts by type."""
        counts: dict[str, int] = {}
        return self._apply(text, spans, registry, counts), counts

    def _settle(self, text: str, spans: list[Span]) -> list[Span]:
        """`spans` plus whatever their placeholders' new neighbourhoods reveal, until nothing does.

        Recognizers look at the characters around a match ("4111 1111 ..." right after
        another number is no card; "- Zoë Müller" ends a message only if nothing follows);
        a placeholder changes them. What a second run would find next to a placeholder is
        found now, so anonymizing twice changes nothing. Only windows around placeholders
        are looked at again, in the text as it will be after replacement.
        """
        for _ in range(4):
            # The text as it will read, and where each placeholder lands in it.
            pieces: list[str] = []
            shifts: list[tuple[int, int]] = []  # (end of a placeholder in `after`, shift after it)
            at = shift = 0
            for s in spans:
                pieces.append(text[at : s.start])
                holder = f"<{s.type}_1>"
                pieces.append(holder)
                shift += len(holder) - (s.end - s.start)
                shifts.append((s.start + shift + (s.end - s.start), shift))
                at = s.end
            pieces.append(text[at:])
            extra = self._near_placeholders("".join(pieces))
            if not extra:
                return spans
            ends = [end for end, _ in shifts]
            for e in extra:  # back to offsets in `text`: minus the shift of the placeholders before it
                k = bisect_right(ends, e.start)
                d = shifts[k - 1][1] if k else 0
                spans.append(Span(e.start - d, e.end - d, e.type, e.value))
            spans = _resolve(spans + _occurrences(text, {e.value: e.type for e in extra}, spans))
        return spans

    def _near_placeholders(self, text: str) -> list[Span]:
        """New spans within a few dozen characters of any placeholder in `text`."""
        holders = [(m.start(), m.end()) for m in _PLACEHOLDER.finditer(text)]
        windows: list[list[int]] = []
        for a, b in holders:
            lo, hi = max(0, a - _SETTLE_RADIUS), min(len(text), b + _SETTLE_RADIUS)
            if windows and lo <= windows[-1][1]:
                windows[-1][1] = hi
            else:
                windows.append([lo, hi])
        found: list[Span] = []
        holder_ends = [h1 for _, h1 in holders]  # placeholders are disjoint and in order
        for lo, hi in windows:
            # Spans near a window's cut edge may be artefacts of the cut: only the middle counts.
            first = lo + _SETTLE_MARGIN if lo > 0 else 0
            last = hi - _SETTLE_MARGIN if hi < len(text) else hi
            for s in self._find_all(text[lo:hi]):
                a, b = s.start + lo, s.end + lo
                k = bisect_right(holder_ends, a)  # the first placeholder ending after `a`
                if first <= a and b <= last and not (k < len(holders) and holders[k][0] < b):
                    found.append(Span(a, b, s.type, s.value))
        return _resolve(found)

    @staticmethod
    def _apply(text: str, spans: list[Span], registry: Registry, counts: dict[str, int]) -> str:
        if not spans:
            return text
        pieces: list[str] = []
        at = 0
        for s in spans:
            pieces.append(text[at : s.start])
            pieces.append(registry.placeholder(s.type, s.value))
            counts[s.type] = counts.get(s.type, 0) + 1
            at = s.end
        pieces.append(text[at:])
        return "".join(pieces)

    # ---------------------------------------------------------------- the cleaning step

    def __call__(self, row: Row, kind: str) -> Outcome:
        """Anonymize every text of `row` (all roles), the strings in its `meta` and its `id`, with one
        registry; drop the row in drop-conversation mode."""
        if not self.cfg.enabled:
            return Outcome(row)
        parts, n_texts, n_meta = _row_parts(row, kind)
        new, counts = self.anonymize_texts(parts)
        return self._outcome(row, kind, parts, n_texts, n_meta, new, counts)

    def batch(self, rows: Sequence[Row], kind: str) -> list[Outcome]:
        """`self(row, kind)` for many rows, scanned in one pass (see `anonymize_many`)."""
        if not self.cfg.enabled:
            return [Outcome(row) for row in rows]
        parts = [_row_parts(row, kind) for row in rows]
        results = self.anonymize_many([p for p, _, _ in parts])
        return [
            self._outcome(row, kind, p, n_texts, n_meta, new, counts)
            for row, (p, n_texts, n_meta), (new, counts) in zip(rows, parts, results, strict=True)
        ]

    def _outcome(
        self, row: Row, kind: str, parts: list[str], n_texts: int, n_meta: int, new: list[str], counts: dict[str, int]
    ) -> Outcome:
        """The step's outcome for `row` given its anonymized parts (see `_row_parts`).

        Meta strings take their placeholders (counted by type, and in all under "META"); an
        id with anything found in it becomes a pseudonym (counted under "ID", not by type: no
        placeholder is written), so the id column of a CSV cannot carry a customer's email.
        """
        if not counts:
            return Outcome(row)
        counts = dict(counts)
        meta_at, id_at = n_texts, n_texts + n_meta
        new_id: str | None = None
        if id_at < len(parts) and new[id_at] != parts[id_at]:
            added = _placeholder_types(new[id_at])
            for t, n in _placeholder_types(parts[id_at]).items():
                added[t] = added.get(t, 0) - n
            for t, n in added.items():
                if n > 0:
                    counts[t] -= n
                    if counts[t] <= 0:
                        del counts[t]
            counts["ID"] = 1
            new_id = self.pseudonym(parts[id_at])
        meta_changed = new[meta_at:id_at] != parts[meta_at:id_at]
        if meta_changed:
            counts["META"] = sum(len(_PLACEHOLDER.findall(t)) for t in new[meta_at:id_at]) - sum(
                len(_PLACEHOLDER.findall(t)) for t in parts[meta_at:id_at]
            )
        if self.cfg.mode == "drop-conversation":
            return Outcome.drop("pii", **counts)
        out = with_texts(row, kind, new[:n_texts])
        if meta_changed:
            out["meta"] = _with_strings(row["meta"], iter(new[meta_at:id_at]))
        if new_id is not None:
            out["id"] = new_id
        return Outcome(out, changed=True, counts=counts)

    def pseudonym(self, row_id: str) -> str:
        """The stable stand-in for a row id that holds personal data: "anon-" + 16 hex digits of
        SHA-256(salt, id); the same id gives the same pseudonym in every run with the same salt."""
        return "anon-" + hashlib.sha256(f"{self.cfg.salt}\x00{row_id}".encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _row_parts(row: Row, kind: str) -> tuple[list[str], int, int]:
    """What the step anonymizes in `row`, as one conversation: its texts, then every string in
    its `meta` (depth first), then its id; and how many texts and meta strings there are."""
    texts = row_texts(row, kind)
    meta = list(_strings(row.get("meta")))
    rid = row.get("id")
    return texts + meta + ([rid] if isinstance(rid, str) and rid else []), len(texts), len(meta)


# A meta field named like a person's name ("customer_name", "fullName") is read as "Name: <value>",
# so a bare "Grace Silva" there is found; fields naming things (file_name, product_name) are not.
_META_NAME_LABEL = "Name: "
_META_NAME_KEYS = _words("name fullname firstname lastname givenname surname familyname username displayname")
_META_THING_KEYS = _words(
    "file filename product item company business brand store shop model host hostname domain team project "
    "dataset source intent tag tags category queue channel app device network column field sheet table"
)


def _person_name_key(key: object) -> bool:
    return isinstance(key, str) and _person_name_field(key)


@functools.lru_cache(maxsize=4096)  # rows repeat the same few field names
def _person_name_field(key: str) -> bool:
    parts = re.sub(r"([a-z])([A-Z])", r"\1_\2", key).lower().split("_")
    parts = [p for piece in parts for p in re.split(r"[\s.\-]+", piece) if p]
    joined = "".join(parts)
    return (joined in _META_NAME_KEYS or parts[-1:] == ["name"]) and not any(p in _META_THING_KEYS for p in parts)


def _strings(obj: object, person: bool = False) -> Iterator[str]:
    """Every string value in a JSON-like object, depth first (dict keys are field names: left alone;
    the value of a person-name field comes with a "Name: " label, see `_person_name_key`)."""
    if isinstance(obj, str):
        yield _META_NAME_LABEL + obj if person else obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _strings(v, _person_name_key(k))
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _strings(v, person)


def _with_strings(obj: Any, new: Iterator[str], person: bool = False) -> Any:
    """`obj` with its string values (in `_strings` order) taken from `new`; numbers, bools, None kept."""
    if isinstance(obj, str):
        value = next(new)
        return value[len(_META_NAME_LABEL) :] if person else value
    if isinstance(obj, dict):
        return {k: _with_strings(v, new, _person_name_key(k)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_with_strings(v, new, person) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_with_strings(v, new, person) for v in obj)
    return obj


def _placeholder_types(text: str) -> dict[str, int]:
    """How many placeholders of each type `text` holds."""
    counts: dict[str, int] = {}
    for m in _PLACEHOLDER.finditer(text):
        counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts


def _may_unsettle(text: str, spans: list[Span]) -> bool:
    """Whether replacing `spans` could change what is found next to them (see `_settle`).

    Recognizers look at most a character or two past a neighbour, except the name rules
    that need "the end of the message" after a name ("- Zoë Müller", "Grace here"). So a
    placeholder matters only if it touches something other than a space or plain
    punctuation ("2001:db8::1grace@...", "0123)grace@..."), follows a number across one
    separator ("312-555-0147 4111 ..."), precedes one ("LG-482913 312 ..."), or follows a
    word that may end a name.
    """
    n = len(text)
    for s in spans:
        a, b = s.start, s.end
        if a > 0 and not (text[a - 1].isspace() or text[a - 1] in "([{\"'\x00"):
            return True
        after = text[b : b + 2]
        if after and not (after[0].isspace() or after[0] in ",;!?)]}\"'\x00" or after in (".", ". ", ".\n")):
            return True
        if a > 1 and text[a - 1] in " \t" and text[a - 2].isdigit():
            return True
        if b + 1 < n and text[b] in " \t" and (text[b + 1].isdigit() or text[b + 1] in "+(") and s.value[-1:].isdigit():
            return True
        before = text[max(0, a - 32) : a].rstrip()
        if before[-1:].isalpha() or before[-1:] in ("-", "–", "—", "~", ".", "!"):  # a word that may end a name?
            last = before.split()[-1].strip(".,!?;:-–—~'’\"()")
            if (last[:1].isupper() and last.lower() not in _STOP_WORDS) or last.lower() == "here" or last in _PARTICLES:
                return True
        if text.find(" here", b, b + 48) != -1:  # "<EMAIL_1> Grace here.": a new sentence start?
            return True
        if "name" in before.lower():  # "my name is grace <EMAIL_1>": the word after the name changed
            return True
    return False


def _occurrences(text: str, values: dict[str, str], known: Iterable[Span] = ()) -> list[Span]:
    """Every whole-word occurrence in `text` of the keys of `values` (value -> type), as spans,
    except those that start where a `known` span starts."""
    starts = {s.start for s in known}
    out = []
    for value, kind in values.items():
        # A value that starts (ends) with a word character must not continue a word there.
        check_start, check_end = value[:1].isalnum(), value[-1:].isalnum()
        at = text.find(value)
        while at != -1:
            end = at + len(value)
            if (
                at not in starts
                and (not check_start or at == 0 or not (text[at - 1].isalnum() or text[at - 1] in "_<"))
                and (not check_end or end == len(text) or not (text[end].isalnum() or text[end] in "_>"))
            ):
                out.append(Span(at, end, kind, value))
            at = text.find(value, at + 1)
    return out


def _resolve(spans: list[Span]) -> list[Span]:
    """Keep non-overlapping spans: within each group of overlapping ones, higher-priority types
    first, then longer, then earlier. O(n log n): one sort, one sweep into groups, and in a
    large group a tree of covered positions instead of comparing each span with every kept one."""
    if len(spans) < 2:
        return spans
    spans.sort()
    for i in range(1, len(spans)):
        if spans[i].start < spans[i - 1].end:
            break
    else:
        return spans  # nothing overlaps (the usual case)
    out: list[Span] = []
    group: list[Span] = []
    group_end = -1
    for s in [*spans, Span(sys.maxsize, sys.maxsize, "NAME", "")]:
        if s.start >= group_end and group:  # the group is complete
            if len(group) == 1:
                out.append(group[0])
            else:
                out.extend(sorted(_pick(group)))
            group = []
        group.append(s)
        group_end = max(group_end, s.end) if len(group) > 1 else s.end
    return out


def _pick(group: list[Span]) -> list[Span]:
    """The spans of one overlapping group kept by `_resolve`, greedily in order of preference."""
    group.sort(key=lambda g: (_PRIORITY[g.type], g.start - g.end, g.start))
    if len(group) <= 16:  # small (the usual case): compare with each kept span
        taken: list[Span] = []
        for g in group:
            if all(g.end <= t.start or g.start >= t.end for t in taken):
                taken.append(g)
        return taken
    # Large ("Hi Grace Grace Grace ..." repeated): the group's boundaries cut the text into
    # slots; a Fenwick tree counts the slots kept spans cover. A span is kept if it covers no
    # covered slot; kept spans are disjoint, so each slot is marked at most once overall.
    cuts = sorted({g.start for g in group} | {g.end for g in group})
    slot = {c: i for i, c in enumerate(cuts)}
    n = len(cuts)
    tree = [0] * (n + 1)

    def covered_before(i: int) -> int:  # covered slots among 0 .. i-1
        total = 0
        while i > 0:
            total += tree[i]
            i -= i & -i
        return total

    taken = []
    for g in group:
        a, b = slot[g.start], slot[g.end]
        if covered_before(b) - covered_before(a):
            continue
        taken.append(g)
        for i in range(a + 1, b + 1):  # mark slots a .. b-1
            while i <= n:
                tree[i] += 1
                i += i & -i
    return taken


def _iban_value(raw: str) -> str:
    """The IBAN at the start of `raw` (cut to its country's length), or "" if the checksum fails."""
    want = _IBAN_LENGTHS.get(raw[:2])
    end = len(raw)
    if want is not None:
        count = 0
        for i, c in enumerate(raw):
            count += c.isalnum()
            if count == want:
                end = i + 1
                break
    value = raw[:end].rstrip(" -")
    return value if iban_ok(value.replace(" ", "").replace("-", "")) else ""


def _ipv4_ok(text: str, start: int, value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    before = text[max(0, start - 40) : start]
    if _VERSION_BEFORE.search(before):
        return False
    # 2.4.1.3 reads as a version number unless the text talks about IP addresses.
    return not (all(len(p) == 1 for p in value.split(".")) and not _IP_CONTEXT.search(before))


def _personal_url(url: str) -> bool:
    """Whether a URL's query string or fragment names a personal parameter (email=, token=, ...)."""
    try:
        parts = urlsplit(url if "://" in url else "http://" + url)
    except ValueError:
        return False
    for piece in (parts.query, parts.fragment):
        if "=" not in piece:
            continue
        for key, _ in parse_qsl(piece, keep_blank_values=True):
            k = key.lower().strip("[]")
            if k in _PERSONAL_KEYS:
                return True
            words = [w for w in re.split(r"[_\-.\[\]]+", k) if w]
            personal = {w for w in words if w in _PERSONAL_KEYS}
            # "product_id", "item-name": the id or name of a thing, not of a person
            if personal and not (personal <= {"id", "name"} and any(w in _META_THING_KEYS for w in words)):
                return True
    return False


# --------------------------------------------------------------------------------------
# `chatforge data anonymize`: a stream of text in, anonymized text out


@dataclass
class AnonymizeConfig:
    """`chatforge data anonymize`: replace personal identifiers in a text stream, line by line."""

    input: str = opt("-", "text file to anonymize; - reads standard input", positional=True, metavar="FILE")
    out: str = opt("-", "where to write the anonymized text (written atomically); - is standard output")
    per_line: bool = opt(
        False,
        "each line is one conversation: placeholders numbered per line, no context from the line before "
        "(instead of across the whole input)",
    )
    registry_limit: int = opt(
        100_000,
        "start numbering placeholders afresh after this many distinct values, so memory stays flat on "
        "endless streams (a value seen before the reset may then get a new number)",
        ge=1,
    )
    pii: PIIConfig = opt(default_factory=PIIConfig, help="what to find and how to replace it")


def _lines(f: IO[bytes], name: str) -> Iterator[tuple[str, bytes]]:
    """(text without its line ending, the line ending) for each line of `f`; split on \\n only."""
    for number, raw in enumerate(f, 1):
        end = b""
        if raw.endswith(b"\n"):
            raw, end = raw[:-1], b"\n"
            if raw.endswith(b"\r"):
                raw, end = raw[:-1], b"\r\n"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(
                f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1}); "
                "convert the file to UTF-8 first (e.g. with iconv)",
                file=name,
                line=number,
            ) from None
        yield text, end


_CONTEXT_CHARS = 200  # of the previous line, kept as context for the next one
_NAME_FIRST_WORD = re.compile(r"[^\W\d_][\w'’\-]*")


def anonymize_lines(
    lines: Iterable[str], anonymizer: Anonymizer, *, per_line: bool = False, registry_limit: int = 100_000
) -> Iterator[tuple[str | None, dict[str, int]]]:
    """Anonymize a stream of lines; yields (new line, or None if dropped, and its counts) per line.

    One registry serves the whole stream (the same email is <EMAIL_1> on every line) until
    it holds `registry_limit` values; then numbering starts afresh, so memory stays flat.
    Unless `per_line`, each line is looked at after the end of the previous non-blank one
    (and up to two blank lines), so "Thanks,\nGrace Silva" and an address whose city and ZIP
    are on the next line are found; only the current line is changed. Names found so far
    (as many as the registry holds) are replaced wherever they occur later in the stream.
    """
    cfg = anonymizer.cfg
    registry = Registry(hashed=cfg.mode == "hash", salt=cfg.salt)
    names: dict[str, list[str]] = {}  # first word -> names found so far that start with it
    n_names = 0
    context = ""  # the end of the last non-blank line
    blanks = 0  # blank lines since
    for line in lines:
        if per_line or len(registry) >= registry_limit or n_names >= registry_limit:
            registry = Registry(hashed=cfg.mode == "hash", salt=cfg.salt)
            names.clear()
            n_names = 0
        if per_line:
            (new,), counts = anonymizer.anonymize_with([line], registry)
        else:
            known = None
            if names:
                known = {n: "NAME" for w in set(_NAME_FIRST_WORD.findall(line)) for n in names.get(w, ())}
            before = context + "\n" * (1 + min(blanks, 2)) if context else ""
            new, counts, found = anonymizer.anonymize_after(before, line, registry, known)
            for value in found:
                first = value.split()[0]
                if value not in names.get(first, ()):
                    names.setdefault(first, []).append(value)
                    n_names += 1
            if line.strip():
                context, blanks = _line_tail(line), 0
            else:
                blanks += 1
        if counts and cfg.mode == "drop-conversation":
            yield None, counts
        else:
            yield new, counts


def _line_tail(line: str) -> str:
    """The last `_CONTEXT_CHARS` or so of `line`, cut at a space (enough for a trigger or a street)."""
    if len(line) <= _CONTEXT_CHARS:
        return line
    tail = line[-_CONTEXT_CHARS:]
    cut = tail.find(" ")
    return tail[cut + 1 :] if cut != -1 else tail


def anonymize_main(cfg: AnonymizeConfig, ui: UI = QUIET) -> dict[str, int]:
    """Run `data anonymize`: stream `cfg.input` to `cfg.out`; returns replacements by type."""
    anonymizer = Anonymizer(cfg.pii)
    name = "<stdin>" if cfg.input == "-" else cfg.input
    total: dict[str, int] = {}
    stats = {"lines": 0, "dropped": 0}
    t0 = time.perf_counter()

    def run(src: IO[bytes], dst: IO[bytes]) -> None:
        ends: list[bytes] = []

        def texts() -> Iterator[str]:
            for text, end in _lines(src, name):
                ends.append(end)
                yield text

        stream = anonymize_lines(texts(), anonymizer, per_line=cfg.per_line, registry_limit=cfg.registry_limit)
        for new, counts in stream:
            end = ends.pop()
            stats["lines"] += 1
            for k, v in counts.items():
                total[k] = total.get(k, 0) + v
            if new is None:
                stats["dropped"] += 1
            else:
                dst.write(new.encode("utf-8") + end)

    if cfg.out != "-" and Path(cfg.out).is_dir():
        raise UserError(f"--out {cfg.out}: is a directory; give the path of the file to write")

    def to_output(src: IO[bytes]) -> None:
        if cfg.out == "-":
            run(src, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            with atomic_open(Path(cfg.out), "wb") as dst:
                run(src, dst)

    if cfg.input == "-":
        to_output(sys.stdin.buffer)
    else:
        path = Path(cfg.input)
        if not path.is_file():
            raise UserError(f"{path}: {'is not a file' if path.exists() else 'no such file'}")
        with open(path, "rb") as src:
            to_output(src)

    counts = {t: total[t] for t in TYPES if t in total}
    if not ui.quiet:
        found = ", ".join(f"{n:,} {t}" for t, n in counts.items()) or "nothing found"
        dropped = f"; {stats['dropped']:,} lines dropped" if cfg.pii.mode == "drop-conversation" else ""
        secs = time.perf_counter() - t0
        ui.err.print(Text(f"anonymized {stats['lines']:,} lines in {secs:.1f}s: {found}{dropped}"))
    return counts
