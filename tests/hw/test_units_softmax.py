# amaranth: UnusedElaboratable=no
# (the first line silences the warning for units built only to see their constructor refuse formats)
"""ExpNeg against exp_neg and SoftmaxXentUnit against softmax_xent_grad, in amaranth.sim."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from ttedge.errors import ConfigError
from ttedge.fixed.format import FixedFormat
from ttedge.fixed.softmax import SOFTMAX_EXP_FRAC, exp_neg, softmax_xent_grad
from ttedge.hw.softmax import ExpNeg, SoftmaxXentUnit, softmax_row_cycles


def _exp_vectors(rng: np.random.Generator, count: int) -> list[tuple[int, int]]:
    """(x, frac_in): edge codes with every frac_in, then log-uniform random magnitudes."""
    edges = [0, -1, -2, -(1 << 31) + 1, -(1 << 30), -(1 << 20), -708, -709]
    vectors = [(x, f) for x in edges for f in (0, 1, 20, 30, 31, 62)]
    for _ in range(count):
        bits = int(rng.integers(0, 32))
        x = -int(rng.integers(0, 1 << bits)) if bits else 0
        vectors.append((max(x, -(1 << 31) + 1), int(rng.integers(0, 63))))
    return vectors


@pytest.mark.parametrize("frac_out, count", [(SOFTMAX_EXP_FRAC, 700), (0, 150), (30, 300)])
def test_exp_neg_unit_matches_reference(frac_out: int, count: int) -> None:
    vectors = _exp_vectors(np.random.default_rng(frac_out), count)
    expected = [int(exp_neg(np.array([x]), f, frac_out)[0]) for x, f in vectors]
    dut = ExpNeg(frac_out)
    got: list[int] = []
    first: list[int] = []

    async def bench(ctx) -> None:  # type: ignore[no-untyped-def]
        cycle = 0
        for item in list(vectors) + [None] * (ExpNeg.LATENCY + 1):
            ctx.set(dut.valid, item is not None)
            if item is not None:
                ctx.set(dut.x, item[0])
                ctx.set(dut.frac_in, item[1])
            await ctx.tick()
            cycle += 1
            if ctx.get(dut.valid_out):
                first.append(cycle)
                got.append(ctx.get(dut.y))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert first[0] == ExpNeg.LATENCY
    assert got == expected
    assert len(set(expected)) > (count // 4 if frac_out else 1)  # not all zeros or ones


Row = tuple[list[int], int, int, list[int]]  # logits, label, frac, random words


def _rows(rng: np.random.Generator, in_width: int, num_classes: int, count: int) -> list[Row]:
    lo, hi = -(1 << (in_width - 1)), (1 << (in_width - 1)) - 1
    rows: list[Row] = []

    def words() -> list[int]:
        return [int(w) for w in rng.integers(0, 1 << 32, num_classes)]

    # Extremes: all equal, one rail against the other, max at the label and elsewhere.
    rows.append(([0] * num_classes, 0, 0, words()))
    rows.append(([hi] + [lo] * (num_classes - 1), 0, 0, words()))
    rows.append(([hi] + [lo] * (num_classes - 1), num_classes - 1, in_width - 1, words()))
    rows.append(([lo] * (num_classes - 1) + [hi], 1, 62, words()))
    rows.append(([hi, hi - 1] + [lo + 1] * (num_classes - 2), 1, in_width - 4, words()))
    while len(rows) < count:
        frac = int(rng.integers(max(in_width - 8, 0), in_width + 2))  # logits of a few units
        spread = int(rng.integers(1, in_width + 1))
        centre = int(rng.integers(lo // 2, hi // 2 + 1))
        codes = np.clip(centre + rng.integers(-(1 << (spread - 1)), 1 << (spread - 1), num_classes), lo, hi)
        rows.append(([int(c) for c in codes], int(rng.integers(0, num_classes)), frac, words()))
    return rows


def _simulate_rows(dut: SoftmaxXentUnit, rows: list[Row], gaps: bool) -> tuple[list[list[int]], list[int], list[int]]:
    codes: list[list[int]] = []
    sats: list[int] = []
    cycles: list[int] = []

    async def bench(ctx) -> None:  # type: ignore[no-untyped-def]
        for r, (logits, label, frac, words) in enumerate(rows):
            ctx.set(dut.start, 1)
            ctx.set(dut.frac, frac)
            ctx.set(dut.label, label)
            await ctx.tick()
            ctx.set(dut.start, 0)
            edges, row, sat_flags = 1, [], []
            for c, (code, word) in enumerate(zip(logits, words)):
                if gaps and r % 2 == 1 and c == 1:  # an input gap costs one edge
                    ctx.set(dut.in_valid, 0)
                    await ctx.tick()
                    edges += 1
                ctx.set(dut.in_valid, 1)
                ctx.set(dut.in_code, code)
                ctx.set(dut.in_random, word)
                await ctx.tick()
                edges += 1
            ctx.set(dut.in_valid, 0)
            while not ctx.get(dut.done):
                assert ctx.get(dut.busy)
                if ctx.get(dut.out_valid):
                    assert ctx.get(dut.out_index) == len(row)
                    row.append(ctx.get(dut.out_code))
                    sat_flags.append(ctx.get(dut.out_saturated))
                await ctx.tick()
                edges += 1
            assert not ctx.get(dut.busy) and ctx.get(dut.sat_count) == sum(sat_flags)
            codes.append(row)
            sats.append(ctx.get(dut.sat_count))
            cycles.append(edges - (1 if gaps and r % 2 == 1 else 0))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return codes, sats, cycles


@pytest.mark.parametrize(
    "in_width, out_fmt, num_classes, count",
    [
        (16, FixedFormat(8, 6), 10, 16),  # the digits/MNIST error format family
        (31, FixedFormat(16, 15, rounding="truncate"), 3, 14),
        (8, FixedFormat(6, 5, rounding="stochastic"), 4, 14),
        (12, FixedFormat(4, 4), 5, 14),  # range [-1/2, 7/16]: saturates on both sides
        (10, FixedFormat(12, 34), 2, 12),  # frac > 30: an exact left shift, saturating
    ],
)
def test_softmax_unit_matches_reference(in_width: int, out_fmt: FixedFormat, num_classes: int, count: int) -> None:
    rng = np.random.default_rng(in_width * 100 + num_classes)
    rows = _rows(rng, in_width, num_classes, count)
    expected_codes, expected_sats = [], []
    for logits, label, frac, words in rows:
        grad, sat = softmax_xent_grad(
            np.array([logits], np.int64), np.array([label]), FixedFormat(in_width, frac), out_fmt,
            np.array([words], np.uint32) if out_fmt.rounding == "stochastic" else None,
        )
        expected_codes.append([int(g) for g in grad[0]])
        expected_sats.append(sat.total)
    dut = SoftmaxXentUnit(in_width, out_fmt, num_classes)
    codes, sats, cycles = _simulate_rows(dut, rows, gaps=True)
    assert codes == expected_codes
    assert sats == expected_sats
    assert set(cycles) == {dut.cycles()} == {softmax_row_cycles(num_classes)} == {34 * num_classes + 21}
    if out_fmt.width == 4:
        assert sum(expected_sats) > 0


def test_softmax_unit_refusals() -> None:
    with pytest.raises(ConfigError, match="softmax logits need 2 to 31 bits, got 32"):
        SoftmaxXentUnit(32, FixedFormat(8, 6), 10)
    with pytest.raises(ConfigError, match="saturates its gradients, but fx<8,2,wrap> wraps"):
        SoftmaxXentUnit(16, FixedFormat(8, 6, overflow="wrap"), 10)
    with pytest.raises(ConfigError, match="needs at least 2 classes, got 1"):
        SoftmaxXentUnit(16, FixedFormat(8, 6), 1)
    with pytest.raises(ConfigError, match="the exp unit gives 0 to 30 fractional bits, got 31"):
        ExpNeg(31)


def test_softmax_unit_converts_to_rtlil() -> None:
    """The whole row unit (with its exp ROM, divider and output stage) elaborates to a netlist."""
    from amaranth.back import rtlil

    assert "module" in rtlil.convert(SoftmaxXentUnit(16, FixedFormat(8, 6, rounding="stochastic"), 10))
