"""FixedFormat: fields, exact range properties, the canonical string and its error messages."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttedge.errors import ConfigError
from ttedge.fixed import OVERFLOWS, ROUNDINGS, FixedFormat


@st.composite
def formats(draw: st.DrawFn) -> FixedFormat:
    signed = draw(st.booleans())
    width = draw(st.integers(2, 64 if signed else 63))
    return FixedFormat(
        width,
        draw(st.integers(0, 62)),
        signed=signed,
        rounding=draw(st.sampled_from(ROUNDINGS)),
        overflow=draw(st.sampled_from(OVERFLOWS)),
    )


@settings(max_examples=200, deadline=None)
@given(formats())
def test_canonical_string_round_trips(fmt: FixedFormat) -> None:
    text = str(fmt)
    assert FixedFormat.parse(text) == fmt
    assert str(FixedFormat.parse(text)) == text
    assert hash(FixedFormat.parse(text)) == hash(fmt)


@settings(max_examples=200, deadline=None)
@given(formats())
def test_range_properties_are_exact(fmt: FixedFormat) -> None:
    assert fmt.int_bits == fmt.width - fmt.frac
    assert fmt.max_int - fmt.min_int + 1 == 2**fmt.width
    assert fmt.min_int == (-(2 ** (fmt.width - 1)) if fmt.signed else 0)
    assert fmt.lsb_exact() == Fraction(1, 2**fmt.frac)
    assert fmt.max_exact() == Fraction(fmt.max_int, 2**fmt.frac)
    assert fmt.min_exact() == Fraction(fmt.min_int, 2**fmt.frac)
    assert fmt.lsb == float(fmt.lsb_exact())
    assert fmt.min == float(fmt.min_exact()) and fmt.max == float(fmt.max_exact())


def test_method_formats() -> None:
    weights, acts, acc = (FixedFormat.parse(t) for t in ("fx<4,1>", "fx<16,9>", "fx<32,11>"))
    assert (weights.width, weights.frac, weights.lsb, weights.max, weights.min) == (4, 3, 0.125, 0.875, -1.0)
    assert (acts.frac, acts.lsb, acts.max, acts.min) == (7, 2**-7, 256 - 2**-7, -256.0)
    assert (acc.frac, acc.min_int, acc.max_int) == (21, -(2**31), 2**31 - 1)
    unsigned = FixedFormat.parse("ufx<8,0,truncate,wrap>")
    assert unsigned == FixedFormat(8, 8, signed=False, rounding="truncate", overflow="wrap")
    assert (unsigned.min_int, unsigned.max_int, unsigned.max) == (0, 255, 255 / 256)
    assert FixedFormat.parse(" fx< 8, -2 , wrap, stochastic > ") == FixedFormat(8, 10, rounding="stochastic", overflow="wrap")
    assert str(FixedFormat(8, 10, rounding="stochastic", overflow="wrap")) == "fx<8,-2,stochastic,wrap>"
    assert str(FixedFormat(16, 7, overflow="wrap")) == "fx<16,9,wrap>"
    assert {FixedFormat(16, 7), FixedFormat.parse("fx<16,9,nearest,saturate>")} == {FixedFormat(16, 7)}
    with pytest.raises(dataclasses.FrozenInstanceError):
        acts.width = 8  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 1, "frac": 0}, r"^fixed-point width must be an integer from 2 to 64 bits, got 1; pick a width in that range\.$"),
        ({"width": 65, "frac": 0}, r"^fixed-point width must be an integer from 2 to 64 bits, got 65; pick a width in that range\.$"),
        ({"width": 8.0, "frac": 0}, r"^fixed-point width must be an integer from 2 to 64 bits, got 8\.0; pick a width in that range\.$"),
        ({"width": 8, "frac": -1}, r"^fixed-point fractional bits must be an integer from 0 to 62, got -1; pick a value in that range\.$"),
        ({"width": 8, "frac": 63}, r"^fixed-point fractional bits must be an integer from 0 to 62, got 63; pick a value in that range\.$"),
        ({"width": 8, "frac": 0, "signed": 1}, r"^fixed-point signed must be True or False, got 1; pass a bool\.$"),
        ({"width": 64, "frac": 0, "signed": False}, r"^an unsigned fixed-point format has at most 63 bits to fit int64 codes, got 64; use a narrower or a signed format\.$"),
        ({"width": 8, "frac": 0, "rounding": "up"}, r"^unknown rounding mode 'up'; use one of nearest, truncate, stochastic\.$"),
        ({"width": 8, "frac": 0, "overflow": "clip"}, r"^unknown overflow mode 'clip'; use one of saturate, wrap\.$"),
    ],
)
def test_invalid_fields_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FixedFormat(**kwargs)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("s16.7", r"^cannot parse fixed-point format 's16\.7'; write it as fx<W,I> or ufx<W,I> with optional rounding and overflow modes, e\.g\. fx<16,9,stochastic,wrap>\.$"),
        ("fx<16>", r"^cannot parse fixed-point format 'fx<16>'; write it as fx<W,I> or ufx<W,I> .*\.$"),
        ("fx<16,9,up>", r"^unknown mode 'up' in fixed-point format 'fx<16,9,up>'; use rounding nearest, truncate, stochastic or overflow saturate, wrap\.$"),
        ("fx<16,9,wrap,saturate>", r"^fixed-point format 'fx<16,9,wrap,saturate>' names more than one rounding or overflow mode; keep one of each\.$"),
        ("fx<16,17>", r"^fixed-point fractional bits must be an integer from 0 to 62, got -1; pick a value in that range\.$"),
        ("fx<70,9>", r"^fixed-point width must be an integer from 2 to 64 bits, got 70; pick a width in that range\.$"),
    ],
)
def test_parse_errors_are_named(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FixedFormat.parse(text)


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(ConfigError, match=r"^cannot parse fixed-point format 16; write it as .*\.$"):
        FixedFormat.parse(16)  # type: ignore[arg-type]
