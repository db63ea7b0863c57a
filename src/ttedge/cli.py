"""The ``ttedge`` command: ``train``, ``memory`` and ``ranks`` subcommands.

Configuration overrides follow the subcommand's own options as ``--section.key=value`` (TOML
values; bare words are strings), e.g. ``ttedge train --config configs/mnist_tt.toml
--data.data_dir=~/mnist --train.epochs=5``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .config import load_config
from .errors import ConfigError, TTEdgeError
from .synth.devices import ECP5_SPEED_GRADES, TARGETS
from .train.config import RunConfig

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ttedge", description=__doc__.split("\n")[0], allow_abbrev=False)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", allow_abbrev=False, help="train a model from a config file",
                       epilog="Extra --section.key=value arguments override the config.")
    t.add_argument("--config", help="TOML config file (e.g. configs/digits_tt.toml)")
    t.add_argument("--out", help="run folder to create (default: OUT_DIR/NAME-TIMESTAMP)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    m = sub.add_parser("memory", allow_abbrev=False, help="memory account of a model's training step",
                       epilog="Extra --section.key=value arguments override the config, e.g. --memory.batch_size=64.")
    m.add_argument("--config", help="TOML config file")
    m.add_argument("--json", action="store_true", help="print the account as JSON instead of a table")
    m.add_argument("--plot", metavar="PNG", help="also draw the fixed-point step's breakdown against the dense baseline")
    g = sub.add_parser("program", allow_abbrev=False, help="list a fixed-point config's training program, instruction by instruction",
                       epilog="Extra --section.key=value arguments override the config, e.g. --memory.batch_size=64.")
    g.add_argument("--config", help="TOML config file with a [fixed] section")
    g.add_argument("--json", action="store_true", help="print JSON instead of a table")
    h = sub.add_parser("hw", allow_abbrev=False, help="the training accelerator: generate its Verilog, or simulate it against the reference")
    hsub = h.add_subparsers(dest="hw_command", required=True)
    for name, text in (("generate", "write Verilog, the program image, memory images, the memory map and the cycle model"),
                       ("simulate", "run training steps in simulation, checked bit for bit against the reference interpreter"),
                       ("synth", "synthesize the accelerator (ECP5: place and route and Fmax; xcup and up5k: as the flow allows)")):
        hp = hsub.add_parser(name, allow_abbrev=False, help=text,
                             epilog="Extra --section.key=value arguments override the config, e.g. --train.batch_size=4.")
        hp.add_argument("--config", help="TOML config file with a [fixed] section")
        hp.add_argument("--p", type=int, help="MAC-array rows (default: the config's hw.p)")
        hp.add_argument("--q", type=int, help="MAC-array columns (default: the config's hw.q)")
        hp.add_argument("--batch", type=int, help="samples per step (default: train.batch_size)")
        hp.add_argument("--max-memory-words", type=int, default=1 << 20, help="deepest on-chip memory in words")
        if name == "generate":
            hp.add_argument("--out", required=True, help="folder to write the files into")
            hp.add_argument("--no-verilog", action="store_true", help="skip the Verilog (the slow part for big models)")
        elif name == "synth":
            hp.add_argument("--target", required=True, choices=TARGETS, help="the FPGA family")
            hp.add_argument("--out", required=True, help="folder for the Verilog, netlists and tool logs")
            hp.add_argument("--clock-mhz", type=float, help="clock requested from place and route (default: report.clock_mhz)")
            hp.add_argument("--speed", type=int, default=6, choices=ECP5_SPEED_GRADES, help="ECP5 speed grade (default 6, the slowest; 8 the fastest)")
            hp.add_argument("--seed", type=int, default=1, help="placer seed (default 1); Fmax varies by several percent between seeds")
            hp.add_argument("--json", action="store_true", help="print the flat results as JSON")
        else:
            hp.add_argument("--samples", type=int, default=1, help="training steps to simulate (default 1)")
            hp.add_argument("--json", action="store_true", help="print the report as JSON")
            hp.add_argument("--verilator", metavar="WORKDIR", help="simulate the emitted Verilog under Verilator, building in WORKDIR")
    rp = sub.add_parser("report", allow_abbrev=False,
                        help="the whole pipeline: float rank adaptation, fixed point, accelerator, simulation, synthesis, report",
                        epilog="Extra --section.key=value arguments override the config. A rerun with the same --out "
                               "skips the stages already done.")
    rp.add_argument("--config", help="TOML config file with [bayes], [fixed], [hw] and [report] sections")
    rp.add_argument("--out", required=True, help="folder for every stage's results and the report")
    nt = sub.add_parser("native", allow_abbrev=False,
                        help="build the native (C++) executor of TT contractions, about a minute; without it they run in Python")
    nt.add_argument("--verbose", action="store_true", help="show the compiler's output")
    r = sub.add_parser("ranks", allow_abbrev=False, help="ranks, parameters, memory and accuracy of a run, before and after pruning")
    r.add_argument("run_dir", metavar="RUN_DIR", help="folder of a finished or interrupted training run")
    r.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def _cmd_hw(args: argparse.Namespace, overrides: list[str]) -> int:
    import json

    from .hw import AcceleratorConfig
    from .hw.generate import build, generate

    cfg = load_config(RunConfig, args.config, overrides)
    acc = AcceleratorConfig(p=args.p or cfg.hw.p, q=args.q or cfg.hw.q, max_memory_words=args.max_memory_words)
    program, interp = build(cfg, args.batch)
    if args.hw_command == "synth":
        from .synth import synthesize

        if args.target == "up5k":  # the whole step's fit first: place and route only follows a fit
            from .hw.top import Accelerator
            from .synth import fit_up5k

            fit = fit_up5k(Accelerator(program, acc, interp.state_dict(), external_memories=True), Path(args.out) / "fit")
            print(json.dumps(fit.to_flat(), indent=2) if args.json else fit.render())
            if not fit.fits:
                print(f"error: {fit.message()}", file=sys.stderr)
                return 1
        from .synth.memfit import synthesis_blocker

        if problem := synthesis_blocker(program, acc, args.target):  # memories that cannot be block RAM: stop at once
            print(f"error: {problem}", file=sys.stderr)
            return 1
        files = generate(program, interp.state_dict(), acc, args.out)
        result = synthesize(files["accelerator.v"], "ttedge_accelerator", args.target, args.out,
                            clock_mhz=args.clock_mhz or cfg.report.clock_mhz, speed=args.speed, seed=args.seed)
        flat = result.to_flat()
        print(json.dumps(flat, indent=2) if args.json else result.summary())
        return 0 if result.ok else 1
    if args.hw_command == "generate":
        files = generate(program, interp.state_dict(), acc, args.out, verilog=not args.no_verilog)
        for name, path in files.items():
            print(f"{name:14s} {path}")
        return 0
    from .hw.cycles import cycles_by_kind
    from .hw.sim import simulate
    from .train.loop import load_split

    x, y = load_split(cfg.data, "train")
    b = program.batch
    if args.samples * b > len(x):
        raise TTEdgeError(f"--samples {args.samples} needs {args.samples * b} training samples but there are {len(x)}; simulate fewer steps.")
    batches = [(interp.quantize_input(x[i * b : (i + 1) * b].numpy()), y[i * b : (i + 1) * b].numpy()) for i in range(args.samples)]
    print(f"simulating {args.samples} step(s) of {b} sample(s) on a {acc.p} x {acc.q} array ...", file=sys.stderr)
    if args.verilator:
        from .hw.verilator import verilator_simulate

        rep = verilator_simulate(interp, acc, batches, args.verilator)
    else:
        rep = simulate(interp, acc, batches)
    result = {"steps": len(rep.step_cycles), "step_cycles": rep.step_cycles, "utilization": rep.utilization,
              "bit_exact": not rep.mismatches, "mismatches": rep.mismatches, "compared": rep.compared,
              "by_kind": cycles_by_kind(program, acc)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"bit-exact: {'yes' if result['bit_exact'] else 'NO'} ({rep.compared} buffers and registers compared)")
        print(f"cycles per step: {', '.join(str(c) for c in rep.step_cycles)}; MAC-array utilization {100 * rep.utilization:.1f}%")
        print(f"{'kind':22s} {'count':>5s} {'cycles':>10s} {'MACs':>12s} {'util':>6s}")
        for kind, row in result["by_kind"].items():
            print(f"{kind:22s} {row['count']:5d} {row['cycles']:10d} {row['macs']:12d} {100 * row['utilization']:5.1f}%")
        for line in rep.mismatches:
            print(f"mismatch: {line}")
    return 0 if result["bit_exact"] else 1


def _cmd_native(args: argparse.Namespace, overrides: list[str]) -> int:
    from .tt import native

    print(f"native TT executor: {native.build(verbose=args.verbose)}")
    return 0


def _cmd_ranks(args: argparse.Namespace, overrides: list[str]) -> int:
    import json

    from .train.ranks_report import format_ranks_report, ranks_report

    if overrides:
        raise TTEdgeError(f"ttedge ranks takes no config overrides, got {' '.join(overrides)}; it reads the run's own config.")
    rep = ranks_report(args.run_dir)
    print(json.dumps(rep, indent=2) if args.json else format_ranks_report(rep))
    return 0


def _cmd_train(args: argparse.Namespace, overrides: list[str]) -> int:
    from tqdm import tqdm

    from .train.loop import CONFIG, CURVES, METRICS, new_run_dir, train

    if args.resume:
        if args.config:
            raise TTEdgeError("give either --config or --resume, not both; a resumed run keeps its own config.")
        run_dir = Path(args.resume)
        cfg = load_config(RunConfig, run_dir / CONFIG, overrides)
    else:
        cfg = load_config(RunConfig, args.config, overrides)
        run_dir = Path(args.out) if args.out else new_run_dir(cfg)
    bar: Any = None

    def on_event(event: str, info: dict[str, Any]) -> None:
        nonlocal bar
        if event == "start":
            bar = tqdm(total=info["total_steps"], initial=info["start_step"], unit="step",
                       desc=cfg.name, dynamic_ncols=True)
        elif event == "step":
            bar.update(1)
            bar.set_postfix(loss=f"{info['loss']:.4f}", refresh=False)
        elif event == "epoch":
            ranks = ""
            if "ranks" in info:
                ranks = "  ranks " + " ".join(str(r) for r in info["ranks"].values()) + f", {info['parameters']:,} params"
            bar.write(f"epoch {info['epoch']:3d}  train loss {info['train_loss']:.4f} acc "
                      f"{100 * info['train_acc']:.2f}%  test loss {info['test_loss']:.4f} acc "
                      f"{100 * info['test_acc']:.2f}%  ({info['seconds']:.1f} s){ranks}")

    print(f"run folder: {run_dir}", file=sys.stderr)
    try:
        result = train(cfg, run_dir, resume=bool(args.resume), callback=on_event)
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: ttedge train --resume {run_dir}", file=sys.stderr)
        return 130
    finally:
        if bar is not None:
            bar.close()
    s = result.summary
    print(f"final test accuracy {100 * s['final_test_acc']:.2f}% (best {100 * s['best_test_acc']:.2f}%) after "
          f"{s['epochs']} epochs, {s['train_seconds']:.1f} s of training; {s['parameters']:,} parameters, "
          f"{s['compression']:.1f}x fewer than the dense counterpart")
    print(f"results: {run_dir / METRICS}\nplot:    {run_dir / CURVES}\nconfig:  {run_dir / CONFIG}")
    return 0


def _cmd_memory(args: argparse.Namespace, overrides: list[str]) -> int:
    import json

    from .memory import account_for_config, format_fixed_table, format_table

    cfg = load_config(RunConfig, args.config, overrides)
    table = account_for_config(cfg)  # the fixed-point program's account when [fixed] is enabled
    text = format_fixed_table(table) if cfg.fixed.enabled else format_table(table)
    print(json.dumps(table, indent=2) if args.json else text)
    if args.plot:
        if not cfg.fixed.enabled:
            raise ConfigError("--plot draws a fixed-point training step; use a config with [fixed] enabled = true.")
        from .train.plots import plot_memory

        plot_memory(table, args.plot, title=f"{cfg.name}: training-step memory")
        print(f"plot: {args.plot}")
    return 0


def _cmd_program(args: argparse.Namespace, overrides: list[str]) -> int:
    import json

    from .tt.order_search import search_order

    cfg = load_config(RunConfig, args.config, overrides)
    if not cfg.fixed.enabled:
        raise ConfigError("ttedge program lists fixed-point programs; use a config with [fixed] enabled = true.")
    model, program = cfg.build_fixed(cfg.memory.batch_size)
    rows = program.listing()
    searches = [search_order(layer.in_modes, layer.out_modes, layer.ranks, program.batch, cfg.fixed.order_search or "macs",
                             input_error=li > 0) for li, layer in enumerate(model.layers)]
    orders = [[{"sequence": list(c.sequence), "sweep": c.sweep, "step_macs": c.step_macs, "peak": c.peak,
                "chosen": c.sweep == program.orders[li]} for c in s.costs] for li, s in enumerate(searches)]
    if args.json:
        print(json.dumps({"instructions": rows, "orders": orders}, indent=2))
        return 0
    print(f"Training program of {cfg.name} at batch {program.batch}: {len(rows)} instructions, "
          f"{program.macs:,} multiply-accumulates per step.\n")
    print("| # | instruction | phase | MACs | reads | writes |\n|---:|---|---|---:|---|---|")
    for r in rows:
        print(f"| {r['index']} | {r['kind']} | {r['phase']} | {r['macs']:,} | {', '.join(r['reads'])} | {', '.join(r['writes'])} |")
    print("\nContraction orders per layer (cores in absorption order; the program runs the sweep marked *, "
          "--fixed.order_search=macs|peak picks the best sweep):\n")
    print("| layer | order | step MACs | peak state (values) |\n|---|---|---:|---:|")
    for li, layer_orders in enumerate(orders):
        for o in layer_orders:
            mark = " *" if o["chosen"] else ""
            name = f"{o['sweep']} " if o["sweep"] else ""
            print(f"| {li} | {name}{o['sequence']}{mark} | {o['step_macs']:,} | {o['peak']:,} |")
    return 0


def _cmd_report(args: argparse.Namespace, overrides: list[str]) -> int:
    import time

    from tqdm import tqdm

    from .pipeline import run_pipeline

    cfg = load_config(RunConfig, args.config, overrides)
    bar: Any = None
    started: dict[str, float] = {}

    def on_event(event: str, info: dict[str, Any]) -> None:
        nonlocal bar
        if event.startswith("stage") and bar is not None:
            bar.close()
            bar = None
        if event == "stage":
            started[info["stage"]] = time.perf_counter()
            print(f"[{info['stage']}] ...", file=sys.stderr)
        elif event == "stage-done":
            took = "" if info["cached"] else f" ({time.perf_counter() - started.get(info['stage'], time.perf_counter()):.1f} s)"
            note = " (done before; kept)" if info["cached"] else took
            print(f"[{info['stage']}] done{note}", file=sys.stderr)
        elif event == "stage-missing":
            print(f"[{info['stage']}] not available: {info['why']}", file=sys.stderr)
        elif event == "start":
            bar = tqdm(total=info["total_steps"], initial=info["start_step"], unit="step", desc=info["stage"], dynamic_ncols=True)
        elif event == "step" and bar is not None:
            bar.update(1)
        elif event == "log":  # a synthesis tool's output: minutes of it; show that it moves, and where
            if bar is None:
                bar = tqdm(desc=info["stage"], unit=" log lines", dynamic_ncols=True, bar_format="{desc}: {elapsed}, {n}{unit}{postfix}")
            bar.set_postfix_str(info["line"].strip()[:70], refresh=False)
            bar.update(1)

    path = run_pipeline(cfg, args.out, on_event)
    if bar is not None:
        bar.close()
    print(f"report: {path}\n        {path.with_suffix('.html')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    bad = [a for a in extra if not (a.startswith("--") and "=" in a)]
    if bad:
        parser.error(f"unrecognized arguments: {' '.join(bad)} (overrides are written --section.key=value)")
    try:
        return {"train": _cmd_train, "memory": _cmd_memory, "ranks": _cmd_ranks, "program": _cmd_program, "report": _cmd_report,
                "hw": _cmd_hw, "native": _cmd_native}[args.command](args, extra)
    except TTEdgeError as exc:
        print(f"ttedge: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
