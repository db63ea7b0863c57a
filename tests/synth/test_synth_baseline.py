"""Committed baselines with per-key tolerances."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ttedge.synth import BaselineError, Tolerance, check_against_baseline, compare_to_baseline, write_baseline

FLAT = {"ecp5.lut4": 805, "ecp5.fmax_mhz": 49.37, "ecp5.status": "ok", "ecp5.fits": True, "ecp5.dp16kd": 2}
TOL = {"ecp5.lut4": {"rel": 0.05}, "ecp5.fmax_mhz": Tolerance(rel=0.1, abs=1.0)}


@pytest.fixture
def baseline(tmp_path: Path) -> Path:
    return write_baseline(FLAT, tmp_path / "b.json", TOL)


def test_written_baseline_is_plain_json(baseline: Path) -> None:
    data = json.loads(baseline.read_text())
    assert data["values"] == dict(sorted(FLAT.items()))
    assert data["tolerances"] == {"ecp5.fmax_mhz": {"rel": 0.1, "abs": 1.0}, "ecp5.lut4": {"rel": 0.05}}


def test_identical_and_within_tolerance_pass(baseline: Path) -> None:
    check_against_baseline(FLAT, baseline)
    moved = FLAT | {"ecp5.lut4": 845, "ecp5.fmax_mhz": 44.5, "ecp5.extra_key": 1}  # +4.97 %, -4.87 MHz
    assert compare_to_baseline(moved, baseline) == []


def test_tolerance_is_the_larger_of_relative_and_absolute() -> None:
    t = Tolerance(rel=0.1, abs=1.0)
    assert t.allows(5.0, 5.99) and not t.allows(5.0, 6.01)
    assert t.allows(100.0, 109.9) and not t.allows(100.0, 110.1)
    assert Tolerance().allows(3, 3) and not Tolerance().allows(3, 4)
    assert str(t) == "±10% or ±1" and str(Tolerance()) == "exact"


def test_failure_lists_every_moved_figure_readably(baseline: Path) -> None:
    moved = {k: v for k, v in FLAT.items() if k != "ecp5.dp16kd"} | {"ecp5.lut4": 900, "ecp5.status": "pnr_failed"}
    with pytest.raises(BaselineError) as info:
        check_against_baseline(moved, baseline)
    lines = str(info.value).splitlines()
    assert lines[0] == (
        f"3 figures moved beyond tolerance from the baseline {baseline}; fix the regression, or rewrite the "
        "baseline with write_baseline if the change is intended:"
    )
    assert lines[1:] == [
        "  ecp5.dp16kd: baseline 2, now <missing>, allowed exact",
        "  ecp5.lut4: baseline 805, now 900 (+11.8%), allowed ±5%",
        "  ecp5.status: baseline 'ok', now 'pnr_failed', allowed exact",
    ]


def test_booleans_and_strings_compare_exactly(baseline: Path) -> None:
    [m] = compare_to_baseline(FLAT | {"ecp5.fits": False}, baseline)
    assert m.key == "ecp5.fits"
    [m] = compare_to_baseline(FLAT | {"ecp5.fits": 1}, baseline)  # 1 is not True for a figure
    assert m.key == "ecp5.fits"


def test_tolerances_argument_overrides_the_file(baseline: Path) -> None:
    moved = FLAT | {"ecp5.lut4": 900}
    assert compare_to_baseline(moved, baseline, {"ecp5.lut4": 0.2}) == []


def test_unusable_baselines_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="does not exist; write it with write_baseline"):
        check_against_baseline(FLAT, tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(BaselineError, match="is not valid JSON"):
        check_against_baseline(FLAT, bad)
    bad.write_text('{"ecp5.lut4": 1}')
    with pytest.raises(BaselineError, match="has no 'values' object"):
        check_against_baseline(FLAT, bad)
    with pytest.raises(BaselineError, match="unknown fields \\['relative'\\]"):
        Tolerance.parse({"relative": 0.1})
