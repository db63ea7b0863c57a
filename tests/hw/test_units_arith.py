# amaranth: UnusedElaboratable=no
# (the first line silences the warning for units built only to see their constructor refuse widths)
"""Divider against // and %, ISqrt against ttedge.fixed.interpreter.isqrt, in amaranth.sim."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from ttedge.errors import ConfigError
from ttedge.fixed.interpreter import isqrt
from ttedge.hw.arith import Divider, FloorDivider, ISqrt, divider_cycles, isqrt_cycles


def _bits(rng: np.random.Generator, width: int) -> int:
    """A random integer of a random bit length 0..width (log-uniform magnitudes)."""
    bits = int(rng.integers(0, width + 1))
    return int.from_bytes(rng.bytes(16), "little") >> (128 - bits) if bits else 0


def _run(dut: Divider | FloorDivider | ISqrt, operands: list[dict[str, int]], outputs: tuple[str, ...]) -> tuple[list, list[int]]:
    """Start one operation per operand set, back to back; return the results and start-to-done edges."""
    results: list[tuple[int, ...]] = []
    latencies: list[int] = []

    async def bench(ctx) -> None:  # type: ignore[no-untyped-def]
        for ops in operands:
            for name, value in ops.items():
                ctx.set(getattr(dut, name), value)
            ctx.set(dut.start, 1)
            await ctx.tick()
            # A start while busy is ignored, and changed operands do not disturb the operation.
            for name, value in ops.items():
                ctx.set(getattr(dut, name), 0 if value else 1)
            edges = 1
            while not ctx.get(dut.done):
                assert ctx.get(dut.busy)
                await ctx.tick()
                edges += 1
            assert not ctx.get(dut.busy)
            latencies.append(edges)
            results.append(tuple(ctx.get(getattr(dut, name)) for name in outputs))
            ctx.set(dut.start, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return results, latencies


@pytest.mark.parametrize(
    "num_width, den_width, quotient_width, count",
    [(51, 21, 31, 120), (16, 16, None, 150), (64, 33, None, 50), (4, 3, None, 0), (1, 1, None, 0)],
)
def test_divider_matches_floor_division(num_width: int, den_width: int, quotient_width: int | None,
                                        count: int) -> None:
    rng = np.random.default_rng(num_width * 64 + den_width)
    q_bits = num_width if quotient_width is None else quotient_width
    if num_width <= 4:  # every pair with a nonzero divisor
        pairs = [(n, d) for n in range(1 << num_width) for d in range(1, 1 << den_width)]
    else:
        d_max, n_max = (1 << den_width) - 1, (1 << num_width) - 1
        pairs = [(n, d) for n, d in [(0, 1), (n_max, 1), (n_max, d_max), (0, d_max), (d_max, d_max)] if n < d << q_bits]
        while len(pairs) < count:
            d = max(_bits(rng, den_width), 1)
            n = _bits(rng, num_width)
            if n >= d << q_bits:  # keep the quotient within quotient_width bits
                n = n % (d << q_bits)
            pairs.append((n, d))
        if quotient_width is not None:  # the largest numerators the narrow quotient allows
            pairs += [
                (min(d_max << q_bits, n_max + 1) - 1, d_max),
                (n_max, 1 << (num_width - q_bits)),  # the largest quotient, 2**quotient_width - 1
                (1 << (num_width - 1), (1 << (num_width - 1 - q_bits)) + 1),
            ]
    dut = Divider(num_width, den_width, quotient_width)
    got, edges = _run(dut, [{"num": n, "den": d} for n, d in pairs], ("quotient", "remainder"))
    assert got == [(n // d, n % d) for n, d in pairs]
    assert set(edges) == {dut.cycles()} == {divider_cycles(q_bits)} == {q_bits + 1}


def test_divider_softmax_case() -> None:
    """The softmax's division e * 2**30 // S with S >= e, up to S = 2**20 * classes."""
    rng = np.random.default_rng(3)
    pairs = [((1 << 20) << 30, 1 << 20), (1 << 50, (1 << 20) + 1), (0, 10 << 20)]
    for _ in range(40):
        s = int(rng.integers(1 << 20, (10 << 20) + 1))
        e = int(rng.integers(0, min(s, 1 << 20) + 1))
        pairs.append((e << 30, s))
    got, _ = _run(Divider(51, 24, 31), [{"num": n, "den": d} for n, d in pairs], ("quotient",))
    assert got == [(n // d,) for n, d in pairs]


@pytest.mark.parametrize("num_width, den_width, quotient_width, count", [(40, 20, None, 120), (4, 3, None, 0), (24, 8, 12, 80)])
def test_floor_divider_matches_python_floor_division(num_width: int, den_width: int, quotient_width: int | None,
                                                     count: int) -> None:
    """Adam's U = floor(M * 2**e / D): a signed numerator, Python's // and % semantics."""
    rng = np.random.default_rng(num_width)
    lo, hi = -(1 << (num_width - 1)), (1 << (num_width - 1)) - 1
    q_bits = num_width - 1 if quotient_width is None else quotient_width
    if num_width <= 4:
        pairs = [(n, d) for n in range(lo, hi + 1) for d in range(1, 1 << den_width)]
    else:
        d_max = (1 << den_width) - 1
        pairs = [(lo, 1 << (num_width - 1 - q_bits)), (hi, 1 << (num_width - 1 - q_bits)), (lo, d_max), (hi, d_max),
                 (-1, 1), (-1, d_max), (0, 1), (-d_max, d_max), (-d_max - 1, d_max), (-d_max + 1, d_max)]
        while len(pairs) < count:
            d = max(_bits(rng, den_width), 1)
            n = _bits(rng, num_width - 1) * (1 if rng.random() < 0.5 else -1)
            pairs.append((n, d))
        pairs = [(n, d) for n, d in pairs if d < 1 << den_width and -(1 << q_bits) <= n // d < (1 << q_bits)]
    dut = FloorDivider(num_width, den_width, quotient_width)
    got, edges = _run(dut, [{"num": n, "den": d} for n, d in pairs], ("quotient", "remainder"))
    assert got == [(n // d, n % d) for n, d in pairs]
    assert set(edges) == {dut.cycles()} == {q_bits + 1}


@pytest.mark.parametrize("width, count", [(53, 150), (8, 0), (1, 0), (7, 0), (64, 60)])
def test_isqrt_matches_reference(width: int, count: int) -> None:
    rng = np.random.default_rng(width)
    if width <= 8:
        ns = list(range(1 << width))
    else:
        top = (1 << width) - 1
        squares = [r * r for r in (1, 2, 3, (1 << (width // 2)) - 1, 94906265, 94906266) if r * r <= top]
        ns = sorted({0, 1, 2, 3, top, top - 1} | set(squares) | {s - 1 for s in squares} | {s + 1 for s in squares})
        ns = [n for n in ns if 0 <= n <= top]
        ns += [_bits(rng, width) for _ in range(count)]
    dut = ISqrt(width)
    got, edges = _run(dut, [{"n": n} for n in ns], ("root",))
    if width <= 53:  # the reference's documented domain, n < 2**53
        assert [g for (g,) in got] == [int(r) for r in isqrt(np.array(ns, np.int64))]
    assert all(r * r <= n < (r + 1) * (r + 1) for (r,), n in zip(got, ns))
    assert set(edges) == {dut.cycles()} == {isqrt_cycles(width)} == {(width + 1) // 2 + 1}


def test_refusals() -> None:
    with pytest.raises(ConfigError, match="a signed numerator needs at least 2 bits, got 1"):
        FloorDivider(1, 4)
    with pytest.raises(ConfigError, match="the quotient width \\(9 bits\\) exceeds the numerator width \\(8 bits\\)"):
        Divider(8, 4, 9)
    with pytest.raises(ConfigError, match="the radicand width must be a positive number of bits, got 0"):
        ISqrt(0)


def test_units_convert_to_rtlil() -> None:
    from amaranth.back import rtlil

    for dut in (Divider(51, 24, 31), FloorDivider(40, 20), ISqrt(53)):
        assert "module" in rtlil.convert(dut)
