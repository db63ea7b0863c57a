"""RandomLane against ttedge.fixed.rng.random_bits_scalar, in amaranth.sim, one request per cycle."""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from ttedge.fixed.rng import ROUNDS, random_bits_scalar
from ttedge.hw.rng import RandomLane

_MAX = (1 << 32) - 1


def _vectors() -> list[tuple[int, int, int, int]]:
    rng = np.random.default_rng(20261125)
    edges = [(0, 0, 0, 0), (_MAX, _MAX, _MAX, _MAX), (0, 0, 0, 1), (1, 0, 0, 0), (0, _MAX, 0, _MAX)]
    # Walking ones in each coordinate exercise every adder carry chain end.
    walking = [tuple((1 << bit) if i == pos else 0 for i in range(4)) for pos in range(4) for bit in (0, 15, 31)]
    rand = [tuple(int(w) for w in row) for row in rng.integers(0, 1 << 32, size=(300, 4), dtype=np.uint64)]
    return edges + walking + rand  # type: ignore[return-value]


def test_latency_is_four_stages_per_round_after_the_first_key() -> None:
    """One adder per stage: the first key, then a + b, c + d twice per round (the simulation
    below measures the latency itself)."""
    assert RandomLane.LATENCY == 4 * ROUNDS + 1


def test_random_lane_matches_reference_one_per_cycle() -> None:
    dut = RandomLane()
    vectors = _vectors()
    expected = [random_bits_scalar(*v) for v in vectors]
    got: list[int] = []
    first_valid: list[int] = []

    async def bench(ctx) -> None:  # type: ignore[no-untyped-def]
        cycle = 0
        # A gap (valid low) in the middle checks that valid travels with its data.
        schedule = vectors[:10] + [None] + vectors[10:]
        for item in schedule + [None] * (RandomLane.LATENCY + 1):
            if item is None:
                ctx.set(dut.valid, 0)
            else:
                ctx.set(dut.valid, 1)
                for port, value in zip((dut.seed, dut.stream, dut.step, dut.index), item):
                    ctx.set(port, value)
            await ctx.tick()
            cycle += 1
            if ctx.get(dut.valid_out):
                if not first_valid:
                    first_valid.append(cycle)
                got.append(ctx.get(dut.word))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == expected
    assert first_valid == [RandomLane.LATENCY]


def test_random_lane_converts_to_rtlil() -> None:
    from amaranth.back import rtlil

    assert "module" in rtlil.convert(RandomLane())
