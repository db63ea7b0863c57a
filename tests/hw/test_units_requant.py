# amaranth: UnusedElaboratable=no
# (the first line silences the warning for units built only to see their constructor refuse widths)
"""OutputStage against ttedge.fixed.ops.requantize (overflow saturate), in amaranth.sim."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from ttedge.errors import ConfigError
from ttedge.fixed.format import MAX_FRAC, ROUNDINGS, FixedFormat
from ttedge.fixed.ops import MAX_STOCHASTIC_SHIFT, requantize
from ttedge.hw.requant import OutputStage, RoundingMode, check_shift, shift_range

_MODES = ("nearest", "truncate", "stochastic")

Vector = tuple[int, int, str, int]  # value, k, rounding, random word


def _reference(vec: Vector, out_width: int, out_signed: bool) -> tuple[int, int]:
    value, k, rounding, word = vec
    from_frac, to_frac = (k, 0) if k >= 0 else (0, -k)
    fmt = FixedFormat(out_width, to_frac, signed=out_signed, rounding=rounding)  # type: ignore[arg-type]
    words = np.array([word], np.uint32) if rounding == "stochastic" else None
    codes, count = requantize(np.array([value], np.int64), from_frac, fmt, words)
    return int(codes[0]), int(count.total > 0)


def _vectors(in_width: int, out_width: int, count: int, seed: int) -> list[Vector]:
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (in_width - 1)), (1 << (in_width - 1)) - 1
    special = sorted({lo, lo + 1, -1, 0, 1, hi - 1, hi, (1 << (out_width - 1)), -(1 << (out_width - 1)) - 1})
    special = [v for v in special if lo <= v <= hi]
    shifts = sorted({-MAX_FRAC, -out_width - 1, -out_width, -out_width + 1, -1, 0, 1, 2, 31, 32, 33,
                     in_width - 1, in_width, in_width + 1, in_width + 31, in_width + 32, MAX_FRAC})
    shifts = [k for k in shifts if -MAX_FRAC <= k <= MAX_FRAC]
    out: list[Vector] = []
    for v in special:  # every special value with every special shift and mode
        for k in shifts:
            for mode in _MODES:
                if mode == "stochastic" and k > MAX_STOCHASTIC_SHIFT:
                    continue
                out.append((v, k, mode, int(rng.integers(0, 1 << 32))))
    while len(out) < count + len(special) * len(shifts):
        mode = _MODES[int(rng.integers(0, 3))]
        k_hi = MAX_STOCHASTIC_SHIFT if mode == "stochastic" else MAX_FRAC
        # Shifts near the interesting region most of the time, anywhere sometimes.
        k = int(rng.integers(max(-out_width - 2, -MAX_FRAC), min(in_width + 2, k_hi) + 1)) if rng.random() < 0.8 else int(
            rng.integers(-MAX_FRAC, k_hi + 1))
        bits = int(rng.integers(1, in_width + 1))  # log-uniform magnitudes
        value = int(rng.integers(-(1 << (bits - 1)), 1 << (bits - 1)))
        word = int(rng.integers(0, 1 << 32))
        if mode == "stochastic" and k > 0 and rng.random() < 0.3:
            # The word equal to the dropped fraction F (and one below) pins the strict R < F.
            dropped = (value << (32 - k)) & 0xFFFFFFFF
            word = max(dropped - int(rng.integers(0, 2)), 0)
        out.append((value, k, mode, word))
    return out


def _simulate(dut: OutputStage, vectors: list[Vector]) -> tuple[list[tuple[int, int]], int]:
    got: list[tuple[int, int]] = []
    first: list[int] = []

    async def bench(ctx) -> None:  # type: ignore[no-untyped-def]
        cycle = 0
        for item in list(vectors) + [None] * (OutputStage.LATENCY + 1):
            ctx.set(dut.valid, item is not None)
            if item is not None:
                value, k, mode, word = item
                ctx.set(dut.value, value)
                ctx.set(dut.shift, k)
                ctx.set(dut.rounding, RoundingMode.from_name(mode))
                ctx.set(dut.random, word)
            await ctx.tick()
            cycle += 1
            if ctx.get(dut.valid_out):
                first.append(cycle)
                got.append((ctx.get(dut.code), ctx.get(dut.saturated)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got, first[0]


@pytest.mark.parametrize(
    "in_width, out_width, out_signed, count",
    [(32, 8, True, 300), (8, 16, True, 200), (64, 64, True, 200), (64, 4, True, 150), (2, 2, True, 60),
     (40, 16, False, 150), (4, 63, False, 60)],
)
def test_output_stage_matches_requantize(in_width: int, out_width: int, out_signed: bool, count: int) -> None:
    vectors = _vectors(in_width, out_width, count, seed=in_width * 100 + out_width)
    expected = [_reference(v, out_width, out_signed) for v in vectors]
    got, first = _simulate(OutputStage(in_width, out_width, out_signed), vectors)
    assert first == OutputStage.LATENCY
    mismatches = [(v, e, g) for v, e, g in zip(vectors, expected, got) if e != g]
    assert not mismatches[:5]
    assert got == expected
    assert any(s for _, s in expected) and not all(s for _, s in expected)  # both sides exercised


def test_rounding_mode_names_follow_the_format() -> None:
    assert [m.name.lower() for m in RoundingMode] == list(ROUNDINGS)
    with pytest.raises(ConfigError, match="unknown rounding mode 'up'"):
        RoundingMode.from_name("up")


def test_shift_range_and_refusals() -> None:
    assert shift_range(32, 8) == (-MAX_FRAC, MAX_FRAC)
    assert shift_range(32, 8, "stochastic") == (-MAX_FRAC, MAX_STOCHASTIC_SHIFT)
    check_shift(32, 32, 8, "stochastic")
    with pytest.raises(ConfigError, match="shifts by -62 to 32 bits with stochastic rounding, got 33"):
        check_shift(33, 32, 8, "stochastic")
    with pytest.raises(ConfigError, match="input width must be an integer from 2 to 64 bits, got 65"):
        OutputStage(65, 8)
    with pytest.raises(ConfigError, match="output width must be an integer from 2 to 64 bits, got 1"):
        OutputStage(8, 1)
    with pytest.raises(ConfigError, match="unsigned output stage holds at most 63 bits"):
        OutputStage(8, 64, out_signed=False)
