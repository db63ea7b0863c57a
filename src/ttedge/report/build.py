"""The report: every figure of a pipeline run beside the paper's, in Markdown, HTML and JSON.

:func:`build_report` takes what the pipeline stages produced (each part optional: a stage that
failed or was skipped leaves its part ``None`` and an entry in ``missing``) and writes
``report.md``, ``report.html`` and ``report.json`` plus the plots into a folder. The headline
table compares with the paper's three claims; each row says how its figure was obtained, and a row
whose inputs are missing says which and is left empty rather than estimated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only
import matplotlib.pyplot as plt  # noqa: E402

from ..synth.energy import latency_s  # noqa: E402
from ..train.plots import plot_memory  # noqa: E402
from .document import Section, Table, to_html, to_markdown  # noqa: E402

__all__ = ["PAPER", "ReportData", "build_report", "headline", "seconds_per_sample"]

# arXiv 2104.03420, abstract: training memory vs full-size training, speed and energy vs an embedded CPU.
PAPER = {"memory": 292.0, "speed": 59.0, "energy": 123.0}


@dataclass
class ReportData:
    """What the pipeline measured; every part may be None (then ``missing`` says why)."""

    name: str
    memory: dict[str, Any] | None = None  # ttedge.memory.compare_fixed
    accuracy: list[dict[str, Any]] | None = None  # runs: label, mode, core bits, test_acc, parameter_ratio, step_ratio
    cycles: dict[str, Any] | None = None  # batch, step_cycles, cycles_by_kind, macs_by_kind, lanes, utilization, steps, bit_exact
    synth: dict[str, dict[str, Any]] | None = None  # target -> flat synthesis result (or {"error": ...})
    energy: dict[str, Any] | None = None  # joules per sample on the FPGA, with its breakdown and constants
    cpu: list[dict[str, Any]] | None = None  # report.cpu.CpuTiming.to_dict() rows
    cpu_power_source: str = ""
    orders: list[dict[str, Any]] | None = None  # per layer: chosen sweep, its step MACs, right-to-left's, the best of all orders
    memories: list[dict[str, Any]] | None = None  # the accelerator's on-chip memories: ttedge.synth.memfit.MemoryNeed.as_dict()
    missing: dict[str, str] = field(default_factory=dict)  # part -> why it is absent


def seconds_per_sample(cycles: dict[str, Any], fmax_mhz: float) -> float:
    """Training time per sample at ``fmax_mhz``: the simulated steps' mean cycles over the batch."""
    return latency_s(sum(cycles["step_cycles"]) / len(cycles["step_cycles"]), fmax_mhz) / cycles["batch"]


def _fpga_seconds_per_sample(d: ReportData) -> float | None:
    if d.cycles is None or not d.synth or "ecp5" not in d.synth or not d.synth["ecp5"].get("ecp5.fmax_mhz"):
        return None
    return seconds_per_sample(d.cycles, d.synth["ecp5"]["ecp5.fmax_mhz"])


def _cpu_row(d: ReportData, name: str, batch: int) -> dict[str, Any] | None:
    return next((r for r in d.cpu or [] if r["name"] == name and r["batch"] == batch), None)


def headline(d: ReportData) -> list[list[str]]:
    """Rows: claim, paper, ttedge, how obtained."""
    rows = []
    if d.memory is not None:
        rows.append(["training memory, parameters (vs full-size fp32)", f"{PAPER['memory']:.0f}x",
                     f"{d.memory['parameter_ratio']:.1f}x",
                     f"bits of the compiled program's cores and biases vs the fp32 parameters of {d.memory['baseline']}; "
                     f"whole step {d.memory['step_ratio']:.1f}x ({d.memory['step_ratio_shared']:.1f}x with buffer reuse)"])
    else:
        rows.append(["training memory", f"{PAPER['memory']:.0f}x", "-", "missing: " + d.missing.get("memory", "not computed")])
    fpga_s = _fpga_seconds_per_sample(d)
    cpu = _cpu_row(d, "ttedge TT net", 1)
    if fpga_s is not None and cpu is not None:
        rows.append(["training speed per sample (vs CPU)", f"{PAPER['speed']:.0f}x (embedded CPU)",
                     f"{cpu['seconds_per_sample'] / fpga_s:.1f}x",
                     f"this machine's CPU, PyTorch fp32, batch 1, {cpu['threads']} thread, median of {cpu['steps']} steps: "
                     f"{cpu['seconds_per_sample'] * 1e3:.3f} ms; "
                     f"accelerator: simulated cycles / {(d.synth or {}).get('ecp5', {}).get('ecp5.device', 'ECP5')} Fmax "
                     f"= {fpga_s * 1e3:.4f} ms"])
    else:
        why = [d.missing[k] for k in ("cycles", "synth", "cpu") if k in d.missing] or ["cycles, Fmax or CPU timing absent"]
        rows.append(["training speed per sample", f"{PAPER['speed']:.0f}x", "-", "missing: " + "; ".join(why)])
    if d.energy is not None and cpu is not None:
        joules = d.energy["joules_per_sample"]
        rows.append(["training energy per sample (vs CPU)", f"{PAPER['energy']:.0f}x (embedded CPU)",
                     f"{cpu['joules_per_sample'] / joules:.0f}x",
                     f"CPU: measured time x {cpu['watts']:.1f} W ({d.cpu_power_source}); accelerator: "
                     f"per-operation energy model {joules * 1e6:.2f} uJ (modelled, constants cited below)"])
    else:
        rows.append(["training energy per sample", f"{PAPER['energy']:.0f}x", "-",
                     "missing: " + d.missing.get("energy", "energy model or CPU timing absent")])
    return rows


def _accuracy_plot(runs: list[dict[str, Any]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in runs:
        ax.scatter(r["parameter_ratio"], 100 * r["test_acc"], s=40)
        ax.annotate(r["label"], (r["parameter_ratio"], 100 * r["test_acc"]), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.set(xscale="log", xlabel="parameter memory ratio vs dense fp32 (log)", ylabel="test accuracy %",
           title="accuracy vs bits vs memory")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _resources_plot(synth: dict[str, dict[str, Any]], path: Path) -> bool:
    bars = [(f"{t}: {k.split('.', 1)[1]}", r[k] / r[f"{k}_capacity"]) for t, r in synth.items()
            for k in r if f"{k}_capacity" in r and r.get(f"{k}_capacity")]
    if not bars:
        return False
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(bars) + 1.2))
    ax.barh([b[0] for b in bars], [100 * b[1] for b in bars])
    ax.axvline(100, color="red", lw=1)
    ax.set(xlabel="% of the part's capacity", title="resources vs capacity")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def _cycles_plot(cycles: dict[str, Any], path: Path) -> None:
    kinds = sorted(cycles["cycles_by_kind"], key=lambda k: -cycles["cycles_by_kind"][k])
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(kinds) + 1.2))
    ax.barh(kinds, [cycles["cycles_by_kind"][k] for k in kinds])
    ax.set(xlabel="cycles per training step", title=f"cycles per instruction kind (MAC-array utilization "
                                                     f"{100 * cycles['utilization']:.1f}%)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def build_report(d: ReportData, folder: str | Path) -> Path:
    """Write report.md, report.html, report.json and the plots into ``folder``; returns report.md."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sections = [Section("Headline: ttedge beside the paper", [
        "The paper (arXiv 2104.03420) claims 292x less training memory than full-size training, and 59x speed "
        "and 123x energy over an embedded CPU. Each ttedge figure below was obtained in this run as stated; "
        "an empty cell means its inputs are missing, never an estimate."],
        [Table(["claim", "paper", "ttedge", "how obtained"], headline(d), {1, 2})])]
    if d.missing:
        sections.append(Section("Missing parts", ["This report is partial:"],
                                [Table(["part", "why"], [[k, v] for k, v in d.missing.items()])]))
    if d.memory is not None:
        plot_memory(d.memory, folder / "memory.png", title=f"{d.name}: training-step memory")
        f = d.memory["fixed_bits"]
        rows = [[k, f"{v:,}", f"{v / 8192:.1f}"] for k, v in f.items()]
        sections.append(Section("Memory of one training step", [
            f"From the compiled program's buffer list at batch {d.memory['batch_size']}, against {d.memory['baseline']}."],
            [Table(["kind", "bits", "KiB"], rows, {1, 2})], [("memory.png", "memory breakdown")]))
    if d.accuracy:
        _accuracy_plot(d.accuracy, folder / "accuracy.png")
        rows = [[r["label"], r["mode"], str(r.get("core", "")), f"{100 * r['test_acc']:.2f}%",
                 f"{r['parameter_ratio']:.1f}x", "-" if r["step_ratio"] is None else f"{r['step_ratio']:.1f}x"] for r in d.accuracy]
        sections.append(Section("Accuracy vs bits vs memory", [], [
            Table(["run", "mode", "cores", "test accuracy", "parameter ratio", "whole-step ratio"], rows, {3, 4, 5})],
            [("accuracy.png", "accuracy vs memory")]))
    if d.orders:
        chosen, rtl = sum(o["chosen_macs"] for o in d.orders), sum(o["rtl_macs"] for o in d.orders)
        rows = [[str(o["layer"]), f"{o['chosen']} {o['chosen_sequence']}", f"{o['chosen_macs']:,}", f"{o['rtl_macs']:,}",
                 f"{o['best_sequence']} ({o['best_macs']:,})"] for o in d.orders]
        sections.append(Section("Contraction order", [
            f"Every contiguous absorption order of each layer was costed (ttedge.tt.order_search); the program runs the "
            f"chosen sweep. MACs per training step at batch 1: {chosen:,}; right-to-left everywhere (the research "
            f"code's order) needs {rtl:,}, {rtl / chosen:.2f}x as many."],
            [Table(["layer", "order run", "step MACs", "right-to-left", "best of all orders"], rows, {2, 3})]))
    if d.memories:
        rows = [[m["name"], f"{m['depth']:,} x {m['width']}", str(m["reads"]), str(m["writes"]), m["built_as"]] for m in d.memories]
        sections.append(Section("On-chip memories", [
            "One memory per word width. Where no instruction reaches two of its buffers through two ports in one "
            "cycle it is split into banks of one read and one write port, held in block RAMs (ttedge.hw.banks); "
            "otherwise synthesis replicates it per read port, or, with several write ports, builds it from flip-flops."],
            [Table(["memory", "words x bits", "read ports", "write ports", "built as"], rows, {1, 2, 3})]))
    if d.synth:
        rows = [[t, k, str(v)] for t, r in d.synth.items() for k, v in r.items() if not isinstance(v, dict)]
        images = [("resources.png", "resources vs capacity")] if _resources_plot(d.synth, folder / "resources.png") else []
        sections.append(Section("Synthesis, place and route", [
            "ECP5 figures come from Yosys and nextpnr (real place and route, Fmax as nextpnr reports it). Zynq "
            "UltraScale+ figures are Yosys synth_xilinx resource estimates only: its timing needs Vivado."],
            [Table(["target", "key", "value"], rows)], images))
    fit = (d.synth or {}).get("up5k", {}).get("up5k.fit")
    if fit:
        sections.append(Section("iCE40 UP5K: does the whole training step fit?", [
            "Memories from the plan of every buffer of the step; logic from Yosys synth_ice40 of the accelerator "
            "with its memories as black boxes (ttedge.synth.fit).", fit["message"], fit["logic"]]
            + ([fit["shrink"]] if fit["shrink"] else []),
            [Table(["unit", "instances", "LUT4", "flip-flops"], fit["units"], {1, 2, 3}),
             Table(["buffer", "kind", "bits", "placed"], fit["buffers"], {2})]))
    if d.cycles is not None:
        _cycles_plot(d.cycles, folder / "cycles.png")
        rows = [[k, f"{v:,}", f"{d.cycles['macs_by_kind'].get(k, 0):,}"] for k, v in d.cycles["cycles_by_kind"].items()]
        sections.append(Section("Cycles and MAC-array utilization", [
            f"{len(d.cycles['step_cycles'])} simulated training steps, bit-exact against the reference interpreter: "
            f"{d.cycles['bit_exact']}; {d.cycles['lanes']} MAC lanes; utilization {100 * d.cycles['utilization']:.1f}%."],
            [Table(["instruction kind", "cycles per step", "MACs per step"], rows, {1, 2})], [("cycles.png", "cycles")]))
    if d.cpu:
        rows = [[r["name"], str(r["batch"]), str(r["threads"]), f"{r['seconds_per_sample'] * 1e3:.4f}",
                 f"{r['joules_per_sample'] * 1e3:.3f}"] for r in d.cpu]
        sections.append(Section("CPU baseline (measured here)", [f"Power: {d.cpu_power_source}."],
                                [Table(["network", "batch", "threads", "ms per sample", "mJ per sample"], rows, {1, 2, 3, 4})]))
    if d.energy is not None:
        rows = [[k, str(v)] for k, v in d.energy.items() if not isinstance(v, dict)]
        sections.append(Section("Energy model", ["Modelled, not measured: no open tool estimates FPGA power."],
                                [Table(["quantity", "value"], rows)]))
    title = f"ttedge report: {d.name}"
    (folder / "report.md").write_text(to_markdown(title, sections))
    (folder / "report.html").write_text(to_html(title, sections, folder))
    (folder / "report.json").write_text(json.dumps({k: v for k, v in d.__dict__.items()}, indent=2, default=str) + "\n")
    return folder / "report.md"
