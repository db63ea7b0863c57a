"""The accelerator's top level: memories, sequencer, state registers, units and the host port.

* **Memories**: one per width class (``MemoryMap``; ports in ``ttedge.hw.memories``), initialized
  from the initial state (cores, biases, optimizer state); instruction words carry each operand's
  memory and offset, so the routing is a few multiplexers per memory.
* **Sequencer**: reads the instruction memory (the program image) at ``pc``; per instruction
  FETCH (1 cycle), DECODE (1), ISSUE (the unit's start pulse), then WAIT until the unit and its
  output pipeline are idle; the END word increments ``step`` and raises done.
  :func:`ttedge.hw.cycles.instruction_cycles` counts each instruction.
* **Units**: the :class:`ContractionEngine` (a drained row of Q sums goes through Q output lanes,
  each a RandomLane and one OutputStage per output width: shift frac_a + frac_b - frac_out from the
  frac registers, the instruction's rounding, then a write port), the :class:`ElementwiseUnit`,
  the :class:`LossUnit` (SoftmaxXentGrad row by row through the SoftmaxXentUnit) and the
  :class:`PriorUnit` (PriorGrad, LambdaUpdate; skipped, like the reference, while ``prior.on`` is 0).
* **State registers**: ``step``, ``lr.decay``, ``scale.<buf>.frac/over/under`` per dynamic buffer,
  ``sat.<buf>`` per counted buffer (a saturated code written into the buffer adds one).
* **Scaling**: a MaxAbs on the write stream tracks each dynamic buffer's max |code| as its
  instruction writes it (each instruction writes every element of its destination); a
  ScaleControl feeds its ScaleUnit from that register in its issue cycle, without reading memory,
  and writes the result in the cycle after (the next instruction's fetch).
* **Host port** (``memmap`` module docstring for the map): ``host_addr``/``host_wdata``/``host_we``
  write a word at the edge; ``host_re`` reads one, on ``host_rdata`` :data:`HOST_READ_LATENCY`
  edges later (``memories.READ_LATENCY``, also for registers). Memories are accessed only while idle.
"""

# No `from __future__ import annotations`: wiring.Component reads the port annotations as objects.

import os
from typing import Mapping

import numpy as np
from amaranth import Cat, Const, Elaboratable, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..errors import ConfigError
from ..fixed.format import FixedFormat
from ..fixed.program import LambdaUpdate, Program
from .config import AcceleratorConfig
from .elementwise import ElementwiseUnit
from .engine import ContractionEngine
from .isa import Op, encode_program, scale_units
from .loss import LossUnit
from .banks import Banks, memory_roles, plan_banks, role_ops
from .memories import READ_LATENCY, ClassMemory, image_files
from .memmap import CTRL, CYCLES, PC, STATUS, MemoryMap
from .pipe import delay, stage, valid_chain
from .prior import PriorUnit
from .requant import SHIFT_BITS, OutputStage
from .rng import RandomLane
from .scale import FRAC_BITS, TRACK_DELAY, TRACK_REGS, MaxAbs, ScaleUnit

__all__ = ["Accelerator", "OUTPUT_LATENCY", "HOST_READ_LATENCY", "WAIT"]

OUTPUT_LATENCY = RandomLane.LATENCY + OutputStage.LATENCY  # engine drain -> memory write, cycles
# The sequencer sees the running unit's busy through a register (the units sit far from it on a large
# device), so an instruction waits at least that one cycle after its unit's busy falls; and at least
# scale.TRACK_DELAY, for the unit's last write to be in its buffer's max |code|.
WAIT = max(1, TRACK_DELAY)  # cycles from a unit's busy falling to its instruction's end
HOST_READ_LATENCY = READ_LATENCY  # edges from host_re to the word on host_rdata


def _is_prior(op: Signal) -> object:
    """The prior unit runs this op."""
    return (op == Op.PRIOR) | (op == Op.LAMBDA)


class _OutputLane(Elaboratable):
    """One engine output lane: the random word of each drained sum (RandomLane, requested as the
    sum leaves the engine), the sum delayed to meet it, and one OutputStage per output width
    (``sel`` picks the destination's). Results come OUTPUT_LATENCY cycles after the drain."""

    def __init__(self, seed: int, addr_bits: int, acc_width: int, widths: list[int]) -> None:
        self.seed, self.acc_width, self.widths = seed, acc_width, widths
        self.valid, self.index, self.value = Signal(), Signal(unsigned(addr_bits)), Signal(signed(acc_width))
        self.stream, self.step, self.shift = Signal(32), Signal(32), Signal(signed(8))
        self.rounding, self.sel = Signal(2), Signal(range(len(widths)))
        self.out_valid, self.out_index = Signal(), Signal(unsigned(addr_bits))
        self.code, self.saturated = Signal(signed(64)), Signal()

    def elaborate(self, platform: object) -> Module:
        m = Module()
        rng = m.submodules.rng = RandomLane()
        m.d.comb += [rng.seed.eq(self.seed), rng.stream.eq(self.stream), rng.step.eq(self.step),
                     rng.index.eq(self.index), rng.valid.eq(self.valid)]
        dv = [Signal(name=f"v{t}") for t in range(OUTPUT_LATENCY + 1)]
        di = [Signal.like(self.index, name=f"i{t}") for t in range(OUTPUT_LATENCY + 1)]
        dval = [Signal(signed(self.acc_width), name=f"x{t}", reset_less=True) for t in range(RandomLane.LATENCY + 1)]
        m.d.comb += [dv[0].eq(self.valid), di[0].eq(self.index), dval[0].eq(self.value)]
        for t in range(1, OUTPUT_LATENCY + 1):
            m.d.sync += [dv[t].eq(dv[t - 1]), di[t].eq(di[t - 1])]
        for t in range(1, RandomLane.LATENCY + 1):
            m.d.sync += dval[t].eq(dval[t - 1])
        stages = [OutputStage(self.acc_width, wd) for wd in self.widths]
        for k, st in enumerate(stages):
            m.submodules[f"os{k}"] = st
            m.d.comb += [st.value.eq(dval[-1]), st.shift.eq(self.shift), st.rounding.eq(self.rounding),
                         st.random.eq(rng.word), st.valid.eq(dv[RandomLane.LATENCY])]
        with m.Switch(self.sel):
            for k, st in enumerate(stages):
                with m.Case(k):
                    m.d.comb += [self.code.eq(st.code), self.saturated.eq(st.saturated)]
        m.d.comb += [self.out_valid.eq(dv[-1]), self.out_index.eq(di[-1])]
        return m


def _bits_for(n: int) -> int:
    return max(1, (max(n, 1) - 1).bit_length())


class Accelerator(wiring.Component):
    """The whole training-step accelerator for ``program`` on ``config`` (module docstring).

    ``state``: initial values by the Interpreter's state keys (buffer codes and registers); missing
    buffers start at 0, missing registers at their reset values (a dynamic buffer's format frac).
    With ``external_memories`` each memory is an instance of a Verilog module (``ttedge.hw.memories``)
    that :meth:`verilog` writes after the design, its words from ``$readmemh`` files instead of
    ``state`` (for Verilog only: Amaranth's simulator needs the native memories).
    """

    def __init__(self, program: Program, config: AcceleratorConfig, state: Mapping[str, np.ndarray] | None = None,
                 external_memories: bool = False) -> None:
        self.program, self.config, self.external_memories = program, config, external_memories
        self.mmap = MemoryMap(program, config)
        self.image = encode_program(program, config)
        # Banked memories where the program allows (external modules only: block RAM is for synthesis).
        self.banks: tuple[Banks | None, ...] = (plan_banks(self.mmap, self.image.words, config) if external_memories
                                                else (None,) * len(self.mmap.widths))
        self.state = dict(state or {})
        self.addr_bits = _bits_for(max(self.mmap.depths()))  # bits of a word address in the deepest memory
        super().__init__({
            "host_addr": In(unsigned(self.mmap.address_bits)), "host_wdata": In(signed(64)),
            "host_we": In(1), "host_re": In(1), "host_rdata": Out(signed(64)),
            "busy": Out(1), "done": Out(1),
        })
        # Filled in by elaborate(): the simulator reads memories and registers through these.
        self.memories: dict[str, tuple[Memory, int, int]] = {}  # buffer -> (its memory, offset, words)
        self.registers: dict[str, Signal] = {}
        self.pc = Signal(16, name="pc")
        self.cycles = Signal(32, name="cycles")  # cycles of the current (or last) step
        self.profile: Memory | None = None  # the performance counters (set by elaborate)
        self.class_memories: list[ClassMemory] = []  # one per width class (set by elaborate)

    def verilog(self, image_dir: str | None = None, blackbox_memories: bool = False) -> str:
        """The design as Verilog (top module ``ttedge_accelerator``); with ``external_memories``
        followed by the memory modules, read from the images :func:`~ttedge.hw.generate.write_memory_images`
        writes, in ``image_dir`` ("" for paths relative to the design) when given, or with
        ``blackbox_memories`` only their port declarations (to synthesize everything else)."""
        from amaranth.back import verilog as back

        text = back.convert(self, name="ttedge_accelerator")
        if self.external_memories:
            mods = []
            for k, cm in enumerate(self.class_memories):
                files = [] if image_dir is None else [os.path.join(image_dir, n) for n in image_files(k, cm.layouts)]
                mods.append(cm.verilog(files, blackbox_memories))
            text += "\n" + "\n".join(mods)
        return text

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
            elif name == "prior.on":
                sig = Signal(1, name="prior_on", init=1 if init is None else init)
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
        owns = running  # the units own the memory ports (else the host does)
        host_ok = ~owns
        phase = Signal(2)  # 0 fetch, 1 decode, 2 issue, 3 wait
        advance = Signal()  # the current instruction finishes this cycle (pc moves on)
        pc = self.pc
        cycles = self.cycles
        imem = m.submodules.imem = Memory(shape=unsigned(image.word_bits), depth=len(image.words), init=image.packed())
        iport = imem.read_port()
        # The next word is read ahead, during the issue and wait phases of the current one (pc + 1:
        # the program has no branches), so that the fetch phase only registers the ROM's output;
        # pc + 1 is a register kept beside pc, so no adder precedes the ROM's address decode.
        pc_next = Signal.like(pc, init=1, name="pc_next")
        m.d.comb += iport.addr.eq(Mux(running & phase[1], pc_next, pc))
        op = Signal(4)
        m.d.comb += op.eq(ins.op)
        # The fracs of the instruction's buffers a, b, c, latched with it in the decode phase: they
        # hold for the whole instruction (instructions do not overlap, and only ScaleControl, which
        # reads its register directly, changes a frac), so no unit's datapath sees the frac lookup.
        fetched = Signal(layout)  # the word of pc, registered as it leaves the ROM (fetch phase)
        fa, fb, fc = (Signal(FRAC_BITS, name=n) for n in ("fa", "fb", "fc"))

        # --- units
        operand_width = max([mm.widths[w[s]] for w in image.words if w["op"] == Op.CONTRACT for s in ("am", "bm")] + [2])
        acc_width = max([w for w in (getattr(i, "acc_width", 0) for i in prog.instructions)] + [2])
        eng = m.submodules.engine = ContractionEngine(cfg, layout, self.addr_bits, operand_width, acc_width)
        words = image.words
        out_widths = sorted({mm.widths[w["cm"]] for w in words if w["op"] == Op.CONTRACT}) or [2]
        w_dests = [pls[w["a"] if w["op"] == Op.SGD else w["c"]].width
                   for w in words if w["op"] not in (Op.CONTRACT, Op.END, Op.SCALE, Op.SOFTMAX, Op.PRIOR, Op.LAMBDA)]
        v_dests = [pls[w["c"]].width for w in words if w["op"] == Op.SGD and w["momentum"]]
        ew = m.submodules.ew = ElementwiseUnit(layout, self.addr_bits, w_dests or [2], v_dests, prog.seed, cfg.counter_width)
        losses = {(pls[w["a"]].width, pls[w["c"]].buffer.fmt, w["k1"]) for w in words if w["op"] == Op.SOFTMAX}
        if len(losses) > 1:
            raise ConfigError("the accelerator has one loss unit, but the program has SoftmaxXentGrad instructions of different formats; compile one loss.")
        in_width, out_fmt, classes = losses.pop() if losses else (16, FixedFormat(16, 14), 2)
        loss = m.submodules.loss = LossUnit(layout, self.addr_bits, in_width, out_fmt, classes)
        lambdas = [i for i in prog.instructions if isinstance(i, LambdaUpdate)]
        limits = {(prog.buffer(i.lam).fmt.max_int, prog.buffer(i.prec).fmt.max_int) for i in lambdas}
        if len(limits) > 1:
            raise ConfigError("the accelerator has one prior unit, but the program's LambdaUpdates use different formats; compile one lambda format.")
        lam_max, prec_max = limits.pop() if limits else (1, 1)
        pu = m.submodules.prior = PriorUnit(layout, self.addr_bits, [pls[w["b"]].width for w in words if w["op"] == Op.PRIOR],
                                            max([w["nyhi"] for w in words if w["op"] == Op.LAMBDA] + [1]), lam_max, prec_max,
                                            enabled=any(w["op"] in (Op.PRIOR, Op.LAMBDA) for w in words))
        is_pu = _is_prior(op)
        # The main write slot: the elementwise, loss or prior unit's (one at a time); the second
        # slot: the elementwise unit's velocity or the prior unit's precision.
        mw_en, mw_addr, mw_data, mw_sat = Signal(), Signal(unsigned(self.addr_bits)), Signal(signed(64)), Signal()
        m.d.comb += [mw_en.eq(ew.w_en | loss.w_en | pu.w_en),
                     mw_addr.eq(Mux(pu.w_en, pu.w_addr, Mux(loss.w_en, loss.w_addr, ew.w_addr))),
                     mw_data.eq(Mux(pu.w_en, pu.w_data, Mux(loss.w_en, loss.w_data, ew.w_data))),
                     mw_sat.eq(Mux(pu.w_en, pu.w_sat, Mux(loss.w_en, loss.w_sat, ew.w_sat)))]
        sw_en, sw_addr, sw_data, sw_sat = Signal(), Signal(unsigned(self.addr_bits)), Signal(signed(64)), Signal()
        m.d.comb += [sw_en.eq(ew.v_en | pu.v_en), sw_addr.eq(Mux(pu.v_en, pu.v_addr, ew.v_addr)),
                     sw_data.eq(Mux(pu.v_en, pu.v_data, ew.v_data)), sw_sat.eq(Mux(pu.v_en, pu.v_sat, ew.v_sat))]
        m.d.comb += [pu.word.eq(ins), pu.fb.eq(fb)]
        m.d.comb += [loss.word.eq(ins), loss.fa.eq(fa), loss.da.eq(ew.da), loss.db.eq(ew.db)]
        m.d.comb += [eng.word.eq(ins), ew.word.eq(ins), ew.pc.eq(pc), ew.step.eq(regs["step"]), ew.lr_decay.eq(regs["lr.decay"]),
                     ew.fa.eq(fa), ew.fb.eq(fb), ew.fc.eq(fc)]

        def width_sel(mem: object, widths: list[int], target: Signal) -> None:
            """target = position of the width of memory ``mem`` (a width class) in ``widths``."""
            with m.Switch(mem):
                for k, wd in enumerate(mm.widths):
                    if wd in widths:
                        with m.Case(k):
                            m.d.comb += target.eq(widths.index(wd))
        width_sel(Mux(op == Op.SGD, ins.am, ins.cm), ew.w_widths, ew.w_sel)
        width_sel(ins.cm, ew.v_widths, ew.v_sel)
        width_sel(ins.bm, pu.g_widths, pu.w_sel)

        # Engine output path, per y lane: random word at the drain cycle, value delayed to meet it,
        # then rounding (one OutputStage per output width).
        e_sel = Signal(range(len(out_widths)))
        e_shift = Signal(signed(SHIFT_BITS))  # the products' frac over the output's, registered
        m.d.sync += e_shift.eq(fa + fb - fc)
        width_sel(ins.cm, out_widths, e_sel)
        lanes = []
        for q in range(Q):
            lane = m.submodules[f"eng_out{q}"] = _OutputLane(prog.seed, self.addr_bits, acc_width, out_widths)
            m.d.comb += [lane.valid.eq(eng.out_valid[q]), lane.index.eq(eng.out_index[q]), lane.value.eq(eng.out_value[q]),
                         lane.stream.eq(pc), lane.step.eq(regs["step"]), lane.shift.eq(e_shift),
                         lane.rounding.eq(ins.rounding), lane.sel.eq(e_sel)]
            lanes.append(lane)
        e_en = [lane.out_valid & (op == Op.CONTRACT) for lane in lanes]
        # The engine counts as busy OUTPUT_LATENCY cycles after its own busy falls (its last write).
        tail = Signal(range(OUTPUT_LATENCY + 1))
        with m.If(eng.busy):
            m.d.sync += tail.eq(OUTPUT_LATENCY)
        with m.Elif(tail != 0):
            m.d.sync += tail.eq(tail - 1)
        eng_busy = eng.busy | (tail != 0)

        # --- memories (one per width class) and their ports
        roles = memory_roles(mm, words)
        cms: list[ClassMemory] = []
        # External memories take their words from $readmemh images instead.
        images = [[] for _ in mm.widths] if self.external_memories else mm.images(self.state)
        for k, (width, depth) in enumerate(zip(mm.widths, mm.depths())):
            external = f"ttedge_mem{k}" if self.external_memories else None
            cm = ClassMemory(width, depth, images[k], roles[k], P, Q, self.addr_bits, external, self.banks[k])
            m.submodules[f"mem{k}"] = cm
            cms.append(cm)
        self.class_memories = cms
        for pl in pls:
            if not self.external_memories:
                self.memories[pl.name] = (cms[pl.memory].memory, pl.offset, pl.depth)

        # Host address decode (its own fragment: it changes only with host_addr).
        hd = m.submodules.host_decode = Module()
        host_hit, host_mem, host_local = Signal(), Signal(range(len(cms))), Signal(unsigned(self.addr_bits))
        for pl in pls:
            with hd.If((self.host_addr >= pl.base) & (self.host_addr < pl.base + pl.depth)):
                hd.d.comb += [host_hit.eq(1), host_mem.eq(pl.memory), host_local.eq(self.host_addr - pl.base + pl.offset)]

        # Port routing (its own fragment).
        rt = m.submodules.route = Module()
        is_ew_run = owns & (op != Op.CONTRACT) & (op != Op.END) & (op != Op.SCALE)  # elementwise or loss
        w_mem = Mux(op == Op.SGD, ins.am, Mux(op == Op.PRIOR, ins.bm, ins.cm))
        w_off = Mux(op == Op.SGD, ins.ao, Mux(op == Op.PRIOR, ins.bo, ins.co))
        s_mem, s_off = Mux(op == Op.LAMBDA, ins.dm, ins.cm), Mux(op == Op.LAMBDA, ins.do, ins.co)
        # A read slot is selected only in the cycles its unit reads it (its data are used), so that
        # a banked memory's ports claim a bank only then (ttedge.hw.banks).
        # Only slots the instruction uses (ttedge.hw.banks.ACCESSES): the others' ids are 0, not buffers.
        def uses(role: str) -> object:
            ops, with_momentum = role_ops(role)
            return Cat(*[op == o for o in sorted(ops)], *([(op == Op.SGD) & ins.momentum] if with_momentum else [])).any()

        is_loss = op == Op.SOFTMAX
        ea_on = uses("EA") & Mux(is_pu, pu.ea_on, Mux(is_loss, loss.ea_on, ew.reading))
        eb_on = uses("EB") & Mux(is_pu, pu.eb_on, Mux(is_loss, loss.eb_on, ew.reading))
        ec_on = uses("EC") & Mux(is_pu, pu.ec_on, ew.reading)
        eng_on = owns & (op == Op.CONTRACT) & eng.reading
        for k, cm in enumerate(cms):
            rt.d.comb += [
                cm.l_sel.eq(eng_on & (ins.am == k)), cm.r_sel.eq(eng_on & (ins.bm == k)),
                cm.ea_sel.eq(is_ew_run & ea_on & (ins.am == k)), cm.eb_sel.eq(is_ew_run & eb_on & (ins.bm == k)),
                cm.ec_sel.eq(is_ew_run & ec_on & (ins.cm == k)),
                cm.ed_sel.eq(is_ew_run & pu.ed_on & (ins.dm == k) & (op == Op.PRIOR)), cm.host_sel.eq(host_ok & self.host_re),
                cm.ea.eq(Mux(is_pu, pu.ea, Mux(op == Op.SOFTMAX, loss.ea, ew.ea)) + ins.ao),
                cm.eb.eq(Mux(is_pu, pu.eb, Mux(op == Op.SOFTMAX, loss.eb, ew.eb)) + ins.bo),
                cm.ec.eq(Mux(is_pu, pu.ec, ew.ec) + ins.co), cm.ed.eq(pu.ed + ins.do), cm.host_addr.eq(host_local),
            ]
            rt.d.comb += [cm.l_addr[p].eq(eng.l_addr[p]) for p in range(P)]
            rt.d.comb += [cm.r_addr[q].eq(eng.r_addr[q]) for q in range(Q)]
            with rt.If(e_en[0] & (ins.cm == k)):
                rt.d.comb += [cm.w_en.eq(1), cm.w_addr.eq(lanes[0].out_index + ins.co), cm.w_data.eq(lanes[0].code)]
            with rt.Elif(mw_en & (w_mem == k)):
                rt.d.comb += [cm.w_en.eq(1), cm.w_addr.eq(mw_addr + w_off), cm.w_data.eq(mw_data)]
            with rt.Elif(host_ok & self.host_we & host_hit & (host_mem == k)):
                rt.d.comb += [cm.w_en.eq(1), cm.w_addr.eq(host_local), cm.w_data.eq(self.host_wdata)]
            rt.d.comb += [cm.v_en.eq(sw_en & (s_mem == k)), cm.v_addr.eq(sw_addr + s_off), cm.v_data.eq(sw_data)]
            for q in range(1, Q if "O" in cm.roles else 0):
                rt.d.comb += [cm.e_en[q - 1].eq(e_en[q] & (ins.cm == k)), cm.e_addr[q - 1].eq(lanes[q].out_index + ins.co),
                              cm.e_data[q - 1].eq(lanes[q].code)]

        # Read data back to the units (its own fragment).
        gt = m.submodules.gather = Module()
        for k, cm in enumerate(cms):
            if "L" in cm.roles:
                with gt.If(ins.am == k):
                    gt.d.comb += [eng.l_data[p].eq(cm.data[p]) for p in range(P)]
            if "R" in cm.roles:
                with gt.If(ins.bm == k):
                    gt.d.comb += [eng.r_data[q].eq(cm.data[cm.r_base + q]) for q in range(Q)]
            with gt.If(ins.am == k):
                gt.d.comb += ew.da.eq(cm.data[0])
            if len(cm.data) > 1:
                with gt.If(ins.bm == k):
                    gt.d.comb += ew.db.eq(cm.data[1])
            if len(cm.data) > 2:
                with gt.If(ins.cm == k):
                    gt.d.comb += ew.dc.eq(cm.data[2])
            if len(cm.data) > 3:
                with gt.If(ins.dm == k):
                    gt.d.comb += pu.dd.eq(cm.data[3])
        gt.d.comb += [pu.da.eq(ew.da), pu.db.eq(ew.db), pu.dc.eq(ew.dc)]

        decoding = Signal()  # the decode phase: the fetched word is loaded into ins
        # Saturation counters: one per counted buffer. Which buffers the instruction's write slots
        # and engine lanes write is decided as its word is decoded: one flag per buffer and slot,
        # so that a counter's event and a maximum's load see one flag, not the id muxes and compares.
        f_w_id = Mux(fetched.op == Op.SGD, fetched.a, Mux(fetched.op == Op.PRIOR, fetched.b, fetched.c))
        f_s_id = Mux(fetched.op == Op.LAMBDA, fetched.d, fetched.c)
        writes_to: dict[int, tuple[Signal, Signal, Signal]] = {}  # buffer -> (main slot, second slot, engine lanes)
        for pl in pls:
            if f"sat.{pl.name}" in regs or pl.buffer.dynamic:
                flags = tuple(Signal(name=f"{x}_is{pl.index}") for x in ("w", "s", "c"))
                with m.If(decoding):
                    m.d.sync += [flags[0].eq(f_w_id == pl.index), flags[1].eq(f_s_id == pl.index), flags[2].eq(fetched.c == pl.index)]
                writes_to[pl.index] = flags
        # Saturations reach the counters through two registers: the write slots' saturated writes
        # (they come from units across the die), then each counter's events of the cycle (the
        # destination match), so the slots' muxes, the match and the counter's adder are separate
        # paths. A count is complete two cycles after the last write, long before the step ends and
        # the host may read or write it; the instruction (ins) still holds then.
        main_sat, second_sat = stage(m, mw_en & mw_sat, 1, "sat_main"), stage(m, sw_en & sw_sat, 1, "sat_second")
        lane_sat = [stage(m, e_en[q] & lanes[q].saturated, 1, f"sat_lane{q}") for q in range(Q)]
        for pl in pls:
            counter = f"sat.{pl.name}"
            if counter not in regs:
                continue
            w_is, s_is, c_is = writes_to[pl.index]
            inc = (main_sat & w_is) | (second_sat & s_is)
            lanes_sat = sum((lane_sat[q] & c_is) for q in range(Q))
            events = stage(m, inc + lanes_sat, range(Q + 2), f"sat_events{pl.index}")
            with m.If(events != 0):
                m.d.sync += regs[counter].eq(regs[counter] + events)
            with m.Elif(host_ok & self.host_we & (self.host_addr == mm.register_address(counter))):
                m.d.sync += regs[counter].eq(self.host_wdata)

        # --- max |code| of every dynamic buffer, tracked on its writes (every instruction writes all
        # elements of its destination, so the last writer's maximum is the buffer's), and ScaleControl
        # applying its rule to it in its issue cycle.
        dyn = [pl for pl in pls if pl.buffer.dynamic]
        maxabs: dict[int, list[MaxAbs]] = {}
        for wd in sorted({pl.width for pl in dyn}):
            maxabs[wd] = []
            for q in range(Q):
                mx = m.submodules[f"maxabs{wd}_{q}"] = MaxAbs(wd)
                code = Mux(e_en[0], lanes[0].code, mw_data) if q == 0 else lanes[q].code
                valid = (e_en[0] | mw_en) if q == 0 else e_en[q]
                # the write stream, registered (TRACK_REGS): the writes' muxes and the maximum's
                # comparison are separate paths
                m.d.comb += [mx.clear.eq(phase == 2), mx.valid.eq(valid_chain(m, valid, TRACK_REGS, f"track{wd}_{q}_v")[-1]),
                             mx.code.eq(delay(m, code[:wd], TRACK_REGS, f"track{wd}_{q}"))]
                maxabs[wd].append(mx)
        maxregs = {pl.index: Signal(pl.width, name=f"max_{pl.name.replace('.', '_')}") for pl in dyn}
        finished = Signal()  # the WAIT phase's last cycle (the unit is idle)
        for pl in dyn:
            best = maxabs[pl.width][0].max
            for mx in maxabs[pl.width][1:]:
                best = Mux(mx.max > best, mx.max, best)
            with m.If(finished & writes_to[pl.index][0]):
                m.d.sync += maxregs[pl.index].eq(best)
        scaling = Signal()  # a ScaleControl's issue cycle
        # The scale unit's result (ScaleUnit.LATENCY = 1 edge later) is written the cycle after: the
        # next instruction's fetch, while ins still holds the ScaleControl and before the next
        # decode reads the registers.
        scaled = Signal()
        m.d.sync += scaled.eq(scaling)
        assert ScaleUnit.LATENCY == 1
        for k, (wd, rule) in enumerate(rules):
            su = m.submodules[f"scale{k}"] = ScaleUnit(wd, rule)
            # The unit's inputs, the state of buffer a, are latched at decode like the fracs: the
            # previous instruction's maximum and any earlier ScaleControl's update are in by then.
            latched = [Signal.like(su.m, name=f"scale{k}_m"), Signal.like(su.frac, name=f"scale{k}_frac"),
                       Signal.like(su.over, name=f"scale{k}_over"), Signal.like(su.under, name=f"scale{k}_under")]
            m.d.comb += [su.m.eq(latched[0]), su.frac.eq(latched[1]), su.over.eq(latched[2]), su.under.eq(latched[3])]
            with m.If(decoding):
                with m.Switch(fetched.a):
                    for pl in dyn:
                        if pl.width == wd:
                            with m.Case(pl.index):
                                key = f"scale.{pl.name}."
                                m.d.sync += [a.eq(b) for a, b in zip(latched, [maxregs[pl.index], regs[key + "frac"],
                                                                               regs[key + "over"], regs[key + "under"]])]
            with m.Switch(ins.a):
                for pl in dyn:
                    if pl.width == wd:
                        with m.Case(pl.index):
                            key = f"scale.{pl.name}."
                            with m.If(scaled & (ins.k1 == k)):
                                m.d.sync += [regs[key + "frac"].eq(su.new_frac), regs[key + "over"].eq(su.new_over),
                                             regs[key + "under"].eq(su.new_under)]

        # --- sequencer
        m.d.comb += [self.busy.eq(running), self.done.eq(done)]
        unit_busy = Mux(op == Op.CONTRACT, eng_busy, Mux(op == Op.SOFTMAX, loss.busy, Mux(is_pu, pu.busy, ew.busy)))
        prior_on = regs["prior.on"] if "prior.on" in regs else Const(1, 1)
        # The instruction ends WAIT cycles after its unit's busy falls, seen through registers only.
        held = Cat(*valid_chain(m, unit_busy, WAIT, "unit_busy")[1:]).any()
        # The units' start pulses (the issue phase) are registers too, set from the word as it is decoded.
        f_op = fetched.op
        is_ew = (f_op != Op.CONTRACT) & (f_op != Op.END) & (f_op != Op.SOFTMAX) & (f_op != Op.SCALE) & ~_is_prior(f_op)
        starts = {"engine": (eng, f_op == Op.CONTRACT), "loss": (loss, f_op == Op.SOFTMAX),
                  "prior": (pu, _is_prior(f_op) & prior_on), "ew": (ew, is_ew)}
        for name, (unit, when) in starts.items():
            m.d.comb += unit.start.eq(valid_chain(m, decoding & when, 1, f"start_{name}")[-1])
        with m.If(running):
            m.d.sync += cycles.eq(cycles + 1)
            with m.Switch(phase):
                with m.Case(0):
                    m.d.sync += [fetched.eq(iport.data), phase.eq(1)]
                with m.Case(1):
                    m.d.comb += decoding.eq(1)
                    m.d.sync += [ins.eq(fetched), phase.eq(2),
                                 fa.eq(frac_of(fetched.a)), fb.eq(frac_of(fetched.b)), fc.eq(frac_of(fetched.c))]
                with m.Case(2):
                    with m.If(op == Op.END):
                        m.d.sync += [running.eq(0), done.eq(1), regs["step"].eq(regs["step"] + 1), pc.eq(0), pc_next.eq(1)]
                    with m.Elif((op == Op.SCALE) | (is_pu & ~prior_on)):
                        m.d.comb += scaling.eq(op == Op.SCALE)
                        m.d.comb += advance.eq(1)
                        m.d.sync += phase.eq(0)
                    with m.Else():  # a unit starts (its start register is high)
                        m.d.sync += phase.eq(3)
                with m.Case(3):  # the unit, then the write stream's way to the MaxAbs units, drain
                    with m.If(~held):
                        m.d.comb += finished.eq(1)
                        m.d.comb += advance.eq(1)
                        m.d.sync += phase.eq(0)
        with m.Elif(self.host_we & (self.host_addr == CTRL) & self.host_wdata[0]):
            m.d.sync += [running.eq(1), done.eq(0), phase.eq(0), pc.eq(0), pc_next.eq(1), cycles.eq(0)]

        # Performance counters: the step's cycle count as each instruction finishes.
        with m.If(advance):
            m.d.sync += [pc.eq(pc_next), pc_next.eq(pc_next + 1)]
        prof = m.submodules.profile = Memory(shape=unsigned(32), depth=max(1, len(prog.instructions)), init=[])
        self.profile = prof
        pw, pr = prof.write_port(), prof.read_port()
        m.d.comb += [pw.en.eq(advance), pw.addr.eq(pc), pw.data.eq(cycles + 1), pr.addr.eq(self.host_addr - mm.profile_base)]

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
        from_mem, from_prof = Signal(), Signal()
        rmem = Signal(range(len(cms)))
        with m.If(self.host_re):
            m.d.sync += [from_mem.eq(host_hit), rmem.eq(host_mem), rdata_reg.eq(0),
                         from_prof.eq((self.host_addr >= mm.profile_base) & (self.host_addr < mm.profile_base + len(prog.instructions)))]
            with m.Switch(self.host_addr):
                with m.Case(STATUS):
                    m.d.sync += rdata_reg.eq(done | (running << 1))
                with m.Case(CYCLES):
                    m.d.sync += rdata_reg.eq(cycles)
                with m.Case(PC):
                    m.d.sync += rdata_reg.eq(pc)
                for a, name in reg_addr.items():
                    with m.Case(a):
                        m.d.sync += rdata_reg.eq(regs[name])
        # Everything but the memories' data (READ_LATENCY edges already) waits out the rest here.
        extra = HOST_READ_LATENCY - 1
        rdata_reg, from_mem, from_prof, rmem = (delay(m, x, extra, "host_read") for x in (rdata_reg, from_mem, from_prof, rmem))
        prof_data = delay(m, pr.data, extra, "host_prof")
        m.d.comb += self.host_rdata.eq(rdata_reg)
        with m.If(from_prof):
            m.d.comb += self.host_rdata.eq(prof_data)
        with m.If(from_mem):
            with m.Switch(rmem):
                for k, cm in enumerate(cms):
                    with m.Case(k):
                        m.d.comb += self.host_rdata.eq(cm.data[0])
        return m
