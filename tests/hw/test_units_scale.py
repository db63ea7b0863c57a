# amaranth: UnusedElaboratable=no
# (the first line silences the warning for units built only to see their constructor refuse a rule)
"""ScaleUnit against ScaleRule.update and MaxAbs against max |code|, in amaranth.sim."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from ttedge.errors import ConfigError
from ttedge.fixed.format import MAX_FRAC
from ttedge.fixed.program import ScaleRule
from ttedge.hw.scale import MaxAbs, ScaleUnit

_CUSTOM = ScaleRule(hi_num=7, lo_num=1, den=8, up_after=1, down_after=3, max_step=3, frac_min=2, frac_max=20)


def _run(dut: ScaleUnit, vectors: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int]]:
    got: list[tuple[int, int, int]] = []

    async def bench(ctx) -> None:  # type: ignore[no-untyped-def]
        for m, frac, over, under in vectors:
            ctx.set(dut.m, m)
            ctx.set(dut.frac, frac)
            ctx.set(dut.over, over)
            ctx.set(dut.under, under)
            await ctx.tick()  # LATENCY = 1
            got.append((ctx.get(dut.new_frac), ctx.get(dut.new_over), ctx.get(dut.new_under)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize(
    "width, rule, count",
    [(4, ScaleRule(), 0), (8, ScaleRule(), 800), (16, ScaleRule(), 800), (32, _CUSTOM, 800), (64, ScaleRule(), 400)],
)
def test_scale_unit_matches_rule(width: int, rule: ScaleRule, count: int) -> None:
    rng = np.random.default_rng(width)
    top = (1 << (width - 1)) - 1
    hi, lo = (rule.hi_num * top) // rule.den, (rule.lo_num * top) // rule.den
    fracs = [0, 1, rule.frac_min, rule.frac_max, rule.frac_max + 1, MAX_FRAC]
    ms = sorted({0, 1, 2, 3, lo - 1, lo, lo + 1, hi - 1, hi, hi + 1, top - 1, top, top + 1} | {1 << b for b in range(width)})
    ms = [x for x in ms if 0 <= x < (1 << width)]
    if width <= 4:  # every m, every reachable counter state, the special fracs
        vectors = [(x, f, o, u) for x in range(1 << width) for f in fracs
                   for o in range(rule.up_after) for u in range(rule.down_after)]
    else:
        vectors = [(x, f, o, u) for x in ms for f in fracs for o in {0, rule.up_after - 1}
                   for u in {0, rule.down_after - 1}]
        for _ in range(count):
            bits = int(rng.integers(0, width + 1))
            x = int.from_bytes(rng.bytes(8), "little") >> (64 - bits) if bits else 0  # 0..2**bits-1
            vectors.append((x, int(rng.integers(0, MAX_FRAC + 1)), int(rng.integers(0, rule.up_after)),
                            int(rng.integers(0, rule.down_after))))
    expected = [rule.update(width, *v) for v in vectors]
    assert _run(ScaleUnit(width, rule), vectors) == expected


def test_scale_unit_follows_a_trajectory() -> None:
    """Feeding the unit's outputs back as its state follows the rule over a run of steps."""
    width, rule = 8, ScaleRule()
    rng = np.random.default_rng(7)
    # Phases of small, middling and large maxima drive frac down, hold it and raise it.
    ms = np.concatenate([rng.integers(0, 20, 30), rng.integers(100, 129, 20), rng.integers(0, 129, 50)])
    dut = ScaleUnit(width, rule)
    state = (10, 0, 0)
    got, expected = [], []

    async def bench(ctx) -> None:  # type: ignore[no-untyped-def]
        hw = state
        for x in ms:
            ctx.set(dut.m, int(x))
            for port, value in zip((dut.frac, dut.over, dut.under), hw):
                ctx.set(port, value)
            await ctx.tick()
            hw = (ctx.get(dut.new_frac), ctx.get(dut.new_over), ctx.get(dut.new_under))
            got.append(hw)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    for x in ms:
        state = rule.update(width, int(x), *state)
        expected.append(state)
    assert got == expected
    fracs = [f for f, _, _ in expected]
    moves = [b - a for a, b in zip(fracs, fracs[1:])]
    assert max(moves) > 1 and min(moves) < 0  # frac rose by a jump and fell


def test_scale_unit_refuses_rules_it_cannot_build() -> None:
    with pytest.raises(ConfigError, match="needs den, up_after, down_after and max_step of at least 1"):
        ScaleUnit(8, ScaleRule(up_after=0))
    with pytest.raises(ConfigError, match="needs 0 <= frac_min <= frac_max <= 62, got 0 and 63"):
        ScaleUnit(8, ScaleRule(frac_max=63))
    with pytest.raises(ConfigError, match="buffer width from 2 to 64 bits, got 1"):
        ScaleUnit(1, ScaleRule())


@pytest.mark.parametrize("width", [2, 8, 33])
def test_max_abs_streams(width: int) -> None:
    rng = np.random.default_rng(width)
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    # (clear, valid, code) per cycle: streams separated by clears, with gaps and a clear+valid cycle.
    cycles: list[tuple[int, int, int]] = [(1, 0, 0)]
    for stream in range(6):
        n = int(rng.integers(1, 40))
        codes = [int(c) for c in rng.integers(lo, hi + 1, n, dtype=np.int64)]
        if stream == 2:
            codes[n // 2] = lo  # counts as MAX
        if stream == 3:
            codes = [0] * n
        for i, c in enumerate(codes):
            cycles.append((int(i == 0 and stream % 2 == 1), int(rng.random() < 0.8), c))
        cycles.append((1, 0, 0) if stream % 2 == 0 else (0, 0, 0))
    dut = MaxAbs(width)
    cycles += [(0, 0, 0)] * (dut.LATENCY - 1)  # idle edges for the last code to come out
    got: list[int] = []

    async def bench(ctx) -> None:  # type: ignore[no-untyped-def]
        for clear, valid, code in cycles:
            ctx.set(dut.clear, clear)
            ctx.set(dut.valid, valid)
            ctx.set(dut.code, code)
            await ctx.tick()
            got.append(ctx.get(dut.max))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    expected, current = [], 0
    for clear, valid, code in cycles:
        current = 0 if clear else current
        if valid:
            current = max(current, min(abs(code), hi))
        expected.append(current)
    assert got[dut.LATENCY - 1:] == expected[: len(expected) - (dut.LATENCY - 1)]


def test_units_convert_to_rtlil() -> None:
    from amaranth.back import rtlil

    for dut in (ScaleUnit(16, ScaleRule()), MaxAbs(16)):
        assert "module" in rtlil.convert(dut)
