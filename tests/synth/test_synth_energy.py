"""The per-operation energy model's arithmetic and its cited constants."""

from __future__ import annotations

import math

import pytest

from ttedge.errors import ConfigError
from ttedge.synth import ECP5_85F, EnergyModel, OpCounts, latency_s
from ttedge.synth.energy import ECP5_25F


def test_horowitz_points_are_reproduced_times_the_fpga_factor() -> None:
    m = EnergyModel(fpga_factor=1.0)
    assert math.isclose(m.add_pj(8), 0.03) and math.isclose(m.add_pj(32), 0.1)
    assert math.isclose(m.mult_pj(8), 0.2) and math.isclose(m.mult_pj(32, 32), 3.1)
    assert math.isclose(ECP5_85F.mult_pj(8), 0.2 * 14) and math.isclose(ECP5_85F.add_pj(32), 0.1 * 14)


def test_widths_follow_the_power_law_between_the_points() -> None:
    m = EnergyModel(fpga_factor=1.0)
    # log-log midpoint of 8 and 32 bits is 16 bits: the geometric mean of the two energies
    assert math.isclose(m.add_pj(16), math.sqrt(0.03 * 0.1))
    assert math.isclose(m.mult_pj(16), math.sqrt(0.2 * 3.1))
    assert math.isclose(m.mult_pj(8, 32), m.mult_pj(16))  # same operand-width product
    assert m.add_pj(4) < m.add_pj(8) < m.add_pj(48) and m.mult_pj(4) < m.mult_pj(18) < m.mult_pj(64)


def test_breakdown_adds_up() -> None:
    m = EnergyModel(fpga_factor=2.0, static_power_w=0.5, read_pj_per_bit=0.25, write_pj_per_bit=0.5)
    counts = OpCounts(mults={8: 10, (8, 32): 3}, adds={32: 7}, mem_read_bits=64, mem_write_bits=8, seconds=2e-6)
    e = m.energy_pj(counts)
    assert math.isclose(e["mult"], 10 * m.mult_pj(8) + 3 * m.mult_pj(8, 32))
    assert math.isclose(e["add"], 7 * 2.0 * 0.1)
    assert math.isclose(e["mem_read"], 2.0 * 0.25 * 64) and math.isclose(e["mem_write"], 2.0 * 0.5 * 8)
    assert math.isclose(e["static"], 0.5 * 2e-6 * 1e12)  # W x s in pJ
    assert math.isclose(e["dynamic"], e["mult"] + e["add"] + e["mem_read"] + e["mem_write"])
    assert math.isclose(e["total"], e["dynamic"] + e["static"])


def test_default_constants_are_the_cited_ones() -> None:
    m = ECP5_85F
    assert (m.add_8b_pj, m.add_32b_pj, m.mult_8b_pj, m.mult_32b_pj) == (0.03, 0.1, 0.2, 3.1)
    assert math.isclose(m.read_pj_per_bit, 10 / 64) and m.fpga_factor == 14.0
    # data sheet: 25F standby 77 mA at 1.1 V + 16 mA at 2.5 V; the 85F scales the core by LUT count
    assert math.isclose(ECP5_25F.static_power_w, 0.077 * 1.1 + 0.016 * 2.5)
    assert math.isclose(m.static_power_w, 0.077 * 1.1 * 83640 / 24288 + 0.016 * 2.5)
    rows = m.constants()
    assert len(rows) == 8 and all(source for *_, source in rows)
    assert {name for name, *_ in rows} >= {"add_8b", "mult_32b", "sram_read", "fpga_factor", "static_power"}


def test_bad_counts_are_refused() -> None:
    with pytest.raises(ConfigError, match="positive integers of bits"):
        OpCounts(mults={0: 1})
    with pytest.raises(ConfigError, match="non-negative"):
        OpCounts(adds={8: -1})
    with pytest.raises(ConfigError, match="non-negative"):
        OpCounts(seconds=-1.0)


def test_latency_is_cycles_over_fmax() -> None:
    assert math.isclose(latency_s(125_000, 125.0), 1e-3)
    with pytest.raises(ConfigError, match="must be positive"):
        latency_s(10, 0.0)
    with pytest.raises(ConfigError, match="non-negative"):
        latency_s(-1, 100.0)


def test_static_power_cites_its_own_source() -> None:
    sources = {name: source for name, _, _, source in ECP5_85F.constants()}
    assert sources["static_power"] == ("LFE5U-85F: ECP5 data sheet FPGA-DS-02012, static I_CC and I_CCAUX of the "
                                       "LFE5U-25F, core scaled by LUT count to the 85F")
    board = EnergyModel(static_power_w=1.5, device="XCZU3EG", static_source="a measured board figure")
    assert dict((n, s) for n, _, _, s in board.constants())["static_power"] == "XCZU3EG: a measured board figure"


def test_ecp5_energy_model_per_part() -> None:
    from ttedge.synth.energy import ECP5_25F, ECP5_85F, ecp5_energy_model

    assert ecp5_energy_model("25k") is ECP5_25F
    assert ecp5_energy_model("85k").static_power_w == ECP5_85F.static_power_w
    mid = ecp5_energy_model("45k")
    assert mid.device == "LFE5U-45F" and ECP5_25F.static_power_w < mid.static_power_w < ECP5_85F.static_power_w
