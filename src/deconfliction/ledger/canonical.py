"""RFC 8785 JSON Canonicalization Scheme (JCS).

Signatures and leaf hashes are computed over these bytes, so every signer and verifier must
produce exactly the same bytes for the same JSON value:

- object members sorted by their names compared as arrays of UTF-16 code units;
- no whitespace; strings escaped with the short forms of RFC 8785 section 3.2.2.2
  (``\\b \\t \\n \\f \\r \\" \\\\``), other controls as lowercase ``\\u00xx``, everything else
  as raw UTF-8;
- numbers written as ECMAScript ``Number.prototype.toString`` writes an IEEE 754 double.

Python ints are accepted only up to 2**53 in magnitude: above that a double cannot hold them
exactly, so another implementation would read a different value. NaN and the infinities have
no JSON form and are refused, as are lone surrogates (not valid Unicode, RFC 7493 I-JSON).

Every entry's payload is canonicalised when it is signed and again when it is built or verified,
so objects and arrays take a fast path: orjson writes them with sorted members, then the few
number tokens it writes unlike ECMAScript are re-laid out (see `_orjson_canonical`). The
pure-Python encoder stays the reference and the fallback; a property test holds them equal.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from json.encoder import encode_basestring
from typing import Any, NoReturn

import orjson

from deconfliction.ledger.errors import LedgerError

MAX_SAFE_INTEGER = 2**53

# Subclasses, datetimes and dataclasses are not JSON values to the reference encoder: orjson
# must not write them its own way, so they reach its (absent) default and fail over, as do
# integers beyond 2**53 - 1 (the reference decides 2**53 itself).
_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_STRICT_INTEGER
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)
# orjson writes an exponent ("1e+16", "1e-6") where ECMAScript may not: rare, so such a text
# takes the careful pass over every token. Searched from its literal "e": cheap to scan for.
_EXPONENT = re.compile(rb"e[+-]\d")
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|-?\d+(?:\.\d+)?(?:e[+-]?\d+)?')
# orjson writes an integral double as "100.0", ECMAScript as "100" (and -0 as "0"). Strings are
# matched whole so that a ".0," inside one stays; every alternative starts with a literal.
_INTEGRAL = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|-0\.0(?=[,\]}])|\.0(?=[,\]}])')
# The lead byte of a character beyond the BMP: orjson sorts names by code point, RFC 8785 by
# UTF-16 code unit, and the two orders differ only for such characters.
_ASTRAL = re.compile(rb"[\xf0-\xf4]")


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 canonical UTF-8 bytes of a JSON value (dict, list, str, int, float, bool, None)."""
    if type(obj) is dict or type(obj) is list:
        fast = _orjson_canonical(obj)
        if fast is not None:
            return fast
    return reference_canonical_json(obj)


def reference_canonical_json(obj: Any) -> bytes:
    """The same bytes from a plain encoder of this module: the reference the fast path is
    tested against, and what it falls back to."""
    parts: list[str] = []
    _encode(obj, parts)
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LedgerError(f"string is not valid Unicode (lone surrogate at {exc.start})") from exc


def _orjson_canonical(obj: dict[str, Any] | list[Any]) -> bytes | None:
    """The canonical bytes by way of orjson, or None where only the reference can decide
    (a value orjson refuses or would write its own way, a character beyond the BMP)."""
    try:
        text = orjson.dumps(obj, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: not a plain JSON value, or a lone surrogate
        return None
    if not text.isascii() and _ASTRAL.search(text):
        return None
    if b"null" in text:
        # orjson writes NaN and the infinities as null; the standard encoder refuses them.
        try:
            json.dumps(obj, allow_nan=False)
        except ValueError:
            return None
    if _EXPONENT.search(text):
        return _TOKEN.sub(_canonical_token, text)
    if b".0" in text:
        return _INTEGRAL.sub(_integral_token, text)
    return text


def _canonical_token(match: re.Match[bytes]) -> bytes:
    token = match.group()
    if token[0] == 0x22:  # a string: as orjson wrote it (it escapes as RFC 8785 does)
        return token
    if b"e" in token:
        return canonical_number(float(token)).encode()
    if token.endswith(b".0"):
        return b"0" if token == b"-0.0" else token[:-2]
    return token


def _integral_token(match: re.Match[bytes]) -> bytes:
    token = match.group()
    if token[0] == 0x22:
        return token
    return b"0" if token[0] == 0x2D else b""  # "-0.0" is "0"; "100.0" loses its ".0"


def parse_json(text: str | bytes) -> Any:
    """Parse JSON text as RFC 8785 / I-JSON readers must, for values that will be re-hashed.

    Duplicate member names, NaN, Infinity and numbers that overflow a double are refused.
    Integers beyond 2**53 are read as the double they denote (JSON numbers are doubles), so
    that the canonical text of a large double, such as ``295147905179352830000``, parses back
    to the value it was written from.
    """
    try:
        return json.loads(
            text,
            object_pairs_hook=_unique_members,
            parse_constant=_no_constant,
            parse_int=_json_int,
            parse_float=_json_float,
        )
    except LedgerError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise LedgerError(f"not JSON: {exc}") from exc


def canonical_number(value: float | int) -> str:
    """A number as ECMAScript Number-to-String writes it (RFC 8785 section 3.2.2.3)."""
    if isinstance(value, bool):
        raise LedgerError("a boolean is not a number")
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise LedgerError(f"integer {value} is beyond 2**53 and cannot be an exact double")
        return str(value)
    if not math.isfinite(value):
        raise LedgerError(f"{value!r} has no JSON form")
    if value == 0:
        return "0"  # also -0: ECMAScript writes it as "0"
    # repr() gives the shortest digit string that round-trips, the same digits ECMAScript picks;
    # only the placement of the decimal point and exponent differs, so re-lay it out.
    text = repr(value)
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + (int(exponent) if exponent else 0)
    significant = digits.lstrip("0")
    point -= len(digits) - len(significant)
    significant = significant.rstrip("0")
    k, n = len(significant), point  # value = 0.<significant> * 10**n, as in ECMA-262 7.1.12.1
    if k <= n <= 21:
        out = significant + "0" * (n - k)
    elif 0 < n <= 21:
        out = significant[:n] + "." + significant[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * -n + significant
    else:
        e = n - 1
        head = significant[0] + ("." + significant[1:] if k > 1 else "")
        out = f"{head}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + out


def _utf16_key(name: str) -> bytes:
    # Big-endian UTF-16 bytes compare exactly as the sequence of 16-bit code units does.
    return name.encode("utf-16-be", "surrogatepass")


def _float(value: float) -> str:
    # Fast path: where repr() writes no exponent (1e-4 <= |x| < 1e16) ECMAScript writes the
    # same digits the same way, except that it drops the ".0" of an integral value.
    text = repr(value)
    if "e" in text or "n" in text or value == 0:
        return canonical_number(value)
    return text[:-2] if text.endswith(".0") else text


def _encode(obj: Any, parts: list[str]) -> None:
    # Dispatch on the exact type first: this runs once per value of every entry verified.
    kind = type(obj)
    if kind is str:
        parts.append(encode_basestring(obj))
    elif kind is float:
        parts.append(_float(obj))
    elif kind is int:
        parts.append(canonical_number(obj))
    elif kind is dict or (kind is not list and isinstance(obj, Mapping)):
        names = list(obj)
        for name in names:
            if type(name) is not str:
                raise LedgerError(f"object member name {name!r} is not a string")
        # Code point order equals UTF-16 order for ASCII names, the common case.
        if all(name.isascii() for name in names):
            names.sort()
        else:
            names.sort(key=_utf16_key)
        parts.append("{")
        for i, name in enumerate(names):
            parts.append(',"' if i else '"')
            parts.append(encode_basestring(name)[1:])
            parts.append(":")
            _encode(obj[name], parts)
        parts.append("}")
    elif kind is list or kind is tuple:
        parts.append("[")
        for i, item in enumerate(obj):
            if i:
                parts.append(",")
            _encode(item, parts)
        parts.append("]")
    elif obj is None:
        parts.append("null")
    elif obj is True:
        parts.append("true")
    elif obj is False:
        parts.append("false")
    elif isinstance(obj, str):
        parts.append(encode_basestring(str(obj)))
    elif isinstance(obj, int | float):
        parts.append(canonical_number(obj))
    else:
        raise LedgerError(f"{type(obj).__name__} is not a JSON value")


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        names = [name for name, _ in pairs]
        raise LedgerError(f"duplicate member {next(n for n in names if names.count(n) > 1)!r}")
    return obj


def _no_constant(name: str) -> NoReturn:
    raise LedgerError(f"{name} is not a JSON number")


def _json_int(text: str) -> int | float:
    value = int(text)
    return value if abs(value) <= MAX_SAFE_INTEGER else _json_float(text)


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise LedgerError(f"number {text[:40]} overflows a double")
    return value
