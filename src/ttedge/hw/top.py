"""The accelerator's top level: memories, sequencer, state registers, units and the host port.

* **Memories**: one per program buffer (``MemoryMap``), ``numel`` words of the buffer's width,
  initialized from the initial state (cores, biases, optimizer state); a buffer the engine reads as
  its L operand gets P synchronous read ports, as its R operand Q, every buffer at least one (port
  0, shared by the elementwise units and the host). One write port each.
* **Sequencer**: reads the instruction memory (the program image) at ``pc``; per instruction
  FETCH (1 cycle), DECODE (1), ISSUE (the unit's start pulse), then WAIT until the unit and its
  output pipeline are idle; the END word increments ``step`` and raises done.
  :func:`ttedge.hw.cycles.instruction_cycles` counts each instruction.
* **Units**: the :class:`ContractionEngine` (its drained sums go through a RandomLane and one
  OutputStage per output width: shift frac_a + frac_b - frac_out read from the frac registers,
  the instruction's rounding) and the :class:`ElementwiseUnit`. SoftmaxXentGrad is, in this
  slice, *host-assisted*: the sequencer stops with STATUS bit 2 set, the host reads the logits,
  writes the error buffer and ``sat.<error>``, and resumes by writing 2 to CTRL.
* **State registers**: ``step``, ``lr.decay``, ``scale.<buf>.frac/over/under`` per dynamic buffer,
  ``sat.<buf>`` per counted buffer (a saturated code written into the buffer adds one).
* **Host port** (``memmap`` module docstring for the map): ``host_addr``/``host_wdata``/``host_we``
  write a word at the edge; ``host_re`` reads one, on ``host_rdata`` the next cycle. Memories are
  accessed only while idle.
"""

# No `from __future__ import annotations`: wiring.Component reads the port annotations as objects.

from typing import Mapping

import numpy as np
from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..fixed.program import Program
from .config import AcceleratorConfig
from .elementwise import ElementwiseUnit
from .engine import ContractionEngine
from .isa import Op, encode_program, scale_units
from .memmap import CTRL, CYCLES, PC, STATUS, MemoryMap
from .requant import OutputStage
from .rng import RandomLane
from .scale import FRAC_BITS

__all__ = ["Accelerator", "OUTPUT_LATENCY"]

OUTPUT_LATENCY = RandomLane.LATENCY + OutputStage.LATENCY  # engine drain -> memory write, cycles


def _bits_for(n: int) -> int:
    return max(1, (max(n, 1) - 1).bit_length())


class Accelerator(wiring.Component):
    """The whole training-step accelerator for ``program`` on ``config`` (module docstring).

    ``state``: initial values by the Interpreter's state keys (buffer codes and registers); missing
    buffers start at 0, missing registers at their reset values (a dynamic buffer's format frac).
    """

    def __init__(self, program: Program, config: AcceleratorConfig, state: Mapping[str, np.ndarray] | None = None) -> None:
        self.program, self.config = program, config
        self.mmap = MemoryMap(program, config)
        self.image = encode_program(program, config)
        self.state = dict(state or {})
        self.addr_bits = _bits_for(max(b.numel for b in program.buffers))
        super().__init__({
            "host_addr": In(unsigned(self.mmap.address_bits)), "host_wdata": In(signed(64)),
            "host_we": In(1), "host_re": In(1), "host_rdata": Out(signed(64)),
            "busy": Out(1), "done": Out(1),
        })
        # Filled in by elaborate(): the simulator reads memories and registers through these.
        self.memories: dict[str, Memory] = {}
        self.registers: dict[str, Signal] = {}
        self.pc = Signal(16, name="pc")

    def _roles(self) -> tuple[set[int], set[int]]:
        left = {w["a"] for w in self.image.words if w["op"] == Op.CONTRACT}
        right = {w["b"] for w in self.image.words if w["op"] == Op.CONTRACT}
        return left, right

    def elaborate(self, platform: object) -> Module:
        m = Module()
        prog, cfg, mm, image = self.program, self.config, self.mmap, self.image
        P, Q = cfg.p, cfg.q
        pls = mm.placements
        layout = image.layout()

        # --- registers
        regs = self.registers
        rules = scale_units(prog)
        over_bits = max([r.up_after.bit_length() for _, r in rules] + [1])
        under_bits = max([r.down_after.bit_length() for _, r in rules] + [1])
        for name in mm.registers:
            init = int(self.state[name]) if name in self.state else None
            if name == "step":
                sig = Signal(cfg.counter_width, name="step", init=init or 0)
            elif name == "lr.decay":
                sig = Signal(8, name="lr_decay", init=init or 0)
            elif name.startswith("scale.") and name.endswith(".frac"):
                default = prog.buffer(name[6:-5]).fmt.frac
                sig = Signal(FRAC_BITS, name=name.replace(".", "_"), init=default if init is None else init)
            elif name.startswith("scale."):
                sig = Signal(over_bits if name.endswith(".over") else under_bits, name=name.replace(".", "_"), init=init or 0)
            else:
                sig = Signal(cfg.counter_width, name=name.replace(".", "_"), init=init or 0)
            regs[name] = sig

        def frac_of(idx: Signal) -> Signal:
            out = Signal(FRAC_BITS)
            with m.Switch(idx):
                for pl in pls:
                    with m.Case(pl.index):
                        b = pl.buffer
                        m.d.comb += out.eq(regs[f"scale.{b.name}.frac"] if b.dynamic else b.fmt.frac)
            return out

        # --- sequencer state
        ins = Signal(layout, name="ins")
        running, done = Signal(), Signal()
        assist = Signal()  # waiting for the host to execute a SoftmaxXentGrad (no on-chip unit yet)
        owns = Signal()  # the units own the memory ports (else the host does)
        m.d.comb += owns.eq(running & ~assist)
        host_ok = ~owns
        phase = Signal(2)  # 0 fetch, 1 decode, 2 issue, 3 wait
        pc = self.pc
        cycles = Signal(32)
        imem = m.submodules.imem = Memory(shape=unsigned(image.word_bits), depth=len(image.words), init=image.packed())
        iport = imem.read_port()
        m.d.comb += iport.addr.eq(pc)
        op = Signal(4)
        m.d.comb += op.eq(ins.op)
        fa, fb, fc = frac_of(ins.a), frac_of(ins.b), frac_of(ins.c)

        # --- units
        operand_width = max([pls[i].width for i in set().union(*self._roles())] + [2])
        acc_width = max([w for w in (getattr(i, "acc_width", 0) for i in prog.instructions)] + [2])
        eng = m.submodules.engine = ContractionEngine(cfg, layout, self.addr_bits, operand_width, acc_width)
        words = [w for w in image.words]
        out_widths = sorted({pls[w["c"]].width for w in words if w["op"] == Op.CONTRACT}) or [2]
        w_dests = [pls[w["a"] if w["op"] == Op.SGD else w["c"]].width
                   for w in words if w["op"] not in (Op.CONTRACT, Op.END, Op.SCALE, Op.SOFTMAX)]
        v_dests = [pls[w["c"]].width for w in words if w["op"] == Op.SGD and w["momentum"]]
        ew = m.submodules.ew = ElementwiseUnit(layout, self.addr_bits, w_dests or [2], v_dests, rules, prog.seed, cfg.counter_width)
        m.d.comb += [eng.word.eq(ins), ew.word.eq(ins), ew.pc.eq(pc), ew.step.eq(regs["step"]), ew.lr_decay.eq(regs["lr.decay"]),
                     ew.fa.eq(fa), ew.fb.eq(fb), ew.fc.eq(fc)]

        def width_sel(idx: object, widths: list[int], target: Signal) -> None:
            with m.Switch(idx):
                for pl in pls:
                    if pl.width in widths:
                        with m.Case(pl.index):
                            m.d.comb += target.eq(widths.index(pl.width))
        width_sel(Mux(op == Op.SGD, ins.a, ins.c), ew.w_widths, ew.w_sel)
        width_sel(ins.c, ew.v_widths, ew.v_sel)

        # Engine output path: random word at the drain cycle, value delayed to meet it, then rounding.
        rng = m.submodules.eng_rng = RandomLane()
        m.d.comb += [rng.seed.eq(prog.seed), rng.stream.eq(pc), rng.step.eq(regs["step"]), rng.index.eq(eng.out_index), rng.valid.eq(eng.out_valid)]
        dv = [Signal(name=f"ev{t}") for t in range(OUTPUT_LATENCY + 1)]
        di = [Signal(unsigned(self.addr_bits), name=f"ei{t}") for t in range(OUTPUT_LATENCY + 1)]
        dval = [Signal(signed(acc_width), name=f"eval{t}") for t in range(RandomLane.LATENCY + 1)]
        m.d.comb += [dv[0].eq(eng.out_valid), di[0].eq(eng.out_index), dval[0].eq(eng.out_value)]
        for t in range(1, OUTPUT_LATENCY + 1):
            m.d.sync += [dv[t].eq(dv[t - 1]), di[t].eq(di[t - 1])]
        for t in range(1, RandomLane.LATENCY + 1):
            m.d.sync += dval[t].eq(dval[t - 1])
        oss = [OutputStage(acc_width, wd) for wd in out_widths]
        e_sel = Signal(range(len(out_widths)))
        width_sel(ins.c, out_widths, e_sel)
        e_code, e_sat = Signal(signed(64)), Signal()
        for k, s in enumerate(oss):
            m.submodules[f"eng_os{k}"] = s
            m.d.comb += [s.value.eq(dval[-1]), s.shift.eq(fa + fb - fc), s.rounding.eq(ins.rounding),
                         s.random.eq(rng.word), s.valid.eq(dv[RandomLane.LATENCY])]
        with m.Switch(e_sel):
            for k in range(len(oss)):
                with m.Case(k):
                    m.d.comb += [e_code.eq(oss[k].code), e_sat.eq(oss[k].saturated)]
        e_en = dv[-1] & (op == Op.CONTRACT)
        eng_busy = eng.busy
        for t in range(OUTPUT_LATENCY + 1):
            eng_busy = eng_busy | dv[t]

        # --- memories and their ports
        left, right = self._roles()
        host_local = [Signal(unsigned(self.addr_bits), name=f"host_local{pl.index}") for pl in pls]
        host_hit = [Signal(name=f"host_hit{pl.index}") for pl in pls]
        port0: list[object] = []
        for pl in pls:
            init = self.state.get(pl.name)
            init_list = [int(v) for v in np.asarray(init).reshape(-1)] if init is not None else []
            mem = Memory(shape=signed(pl.width), depth=pl.depth, init=init_list)
            m.submodules[f"mem_{pl.index}"] = mem
            self.memories[pl.name] = mem
            n = max(1, P if pl.index in left else 0, Q if pl.index in right else 0)
            ports = [mem.read_port() for _ in range(n)]
            i = pl.index
            m.d.comb += [host_hit[i].eq((self.host_addr >= pl.base) & (self.host_addr < pl.base + pl.depth)),
                         host_local[i].eq(self.host_addr - pl.base)]
            for j, port in enumerate(ports):
                addr = host_local[i] if j == 0 else 0
                if j == 0:
                    addr = Mux(owns & (ins.c == i), ew.ec, addr)
                    addr = Mux(owns & (ins.b == i), ew.eb, addr)
                    addr = Mux(owns & (ins.a == i), ew.ea, addr)
                if i in right and j < Q:
                    addr = Mux(owns & (op == Op.CONTRACT) & (ins.b == i), eng.r_addr[j], addr)
                if i in left and j < P:
                    addr = Mux(owns & (op == Op.CONTRACT) & (ins.a == i), eng.l_addr[j], addr)
                m.d.comb += port.addr.eq(addr)
            port0.append(ports[0].data)
            for j in range(P if i in left else 0):
                with m.If(ins.a == i):
                    m.d.comb += eng.l_data[j].eq(ports[j].data)
            for j in range(Q if i in right else 0):
                with m.If(ins.b == i):
                    m.d.comb += eng.r_data[j].eq(ports[j].data)
            with m.If(ins.a == i):
                m.d.comb += ew.da.eq(ports[0].data)
            with m.If(ins.b == i):
                m.d.comb += ew.db.eq(ports[0].data)
            with m.If(ins.c == i):
                m.d.comb += ew.dc.eq(ports[0].data)

            wp = mem.write_port()
            w_dest = Mux(op == Op.SGD, ins.a, ins.c)
            sat_inc = Signal(name=f"sat_inc{i}")
            with m.If(e_en & (ins.c == i)):
                m.d.comb += [wp.en.eq(1), wp.addr.eq(di[-1]), wp.data.eq(e_code), sat_inc.eq(e_sat)]
            with m.Elif(ew.w_en & (w_dest == i)):
                m.d.comb += [wp.en.eq(1), wp.addr.eq(ew.w_addr), wp.data.eq(ew.w_data), sat_inc.eq(ew.w_sat)]
            with m.Elif(ew.v_en & (ins.c == i)):
                m.d.comb += [wp.en.eq(1), wp.addr.eq(ew.v_addr), wp.data.eq(ew.v_data), sat_inc.eq(ew.v_sat)]
            with m.Elif(host_ok & self.host_we & host_hit[i]):
                m.d.comb += [wp.en.eq(1), wp.addr.eq(host_local[i]), wp.data.eq(self.host_wdata)]
            counter = f"sat.{pl.name}"
            if counter in regs:
                with m.If(sat_inc):
                    m.d.sync += regs[counter].eq(regs[counter] + 1)
                with m.Elif(host_ok & self.host_we & (self.host_addr == mm.register_address(counter))):
                    m.d.sync += regs[counter].eq(self.host_wdata)

        # --- scale registers
        with m.If(ew.scale_strobe):
            with m.Switch(ins.a):
                for pl in pls:
                    if pl.buffer.dynamic:
                        with m.Case(pl.index):
                            key = f"scale.{pl.name}."
                            m.d.sync += [regs[key + "frac"].eq(ew.new_frac), regs[key + "over"].eq(ew.new_over),
                                         regs[key + "under"].eq(ew.new_under)]
        m.d.comb += [ew.scale_over.eq(0), ew.scale_under.eq(0)]
        with m.Switch(ins.a):
            for pl in pls:
                if pl.buffer.dynamic:
                    with m.Case(pl.index):
                        m.d.comb += [ew.scale_over.eq(regs[f"scale.{pl.name}.over"]), ew.scale_under.eq(regs[f"scale.{pl.name}.under"])]

        # --- sequencer
        m.d.comb += [self.busy.eq(running), self.done.eq(done)]
        is_ew = (op != Op.CONTRACT) & (op != Op.END) & (op != Op.SOFTMAX)
        with m.If(running):
            m.d.sync += cycles.eq(cycles + 1)
            with m.Switch(phase):
                with m.Case(0):
                    m.d.sync += phase.eq(1)
                with m.Case(1):
                    m.d.sync += [ins.eq(iport.data), phase.eq(2)]
                with m.Case(2):
                    with m.If(op == Op.END):
                        m.d.sync += [running.eq(0), done.eq(1), regs["step"].eq(regs["step"] + 1), pc.eq(0)]
                    with m.Elif(op == Op.SOFTMAX):
                        m.d.sync += [assist.eq(1), phase.eq(3)]
                    with m.Else():
                        m.d.comb += [eng.start.eq(op == Op.CONTRACT), ew.start.eq(is_ew)]
                        m.d.sync += phase.eq(3)
                with m.Case(3):
                    with m.If(assist):
                        with m.If(self.host_we & (self.host_addr == CTRL) & self.host_wdata[1]):
                            m.d.sync += [assist.eq(0), pc.eq(pc + 1), phase.eq(0)]
                    with m.Elif(~Mux(op == Op.CONTRACT, eng_busy, ew.busy)):
                        m.d.sync += [pc.eq(pc + 1), phase.eq(0)]
        with m.Elif(self.host_we & (self.host_addr == CTRL) & self.host_wdata[0]):
            m.d.sync += [running.eq(1), done.eq(0), phase.eq(0), pc.eq(0), cycles.eq(0)]

        # --- host register writes and reads
        reg_addr = {mm.register_address(name): name for name in mm.registers}
        with m.If(~running & self.host_we):
            with m.Switch(self.host_addr):
                for a, name in reg_addr.items():
                    if name.startswith("sat."):
                        continue  # written above, beside their increments
                    with m.Case(a):
                        m.d.sync += regs[name].eq(self.host_wdata)
        rdata_reg = Signal(signed(64))
        sel = Signal(range(len(pls) + 1))
        with m.If(self.host_re):
            m.d.sync += [sel.eq(len(pls)), rdata_reg.eq(0)]
            with m.Switch(self.host_addr):
                with m.Case(STATUS):
                    m.d.sync += rdata_reg.eq(done | (running << 1) | (assist << 2))
                with m.Case(CYCLES):
                    m.d.sync += rdata_reg.eq(cycles)
                with m.Case(PC):
                    m.d.sync += rdata_reg.eq(pc)
                for a, name in reg_addr.items():
                    with m.Case(a):
                        m.d.sync += rdata_reg.eq(regs[name])
            for pl in pls:
                with m.If(host_hit[pl.index]):
                    m.d.sync += sel.eq(pl.index)
        m.d.comb += self.host_rdata.eq(rdata_reg)
        with m.Switch(sel):
            for pl in pls:
                with m.Case(pl.index):
                    m.d.comb += self.host_rdata.eq(port0[pl.index])
        return m
