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
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from json.encoder import encode_basestring
from typing import Any, NoReturn

from deconfliction.ledger.errors import LedgerError

MAX_SAFE_INTEGER = 2**53


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 canonical UTF-8 bytes of a JSON value (dict, list, str, int, float, bool, None)."""
    parts: list[str] = []
    _encode(obj, parts)
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LedgerError(f"string is not valid Unicode (lone surrogate at {exc.start})") from exc


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
