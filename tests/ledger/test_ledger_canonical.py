"""RFC 8785 canonical JSON: the RFC's own examples, Appendix B numbers, and refusals."""

from __future__ import annotations

import json
import math
import struct
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deconfliction.ledger.canonical import (
    canonical_json,
    canonical_number,
    parse_json,
    reference_canonical_json,
)
from deconfliction.ledger.errors import LedgerError


def test_rfc8785_sorting_example_orders_by_utf16_code_units() -> None:
    # RFC 8785 section 3.2.3: the input as the RFC writes it, in JSON with \u escapes.
    source = (
        '{"\\u20ac": "Euro Sign", "\\r": "Carriage Return", '
        '"\\ufb33": "Hebrew Letter Dalet With Dagesh", "1": "One", '
        '"\\ud83d\\ude00": "Emoji: Grinning Face", "\\u0080": "Control", '
        '"\\u00f6": "Latin Small Letter O With Diaeresis"}'
    )
    out = canonical_json(json.loads(source)).decode("utf-8")
    names = [name for name, _ in json.loads(out, object_pairs_hook=list)]
    assert names == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    assert out.startswith('{"\\r":"Carriage Return","1":"One","\u0080":"Control",')
    # The astral emoji (surrogates D83D DE00) sorts before U+FB33, unlike code point order.
    assert out.index("\U0001f600") < out.index("\ufb33")


def test_rfc8785_main_example_bytes() -> None:
    # RFC 8785 section 3.2.2 input and its canonical output, byte for byte.
    source = r"""{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }"""
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_json(json.loads(source)) == expected.encode("utf-8")


# RFC 8785 Appendix B: IEEE 754 bit patterns and the text ECMAScript writes for them.
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("bits", "text"), APPENDIX_B)
def test_rfc8785_appendix_b_numbers(bits: str, text: str) -> None:
    (value,) = struct.unpack(">d", bytes.fromhex(bits))
    assert canonical_number(value) == text
    assert canonical_json([value]) == f"[{text}]".encode()


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e30, "1e+30"),
        (4.50, "4.5"),
        (2e-3, "0.002"),
        (0.000001, "0.000001"),
        (1e-7, "1e-7"),
        (-0.0, "0"),
        (100.0, "100"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (123456789012.5, "123456789012.5"),
        (-1.5e-10, "-1.5e-10"),
        (0, "0"),
        (-(2**53), "-9007199254740992"),
    ],
)
def test_numbers_written_as_ecmascript_does(value: float, text: str) -> None:
    assert canonical_number(value) == text


@pytest.mark.parametrize(
    "bad",
    [
        math.nan,
        math.inf,
        -math.inf,
        2**53 + 1,
        -(2**53) - 1,
        {1: "non-string name"},
        {"x": {1, 2}},
        b"bytes",
        "lone \ud800 surrogate",
        {"lone \udc00": 1},
        # The same inside objects and arrays (the fast path's ground).
        {"x": math.nan},
        [1.0, math.inf],
        {"a": [-math.inf, None]},
        {"a": [2**53 + 1]},
        [-(2**53) - 1],
        [2**64],
        {"a": {1: "b"}},
        ["lone \ud800"],
        {"a": b"bytes"},
        {"when": datetime(2026, 12, 7, tzinfo=UTC)},
    ],
)
def test_refuses_what_json_cannot_carry_exactly(bad: Any) -> None:
    with pytest.raises(LedgerError):
        canonical_json(bad)


def test_booleans_are_not_numbers() -> None:
    assert canonical_json([True, False, None]) == b"[true,false,null]"
    with pytest.raises(LedgerError):
        canonical_number(True)


def test_escapes_only_what_rfc8785_escapes() -> None:
    text = '"\\/\b\f\n\r\t\x00\x1f\x7f\u2028é😀'
    assert canonical_json(text) == ('"\\"\\\\/\\b\\f\\n\\r\\t\\u0000\\u001f\x7f\u2028é😀"').encode()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(st.characters(exclude_categories=["Cs"]), max_size=4), inner, max_size=4
        )
    ),
    max_leaves=12,
)


@given(json_values)
def test_canonical_json_parses_back_to_the_same_value(value: Any) -> None:
    out = canonical_json(value)
    assert parse_json(out) == value
    assert canonical_json(parse_json(out)) == out  # idempotent


# Values where orjson's own text differs from RFC 8785, or its member order does.
awkward_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.sampled_from([0.0, -0.0, 100.0, -3000.0, 1e16, 1e21, 1.5e-7, 1e-6, 1e-5, 5e-324])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.sampled_from(["a", "e", "0", ".", ",", "]", "}", '"', "\\", "\ue000", "😀"])),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(
            st.text(st.sampled_from(["a", "b", "\ue000", "😀", "\x7f", "é"]), max_size=3),
            inner,
            max_size=5,
        )
    ),
    max_leaves=16,
)


@given(st.one_of(json_values, awkward_values).filter(lambda v: isinstance(v, dict | list)))
def test_fast_path_writes_the_reference_bytes(value: Any) -> None:
    assert canonical_json(value) == reference_canonical_json(value)


def test_fast_path_fixes_what_orjson_writes_its_own_way() -> None:
    value = {"b": [100.0, -0.0, 1e16, 1e21, 1e-7, 2**53], "a": "1e+16 100.0,", "\ue000": 1, "😀": 2}
    assert (
        canonical_json(value)
        == (
            '{"a":"1e+16 100.0,","b":[100,0,10000000000000000,1e+21,1e-7,9007199254740992],'
            '"😀":2,"\ue000":1}'
        ).encode()
    )


def _ecmascript_reference(value: float) -> str:
    """ECMA-262 Number::toString laid out from numpy's Dragon4 shortest digits (independent)."""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mantissa, exponent = np.format_float_scientific(abs(value), unique=True).split("e")
    digits = mantissa.replace(".", "").rstrip("0") or "0"
    k, n = len(digits), int(exponent) + 1
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    rest = "." + digits[1:] if k > 1 else ""
    return f"{sign}{digits[0]}{rest}e{n - 1:+d}"


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_double_matches_an_independent_reference(value: float) -> None:
    text = canonical_number(value)
    assert float(text) == value
    assert text == _ecmascript_reference(value)


@pytest.mark.parametrize(
    "text",
    ['{"a": 1, "a": 2}', '{"a": NaN}', "[Infinity]", "[-Infinity]", "[1e400]", "{", b"\xff"],
)
def test_parse_json_refuses_ambiguous_or_unrepresentable_text(text: str | bytes) -> None:
    with pytest.raises(LedgerError):
        parse_json(text)


def test_large_integer_text_is_read_as_the_double_it_denotes() -> None:
    # 2**68 is written by ECMAScript as 295147905179352830000, which is not 2**68 as an integer.
    assert parse_json("295147905179352830000") == 2.0**68
    assert canonical_json(parse_json("[295147905179352830000]")) == b"[295147905179352830000]"
    assert parse_json("9007199254740992") == 2**53
