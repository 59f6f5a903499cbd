"""Secrets out of every message: `redact(text)` replaces what looks like a credential with `***`.

It hides the password (or key) part of URLs (`https://user:key@host` -> `https://***@host`), the
value after `Bearer`, provider-style keys (`sk-...`, `hf_...`, ...), long high-entropy tokens,
and the value of every environment variable whose name says it holds one (*KEY*, *TOKEN*,
*SECRET*, *PASSWORD*). The CLI passes everything it prints on stderr through it, and failure
reasons are redacted before they are written.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Mapping

MASK = "***"

_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@'\"<>]+@")
_BARE_USERINFO = re.compile(r"(?<![\w/@:.-])[\w.%~+-]+:[^\s/@'\"<>]+@(?=[\w.-]+)")  # user:key@host, scheme cut off
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]{6,}")
_PREFIXED = re.compile(r"\b(?:sk|pk|rk|hf|ghp|gho|ghs|xox[abprs]|AKIA|AIza)[-_]?[A-Za-z0-9_-]{12,}")
_LONG = re.compile(r"[A-Za-z0-9_+/=-]{32,}")
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
_MIN_SECRET = 8  # shorter env values (flags, numbers) are not worth hiding and would mask common words


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(c / len(text) * math.log2(c / len(text)) for c in counts.values())


def _looks_random(token: str) -> bool:
    """A long token mixing lower case, upper case and digits with high entropy: a key, not a word,
    a path or a hex hash."""
    classes = sum(any(f(ch) for ch in token) for f in (str.islower, str.isupper, str.isdigit))
    return classes == 3 and _entropy(token) > 4.0


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables whose names say they hold a secret, longest first."""
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if _SECRET_NAME.search(k) and len(v) >= _MIN_SECRET and not v.startswith("/")}
    return sorted(values, key=len, reverse=True)


def redact(text: str, environ: Mapping[str, str] | None = None) -> str:
    """`text` with every secret it shows replaced by `***`."""
    if not text:
        return text
    for value in secret_values(environ):
        text = text.replace(value, MASK)
    text = _USERINFO.sub(lambda m: m["scheme"] + MASK + "@", text)
    text = _BARE_USERINFO.sub(MASK + "@", text)
    text = _BEARER.sub(lambda m: m[1] + m[2] + MASK, text)
    text = _PREFIXED.sub(MASK, text)
    return _LONG.sub(lambda m: MASK if _looks_random(m[0]) else m[0], text)


def redact_value(value):
    """`redact` applied to every string inside a JSON-ready value."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    return value


def looks_like_secret(text: str) -> bool:
    """True if `redact` would hide some of `text`."""
    return redact(text) != text


class RedactingStream:
    """A text stream that redacts what is written to it (wraps sys.stderr in the CLI)."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def __getattr__(self, name):  # isatty, flush, encoding, fileno, ...
        return getattr(self._stream, name)
