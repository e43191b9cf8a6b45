"""Mask personal data in citizen text, keeping the masked form readable.

Letters routinely carry the writer's mobile number, ID number or licence
plate.  The store and dashboard must not, but staff still need to see that
a number was given (``138****5678``), so values are masked, not removed.
Pure functions; the mask pipeline counts what each rule changed.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# 18-digit resident ID: 6 area digits, birth date, 3 digits, check digit/X.
_ID_RE = re.compile(
    r"(?<![0-9A-Za-z])([1-9]\d{5})(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:[0-2]\d|3[01])\d{3}([0-9Xx])(?![0-9A-Za-z])"
)
_MOBILE_RE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?!\d)")
_LANDLINE_RE = re.compile(r"(?<!\d)(0\d{2,3})[-－ ]?(\d{3,4})(\d{4})(?!\d)")
# Lookbehind + possessive quantifier: linear time on a 200k-char run of letters.
_EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*+(@[A-Za-z0-9.-]+\.[A-Za-z]{2,})"
)
_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_PLATE_RE = re.compile(
    rf"([{_PROVINCES}][A-HJ-NP-Z])[·• ]?([A-HJ-NP-Z0-9]{{2}})[A-HJ-NP-Z0-9]{{3,4}}(?![A-Za-z0-9])"
)


def _id(m: re.Match[str]) -> str:
    return f"{m.group(1)}********{'*' * 3}{m.group(2)}"


def _mobile(m: re.Match[str]) -> str:
    return f"{m.group(1)}****{m.group(3)}"


def _landline(m: re.Match[str]) -> str:
    return f"{m.group(1)}-****{m.group(3)}"


def _email(m: re.Match[str]) -> str:
    return f"{m.group(1)}***{m.group(2)}"


def _plate(m: re.Match[str]) -> str:
    return f"{m.group(1)}{m.group(2)}***"


#: (rule name, pattern, replacement).  IDs first: they contain phone-like runs.
RULES: tuple[tuple[str, re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    ("id_number", _ID_RE, _id),
    ("email", _EMAIL_RE, _email),
    ("mobile", _MOBILE_RE, _mobile),
    ("landline", _LANDLINE_RE, _landline),
    ("plate", _PLATE_RE, _plate),
)


def mask_pii(text: str | None) -> tuple[str | None, dict[str, int]]:
    """Return text with personal data masked, and how many of each kind were masked."""
    counts: dict[str, int] = {}
    if not text:
        return text, counts
    for name, pattern, repl in RULES:
        text, n = pattern.subn(repl, text)
        if n:
            counts[name] = n
    return text, counts
