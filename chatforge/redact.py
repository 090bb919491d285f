"""Credentials never reach a log, a report, a run's config.json or MLflow.

Database URLs carry passwords (`postgresql://user:pw@host/db`) and configs carry API keys;
everything chatforge writes about a run goes through `config()` first, and messages that
name a URL through `url()` or `text()`.
"""

from __future__ import annotations

import re
from typing import Any

HIDDEN = "***"
# Config fields whose value is a secret wherever they appear.
SECRET_FIELDS = frozenset({"api_key", "api_keys", "password", "secret", "token", "access_token"})
# scheme://user:password@  (the password is whatever stands between ':' and the last '@' of the authority)
_USERINFO = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@]*:)(?P<pw>[^\s/@]*)@")


def text(s: str) -> str:
    """`s` with the password of every URL in it replaced by ***."""
    return _USERINFO.sub(lambda m: f"{m['head']}{HIDDEN}@", s) if "://" in s else s


def url(u: str) -> str:
    """One URL with its password hidden."""
    return text(u)


def config(obj: Any) -> Any:
    """A copy of a (nested) config with secret fields hidden and passwords taken out of URLs."""
    if isinstance(obj, dict):
        return {k: (HIDDEN if isinstance(k, str) and k.lower() in SECRET_FIELDS and obj[k] else config(v)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(config(v) for v in obj)
    if isinstance(obj, str):
        return text(obj)
    return obj
