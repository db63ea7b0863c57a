"""The contraction engine alone: its exact sums equal matmul_exact for every mode, and its cycles
equal the cycle model."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth import Module, signed
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator

from ttedge.fixed import Contract
from ttedge.fixed.ops import matmul_exact
from ttedge.fixed.program import Operand
from ttedge.hw.config import AcceleratorConfig
from ttedge.hw.cycles import contract_cycles
from ttedge.hw.engine import ContractionEngine
from ttedge.hw.isa import Op, ProgramImage, contract_fields
from ttedge.hw.memories import READ_LATENCY
from ttedge.hw.pipe import delay


def reference(ins: Contract, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.reshape(ins.a.view), b.reshape(ins.b.view)
    if ins.mode == "forward":
        return matmul_exact(b, a).reshape(-1)
    if ins.mode == "input_error":
        return matmul_exact(b.T, a).reshape(-1)
    e = a.transpose(1, 0, 2).reshape(ins.out_len, -1)
    s = b.transpose(0, 2, 1).reshape(-1, ins.contract)
    return matmul_exact(e, s).reshape(-1)


def run_engine(ins: Contract, a: np.ndarray, b: np.ndarray, cfg: AcceleratorConfig) -> tuple[dict[int, int], int, int]:
    left, right = (b, a) if ins.mode in ("forward", "input_error") else (a, b)
    word = {"op": Op.CONTRACT, **contract_fields(ins, cfg.q)}
    image = ProgramImage((word,), 1, 16)
    addr_bits = max(1, max(left.size, right.size, int(np.prod(ins.out.view))).bit_length())
    m = Module()
    eng = ContractionEngine(cfg, image.layout(), addr_bits, 8, 32)
    m.submodules.eng = eng
    for name, data, lanes, addrs, outs in (("l", left, cfg.p, eng.l_addr, eng.l_data), ("r", right, cfg.q, eng.r_addr, eng.r_data)):
        mem = Memory(shape=signed(8), depth=data.size, init=[int(v) for v in data.reshape(-1)])
        m.submodules[f"mem_{name}"] = mem
        for i in range(lanes):
            port = mem.read_port()
            m.d.comb += [port.addr.eq(addrs[i]), outs[i].eq(delay(m, port.data, READ_LATENCY - 1, f"{name}{i}"))]
    got: dict[int, int] = {}
    cycles = [0, 0]

    async def bench(ctx):  # type: ignore[no-untyped-def]
        ctx.set(eng.word.as_value(), image.pack(word))
        ctx.set(eng.start, 1)
        await ctx.tick()
        ctx.set(eng.start, 0)
        n = 1
        while ctx.get(eng.busy):
            for q in range(cfg.q):
                if ctx.get(eng.out_valid[q]):
                    idx = ctx.get(eng.out_index[q])
                    assert idx not in got
                    got[idx] = ctx.get(eng.out_value[q])
            cycles[1] += ctx.get(eng.macs)
            await ctx.tick()
            n += 1
        cycles[0] = n

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got, cycles[0], cycles[1]


CASES = [
    ("forward", 2, 6, 3, 2, 2, 2),
    ("input_error", 3, 4, 5, 1, 3, 2),
    ("core_grad", 2, 3, 4, 3, 2, 3),
    ("forward", 1, 5, 7, 1, 4, 1),
    ("core_grad", 4, 2, 3, 1, 1, 2),
]


@pytest.mark.parametrize("mode,rows,contract,out_len,cols,p,q", CASES)
def test_engine_sums_equal_matmul_exact(mode: str, rows: int, contract: int, out_len: int, cols: int, p: int, q: int) -> None:
    rng = np.random.default_rng(rows * 100 + contract * 10 + out_len)
    core = (out_len, contract)
    if mode == "forward":
        a_view, b_view, o_view = (rows, contract, cols), core, (rows, out_len, cols)
    elif mode == "input_error":
        a_view, b_view, o_view = (rows, out_len, cols), core, (rows, contract, cols)
    else:
        a_view, b_view, o_view = (rows, out_len, cols), (rows, contract, cols), core
    ins = Contract(mode, Operand("a", a_view), Operand("b", b_view), Operand("o", o_view), rows, contract, out_len, cols, 32)  # type: ignore[arg-type]
    a = rng.integers(-128, 128, int(np.prod(a_view)))
    b = rng.integers(-128, 128, int(np.prod(b_view)))
    cfg = AcceleratorConfig(p=p, q=q)
    got, cycles, macs = run_engine(ins, a, b, cfg)
    want = reference(ins, a, b)
    assert sorted(got) == list(range(want.size))
    assert [got[i] for i in range(want.size)] == want.tolist()
    assert cycles == contract_cycles(ins, cfg)
