"""Forward+backward time and peak memory of ttedge's TTLinear against nn.Linear and tensorly-torch.

    .venv/bin/python benchmarks/bench_ttlinear.py [--quick] [--threads N] [--out benchmarks/results]

A full run writes <out>/ttlinear.json and the "TTLinear forward+backward" section of
benchmarks/RESULTS.md (only the region between its markers). ``--quick`` is a smoke run with few
repeats that writes <out>/ttlinear.quick.json and <out>/RESULTS.quick.md instead, so it never
overwrites the committed numbers. Method and caveats: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch._C._profiler import _EventType, _ProfilerEvent
from torch.profiler import ProfilerActivity, profile
from tqdm import tqdm

from ttedge.tt import TTLinear, native, plan_contraction

from results_md import RESULTS_MD, write_section  # benchmarks/ is on sys.path when run as a script

BEGIN, END = "<!-- ttlinear:begin -->", "<!-- ttlinear:end -->"
INSTALL_HINT = "pip install -e .[bench]"
BATCHES = (1, 64)


@dataclass(frozen=True)
class Shape:
    name: str  # "in x out", as in nn.Linear(in, out)
    in_modes: tuple[int, ...]
    out_modes: tuple[int, ...]
    rank: int  # uniform inner TT rank


SHAPES = (
    Shape("896x512 (MNIST fc1)", (7, 4, 2, 16), (4, 4, 2, 16), 16),
    Shape("4096x4096 d=4", (8, 8, 8, 8), (8, 8, 8, 8), 16),
    Shape("4096x4096 d=3", (16, 16, 16), (16, 16, 16), 16),
    Shape("4096x4096 d=2", (64, 64), (64, 64), 16),  # half the MACs of the dense product
)
# The 4096x4096 factorization we recommend: order "auto" merges its cores (1, 2) and (3, 4), so it
# sweeps like [64, 64] (half the dense MACs) while storing 3.5x fewer parameters than [64, 64].
RECOMMENDED = "4096x4096 d=4"


@dataclass(frozen=True)
class Settings:
    warmup: int  # untimed fwd+bwd steps per layer before timing
    repeats: int  # minimum timed rounds; a round times every layer once, in turn
    min_seconds: float  # keep adding rounds until the case has been timed this long


FULL, QUICK = Settings(10, 40, 3.0), Settings(2, 5, 0.0)


def build(shape: Shape) -> tuple[dict[str, nn.Module], str | None]:
    """ttedge, nn.Linear and (if importable) tensorly-torch layers holding the same weight and bias;
    with the reason tensorly-torch was skipped, if it was."""
    torch.manual_seed(0)
    tt = TTLinear(shape.in_modes, shape.out_modes, shape.rank, bias=True, order="auto")
    dense = nn.Linear(tt.in_features, tt.out_features)
    with torch.no_grad():
        dense.weight.copy_(tt.weight_dense())
        dense.bias.copy_(tt.bias)
    layers: dict[str, nn.Module] = {"ttedge": tt, "nn.Linear": dense}
    try:
        import tltorch
    except ImportError as err:
        return layers, f"tensorly-torch is not importable ({err}); install it with `{INSTALL_HINT}`"
    tl = tltorch.FactorizedLinear(
        in_tensorized_features=tuple(tt.in_modes), out_tensorized_features=tuple(tt.out_modes),
        factorization="blocktt", rank=(1, *tt.ranks, 1), implementation="factorized", bias=True)
    # BlockTT factor k is (r_{k-1}, m_k, n_k, r_k): the layout of our core k, so copies fit exactly.
    factors = list(tl.weight.factors)
    if [f.shape for f in factors] != [c.shape for c in tt.cores]:
        raise AssertionError(f"tltorch cores {[tuple(f.shape) for f in factors]} differ from ours")
    with torch.no_grad():
        for f, c in zip(factors, tt.cores):
            f.copy_(c)
        tl.bias.copy_(tt.bias)
    layers["tltorch"] = tl
    return layers, None


def fwd_bwd(layer: nn.Module, x: torch.Tensor, proj: torch.Tensor) -> None:
    """One training step without the optimizer: zero grads (set to None), forward, backward."""
    layer.zero_grad()
    (layer(x) * proj).sum().backward()


def check_agreement(layers: dict[str, nn.Module], x: torch.Tensor, proj: torch.Tensor) -> None:
    """Every layer computes x @ W^T + b; ttedge and tltorch get the same core gradients."""
    tt = layers["ttedge"]
    assert isinstance(tt, TTLinear)
    ref = x @ tt.weight_dense().T + tt.bias
    for name, layer in layers.items():
        if (err := ((layer(x) - ref).norm() / ref.norm()).item()) > 1e-4:
            raise AssertionError(f"{name} output differs from x @ W^T + b (relative error {err:.1e})")
    if "tltorch" in layers:
        for layer in (tt, layers["tltorch"]):
            fwd_bwd(layer, x, proj)
        for k, (c, f) in enumerate(zip(tt.cores, layers["tltorch"].weight.factors)):
            if (err := ((c.grad - f.grad).norm() / f.grad.norm()).item()) > 1e-4:
                raise AssertionError(f"core {k} gradient differs from tltorch's (relative error {err:.1e})")


def time_interleaved(layers: dict[str, nn.Module], x: torch.Tensor, proj: torch.Tensor,
                     settings: Settings) -> dict[str, list[float]]:
    """Seconds per fwd+bwd of each layer; rounds alternate the layers so load spikes hit all alike,
    and each round starts from the next layer, so that none always runs right after the same one
    (a step right after tensorly-torch's ran 3-10% slower in A/B runs here)."""
    for layer in layers.values():
        for _ in range(settings.warmup):
            fwd_bwd(layer, x, proj)
    times: dict[str, list[float]] = {name: [] for name in layers}
    names = list(layers)
    start, rounds = time.perf_counter(), 0
    while rounds < settings.repeats or time.perf_counter() - start < settings.min_seconds:
        for k in range(len(names)):
            name = names[(rounds + k) % len(names)]
            t0 = time.perf_counter()
            fwd_bwd(layers[name], x, proj)
            times[name].append(time.perf_counter() - t0)
        rounds += 1
    return times


def _allocations(events: list[_ProfilerEvent]) -> Iterator[_ProfilerEvent]:
    for e in events:
        if e.tag == _EventType.Allocation:
            yield e
        yield from _allocations(e.children)


def peak_bytes(layer: nn.Module, x: torch.Tensor, proj: torch.Tensor) -> int:
    """Peak bytes allocated by one fwd+bwd on top of what existed before it (parameters, input).

    The profiler records each CPU allocation (+bytes) and free (-bytes) with a timestamp; the peak of
    their running sum in time order is the step's high-water mark, gradients included.
    """
    layer.zero_grad()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        (layer(x) * proj).sum().backward()
    events = sorted(_allocations(prof.profiler.kineto_results.experimental_event_tree()),
                    key=lambda e: e.start_time_ns)
    running = peak = 0
    for e in events:
        running += e.extra_fields.alloc_size
        peak = max(peak, running)
    grads = sum(p.numel() * p.element_size() for p in layer.parameters())
    if peak < grads:  # gradients are allocated during backward and still alive at its end
        raise AssertionError(f"measured peak {peak} B is below the {grads} B of gradients alone")
    return peak


def run_case(shape: Shape, batch: int, settings: Settings) -> dict[str, Any]:
    layers, skipped = build(shape)
    tt = layers["ttedge"]
    assert isinstance(tt, TTLinear)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(batch, tt.in_features, generator=gen)  # data, so no input gradient
    proj = torch.randn(batch, tt.out_features, generator=gen)  # loss = sum(y * proj): a dense dL/dy
    check_agreement(layers, x, proj)
    times = time_interleaved(layers, x, proj, settings)
    # Without opt_einsum, torch.einsum contracts tltorch's operands left to right: our ltr plan.
    tl_macs = None if torch.backends.opt_einsum.is_available() else plan_contraction(
        tt.in_modes, tt.out_modes, tt.ranks, batch, "ltr").macs
    dense_macs = batch * tt.in_features * tt.out_features
    macs = {"ttedge": tt.macs(batch), "nn.Linear": dense_macs, "tltorch": tl_macs}
    results = {}
    for name, layer in layers.items():
        ts = sorted(times[name])
        results[name] = {
            "params": sum(p.numel() for p in layer.parameters()), "macs_forward": macs.get(name),
            "time_median_s": statistics.median(ts), "time_p25_s": ts[len(ts) // 4],
            "time_p75_s": ts[3 * len(ts) // 4], "samples": len(ts),
            "peak_bytes": peak_bytes(layer, x, proj),
        }
    t = {name: r["time_median_s"] for name, r in results.items()}
    return {
        "shape": shape.name, "in_features": tt.in_features, "out_features": tt.out_features,
        "in_modes": list(shape.in_modes), "out_modes": list(shape.out_modes), "ranks": tt.ranks,
        "order": tt.order, "plan": tt.plan(batch).describe(), "batch": batch, "tltorch_skipped": skipped, "results": results,
        "speedup_vs_tltorch": t["tltorch"] / t["ttedge"] if "tltorch" in t else None,
        "speedup_vs_linear": t["nn.Linear"] / t["ttedge"],
    }


def warm_heap() -> bool:
    """Serve every allocation from glibc's heap and never return it to the OS (see README: with
    glibc's defaults each step of nn.Linear(4096, 4096) page-faults in a fresh 64 MiB gradient)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, 1 << 30))


def machine_info() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in
             (cpuinfo.read_text().splitlines() if cpuinfo.exists() else []) if line.startswith("model name")]
    return {
        "torch": torch.__version__, "python": platform.python_version(),
        "threads": torch.get_num_threads(), "cpu_count": len(os.sched_getaffinity(0)),
        "cpu_model": names[0] if names else platform.processor() or "unknown",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        # which executor ran ttedge's node programs (`ttedge native` builds the C++ one)
        "tt_executor": "native" if native.executor() is not None else "python",
    }


def _row(c: dict[str, Any]) -> str:
    tt, tl, dense = (c["results"].get(name) for name in ("ttedge", "tltorch", "nn.Linear"))
    ms = [f"{r['time_median_s'] * 1e3:.3g}" if r else "-" for r in (tt, tl, dense)]
    mib = [f"{r['peak_bytes'] / 2**20:.3g}" if r else "-" for r in (tt, tl, dense)]
    vs_tl = f"{c['speedup_vs_tltorch']:.2f}x" if tl else "skipped"
    mark = " (recommended)" if c["shape"] == RECOMMENDED else ""
    return (f"| {c['shape']}{mark} rank {c['ranks'][0]} | {c['in_modes']} / {c['out_modes']} | {c['plan']} "
            f"| {c['batch']} | {' | '.join(ms)} | {vs_tl} | {c['speedup_vs_linear']:.2f}x "
            f"| {' / '.join(mib)} | {tt['params']:,} / {dense['params']:,} "
            f"| {tt['macs_forward']:,} / {dense['macs_forward']:,} |")


def markdown(report: dict[str, Any]) -> str:
    """The RESULTS.md section: where and how it was measured, one row per (shape, batch), goals."""
    m, s = report["machine"], report["settings"]
    quick = " QUICK SMOKE RUN, not for comparison." if report["quick"] else ""
    heap = "Allocations reuse a warm heap (glibc mallopt), not fresh pages. " if s["warm_heap"] else ""
    lines = [
        "## TTLinear forward+backward", "",
        f"Measured {m['date']} on {m['cpu_model']}, {m['cpu_count']} cores, {m['threads']} torch "
        f"threads, torch {m['torch']}, ttedge's {m.get('tt_executor', 'python')} TT executor.{quick}", "",
        "How measured (details in `benchmarks/README.md`): the three layers hold the same weight and "
        "are checked to agree on outputs and core gradients. A timed step is `zero_grad()`, forward, "
        "loss = sum(y * P) for a fixed random P, backward (no optimizer step, no input gradient). After "
        f"{s['warmup']} warm-up steps per layer, rounds timing each layer once in turn repeat (at least "
        f"{s['repeats']} rounds and {s['min_seconds']} s per case); times are medians, speedups the "
        "other layer's median over ttedge's in the same rounds. Peak memory: high-water mark of bytes "
        "allocated during one forward+backward beyond parameters and input (gradients included), from "
        f"torch.profiler allocation events. {heap}Measured on a shared 2-core VM whose speed varies "
        "several-fold when other jobs run; ttlinear.json has the quartiles.", "",
        "Plan: the sweep direction TTLinear(order=\"auto\") chose for the batch, then the runs of "
        "cores it merges first (\"rtl 1-2 3-4\": cores 1-2 and 3-4 merged, right to left); MACs "
        "include the merges.", "",
        "| shape | modes in / out | plan | batch | ttedge ms | tltorch ms | nn.Linear ms | vs tltorch "
        "| vs nn.Linear | peak MiB ttedge / tltorch / dense | params TT / dense | fwd MACs TT / dense |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(_row(c) for c in report["cases"]),
    ]
    if report["tltorch_skipped"]:
        lines += ["", f"tensorly-torch was skipped: {report['tltorch_skipped']}."]
    return "\n".join([*lines, "", "Goals: " + goals(report["cases"])])


def goals(cases: list[dict[str, Any]]) -> str:
    """The two project goals, stated against this run's numbers."""
    def which(hits: list[dict[str, Any]], pool: list[dict[str, Any]]) -> str:
        names = ", ".join(f"{c['shape']} batch {c['batch']}" for c in hits)
        return f"{len(hits)} of {len(pool)} cases" + (f" ({names})" if hits else "")

    tl = [c for c in cases if c["speedup_vs_tltorch"] is not None]
    big = [c for c in cases if c["in_features"] == 4096]
    return (f"at least 2x faster than tensorly-torch in "
            f"{which([c for c in tl if c['speedup_vs_tltorch'] >= 2], tl)}; faster than nn.Linear at "
            f"4096x4096 rank 16 in {which([c for c in big if c['speedup_vs_linear'] > 1], big)}. "
            f"Recommended 4096x4096 factorization: {RECOMMENDED}.")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few repeats, for a smoke run")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="JSON directory")
    args = parser.parse_args(argv)
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")  # else each profiler session logs to stderr
    heap = warm_heap()
    torch.set_num_threads(args.threads)
    settings = QUICK if args.quick else FULL
    todo = [(shape, batch) for shape in SHAPES for batch in BATCHES]
    cases = [run_case(shape, b, settings) for shape, b in tqdm(todo, desc="ttlinear", file=sys.stderr)]
    report = {"machine": machine_info(), "quick": args.quick,
              "settings": {**asdict(settings), "warm_heap": heap},
              "tltorch_skipped": cases[0]["tltorch_skipped"], "cases": cases}
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / ("ttlinear.quick.json" if args.quick else "ttlinear.json")
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path = args.out / "RESULTS.quick.md" if args.quick else RESULTS_MD
    section = markdown(report)
    write_section(f"{BEGIN}\n{section}\n{END}", BEGIN, END, md_path)
    print(section)
    print(f"\nwrote {json_path} and {md_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
