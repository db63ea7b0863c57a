"""The whole ttedge pipeline on one config: float rank adaptation -> fixed point -> accelerator ->
bit-exact simulation -> synthesis -> CPU baseline -> report.

Stages, in order (each writes ``<out>/stages/<stage>.json``; a rerun skips stages whose file
exists, so an interrupted pipeline resumes where it stopped):

1. ``float``: float training with the config's ``[bayes]`` rank adaptation (fixed point off);
   its final ranks feed the next stage.
2. ``fixed``: training wholly in fixed point at those ranks (``[fixed]``, prior off).
3. ``hardware``: the accelerator for that program: Verilog, the program image and memory map.
4. ``simulate``: ``report.sim_steps`` training steps of the accelerator in simulation, compared
   bit for bit with the reference interpreter; cycles per instruction kind and utilization.
5. ``synth``: synthesis (and place and route where open tools exist) for ``report.targets``.
6. ``cpu``: float32 PyTorch training on this CPU, the TT net and the dense 784-512-10 net, at
   batch 1 and 64.
7. ``report``: Markdown, HTML and JSON with plots (``ttedge.report.build``).

A stage that cannot run (a missing tool, a design that does not fit) is recorded as missing with
its reason, and the report is written without it. Library code never prints: progress goes to
``callback(event, info)``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from .config import to_toml
from .errors import ConfigError, TTEdgeError
from .report.build import ReportData, build_report, seconds_per_sample
from .train.config import RunConfig

__all__ = ["run_pipeline", "float_config", "fixed_config"]

Callback = Callable[[str, dict[str, Any]], None]


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)  # atomic: a killed stage leaves no half-written result


def float_config(cfg: RunConfig) -> RunConfig:
    """The float stage's config: fixed point off, rank adaptation as configured."""
    return replace(cfg, fixed=replace(cfg.fixed, enabled=False))


def fixed_config(cfg: RunConfig, ranks: list[list[int]]) -> RunConfig:
    """The fixed stage's config: fixed point on, at ``ranks``, without the prior."""
    return replace(cfg, model=replace(cfg.model, ranks=ranks), bayes=replace(cfg.bayes, enabled=False),
                   fixed=replace(cfg.fixed, enabled=True))


def run_pipeline(cfg: RunConfig, out: str | os.PathLike[str], callback: Callback | None = None) -> Path:
    """Run every stage for ``cfg`` into ``out``; returns the report's Markdown path."""
    emit = callback or (lambda event, info: None)
    out = Path(out)
    (out / "stages").mkdir(parents=True, exist_ok=True)
    text, saved = to_toml(cfg), out / "stages" / "config.toml"
    if saved.exists() and saved.read_text() != text:
        raise ConfigError(f"{out} holds a pipeline run of another config; give a new --out, or the config it was run with "
                          f"({saved}), to resume it.")
    saved.write_text(text)
    results: dict[str, Any] = {}
    missing: dict[str, str] = {}

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        path = out / "stages" / f"{name}.json"
        if path.exists():
            results[name] = json.loads(path.read_text())
            emit("stage-done", {"stage": name, "cached": True, "result": results[name]})
            return results[name]
        emit("stage", {"stage": name})
        try:
            results[name] = fn()
        except TTEdgeError as exc:
            missing[name] = str(exc)
            emit("stage-missing", {"stage": name, "why": str(exc)})
            return None
        if "missing" in results[name]:  # a partial result (e.g. synthesis without place and route): shown, not kept
            missing[name] = results[name]["missing"]
            emit("stage-missing", {"stage": name, "why": results[name]["missing"]})
            return results[name]
        _write_json(path, results[name])
        emit("stage-done", {"stage": name, "cached": False, "result": results[name]})
        return results[name]

    stage("float", lambda: _float_stage(cfg, out, emit))
    stage("fixed", lambda: _fixed_stage(cfg, out, results["float"]["ranks"], emit))
    hw_cfg = fixed_config(cfg, results["float"]["ranks"]) if "float" in results else None
    if hw_cfg is not None and "fixed" in results:
        stage("hardware", lambda: _hardware_stage(hw_cfg, out))
    if "hardware" in results:
        stage("simulate", lambda: _simulate_stage(hw_cfg, out))  # type: ignore[arg-type]
        if not cfg.report.targets:
            missing["synth"] = "synthesis not requested (report.targets is empty)"
        for target in cfg.report.targets:
            stage(f"synth-{target}", lambda t=target: _synth_stage(hw_cfg, out, t, emit))  # type: ignore[misc]
    if hw_cfg is not None:
        stage("cpu", lambda: _cpu_stage(hw_cfg))
    emit("stage", {"stage": "report"})
    path = build_report(_report_data(cfg, hw_cfg, results, missing), out / "report")
    emit("stage-done", {"stage": "report", "cached": False, "result": {"path": str(path)}})
    return path


def _train_events(emit: Callback, stage: str) -> Callback:
    return lambda event, info: emit(event, {**info, "stage": stage})


def _float_stage(cfg: RunConfig, out: Path, emit: Callback) -> dict[str, Any]:
    from .train.loop import train

    result = train(float_config(cfg), out / "float", callback=_train_events(emit, "float"))
    return {"run": str(out / "float"), "ranks": [list(layer.ranks) for layer in result.model.layers],
            "test_acc": result.summary["final_test_acc"], "parameters": result.summary["parameters"],
            "rank_adaptive": cfg.bayes.enabled}


def _fixed_stage(cfg: RunConfig, out: Path, ranks: list[list[int]], emit: Callback) -> dict[str, Any]:
    from .train.loop import train

    fixed = fixed_config(cfg, ranks)
    result = train(fixed, out / "fixed", callback=_train_events(emit, "fixed"))
    return {"run": str(out / "fixed"), "ranks": ranks, "test_acc": result.summary["final_test_acc"]}


def _hardware_program(cfg: RunConfig, out: Path) -> tuple[Any, Any]:
    """The batch-1 program of the fixed run's network and an interpreter holding its trained state
    (state buffers do not depend on the batch, so the trained codes load as they are)."""
    from .hw.generate import build
    from .train.checkpoint import load_checkpoint

    program, interp = build(cfg, 1)
    ckpt = load_checkpoint(out / "fixed" / "checkpoint.pt")
    interp.load_state_dict({k: v.numpy() for k, v in ckpt["fixed_state"].items()})
    return program, interp


def _hardware_stage(cfg: RunConfig, out: Path) -> dict[str, Any]:
    from .hw.generate import generate

    from .synth.memfit import memory_needs

    program, interp = _hardware_program(cfg, out)
    files = generate(program, interp.state_dict(), cfg.hw.accelerator(), out / "hardware")
    return {"files": {k: str(v) for k, v in files.items()}, "top": "ttedge_accelerator", "p": cfg.hw.p, "q": cfg.hw.q,
            "memories": [n.as_dict() for n in memory_needs(program, cfg.hw.accelerator())]}


def _simulate_stage(cfg: RunConfig, out: Path) -> dict[str, Any]:
    from .hw.cycles import cycles_by_kind
    from .hw.sim import simulate
    from .train.loop import load_split

    program, interp = _hardware_program(cfg, out)
    acc = cfg.hw.accelerator()
    x, y = load_split(cfg.data, "train")
    batches = [(interp.quantize_input(x[i : i + 1].numpy()), y[i : i + 1].numpy()) for i in range(cfg.report.sim_steps)]
    rep = simulate(interp, acc, batches)
    kinds = cycles_by_kind(program, acc)
    return {"batch": 1, "steps": len(rep.step_cycles), "step_cycles": rep.step_cycles, "utilization": rep.utilization,
            "bit_exact": not rep.mismatches, "mismatches": rep.mismatches, "compared": rep.compared, "lanes": acc.lanes,
            "macs": program.macs, "cycles_by_kind": {k: v["cycles"] for k, v in kinds.items()},
            "macs_by_kind": {k: v["macs"] for k, v in kinds.items()}}


def _synth_stage(cfg: RunConfig, out: Path, target: str, emit: Callback) -> dict[str, Any]:
    """Synthesis (and place and route) of the hardware stage's design for ``target``. For the iCE40
    UP5K the fit of the whole accelerator comes first (``ttedge.synth.fit``: memory plan, logic
    synthesized with the memories as black boxes), and place and route only follows a fit."""
    from .synth import SynthesisError, synthesize

    on_log: Callable[[str], None] = lambda line: emit("log", {"stage": f"synth-{target}", "line": line})  # noqa: E731
    flat: dict[str, Any] = {}
    if target == "up5k":
        from .hw.top import Accelerator
        from .synth import fit_up5k

        program, interp = _hardware_program(cfg, out)
        dut = Accelerator(program, cfg.hw.accelerator(), interp.state_dict(), external_memories=True)
        fit = fit_up5k(dut, out / "synth" / "up5k-fit", on_log=on_log)
        flat = {**fit.to_flat(), "up5k.fit": fit.summary()}
        if not fit.fits:
            return {**flat, "missing": fit.message()}
    else:  # memories that cannot be block RAM: stop before a synthesis that cannot succeed
        from .synth.memfit import synthesis_blocker

        if problem := synthesis_blocker(_hardware_program(cfg, out)[0], cfg.hw.accelerator(), target, cfg.report.ecp5_device):
            return {f"{target}.status": "does_not_fit", f"{target}.message": problem, "missing": problem}
    hardware = json.loads((out / "stages" / "hardware.json").read_text())
    try:
        part = {"device": cfg.report.ecp5_device} if target == "ecp5" else {}
        result = synthesize(Path(hardware["files"]["accelerator.v"]), hardware["top"], target, out / "synth" / target,  # type: ignore[arg-type]
                            clock_mhz=cfg.report.clock_mhz, on_log=on_log, **part)
    except SynthesisError as exc:
        return {**flat, **exc.result.to_flat(), "missing": str(exc)}
    flat.update(result.to_flat())
    if not result.ok:
        flat["missing"] = str(flat.get(f"{target}.message", f"{target} synthesis did not finish"))
    return flat


def _cpu_stage(cfg: RunConfig) -> dict[str, Any]:
    from .data import NUM_CLASSES, num_features
    from .models import build_model, dense_counterpart
    from .report.cpu import CPU_POWER_SOURCE, time_training

    width = num_features(cfg.data.name, cfg.data.pad_width or None)
    tt = build_model(cfg.model, width, NUM_CLASSES, seed=cfg.train.seed)
    rows = []
    for batch in (1, 64):
        rows.append(time_training(tt, width, NUM_CLASSES, batch, "ttedge TT net", steps=cfg.report.cpu_steps).to_dict())
        rows.append(time_training(dense_counterpart(tt), width, NUM_CLASSES, batch, "dense counterpart",
                                  steps=cfg.report.cpu_steps).to_dict())
    return {"timings": rows, "power_source": CPU_POWER_SOURCE}


def _energy(cfg: RunConfig, cycles: dict[str, Any], fmax_mhz: float) -> dict[str, Any]:
    from .synth.energy import ecp5_energy_model, step_energy

    _, program = cfg.build_fixed(1)  # the simulated batch-1 program; its traffic does not depend on the trained codes
    model = ecp5_energy_model(cfg.report.ecp5_device)  # the part placed and routed: its static power
    return {**step_energy(program, cfg.hw.accelerator(), seconds_per_sample(cycles, fmax_mhz), model), "fmax_mhz": fmax_mhz}


def _report_data(cfg: RunConfig, hw_cfg: RunConfig | None, results: dict[str, Any], missing: dict[str, str]) -> ReportData:
    from .memory import compare_fixed

    data = ReportData(cfg.name, missing=dict(missing))
    if hw_cfg is not None:
        data.memory = compare_fixed(replace(hw_cfg, memory=replace(hw_cfg.memory, batch_size=1)))
        runs = []
        if "float" in results:
            f = results["float"]
            runs.append({"label": "float32, ranks " + str(f["ranks"]), "mode": "float32 PyTorch", "core": "fp32",
                         "test_acc": f["test_acc"], "parameter_ratio": _float_ratio(data.memory, f), "step_ratio": None})
        if "fixed" in results:
            runs.append({"label": f"fixed {hw_cfg.fixed.core}", "mode": "fixed point (interpreter)", "core": hw_cfg.fixed.core,
                         "test_acc": results["fixed"]["test_acc"], "parameter_ratio": data.memory["parameter_ratio"],
                         "step_ratio": data.memory["step_ratio"]})
        data.accuracy = runs
        data.orders = _orders(hw_cfg)
    if "hardware" in results:
        data.memories = results["hardware"].get("memories")  # absent in runs made before it was recorded
    if "simulate" in results:
        data.cycles = results["simulate"]
        if not results["simulate"]["bit_exact"]:
            data.missing["bit-exactness"] = "the simulated accelerator differed from the interpreter: " + "; ".join(results["simulate"]["mismatches"][:5])
    synth = {k.split("-", 1)[1]: v for k, v in results.items() if k.startswith("synth-")}
    if synth:
        data.synth = synth
    if "cpu" in results:
        data.cpu, data.cpu_power_source = results["cpu"]["timings"], results["cpu"]["power_source"]
    fmax = synth.get("ecp5", {}).get("ecp5.fmax_mhz")
    if data.cycles is not None and fmax and hw_cfg is not None:
        data.energy = _energy(hw_cfg, data.cycles, float(fmax))
    elif "energy" not in data.missing:
        data.missing["energy"] = "needs simulated cycles and an ECP5 Fmax"
    return data


def _float_ratio(memory: dict[str, Any], run: dict[str, Any]) -> float:
    """Dense fp32 parameters over the float TT net's fp32 parameters."""
    return memory["dense_bits"]["parameters"] / (32 * run["parameters"])


def _orders(cfg: RunConfig) -> list[dict[str, Any]]:
    """Per layer of the fixed network: the sweep its batch-1 program runs and the order search's figures."""
    from .tt.order_search import search_order

    model, program = cfg.build_fixed(1)
    rows = []
    for li, (layer, sweep) in enumerate(zip(model.layers, program.orders)):
        search = search_order(layer.in_modes, layer.out_modes, layer.ranks, 1, "macs", input_error=li > 0)
        chosen = next(c for c in search.costs if c.sweep == sweep)
        rows.append({"layer": li, "chosen": sweep, "chosen_sequence": list(chosen.sequence), "chosen_macs": chosen.step_macs,
                     "rtl_macs": search.rtl.step_macs, "best_sequence": list(search.best.sequence), "best_macs": search.best.step_macs})
    return rows
