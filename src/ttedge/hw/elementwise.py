"""The elementwise unit: BiasAdd, BiasGrad, Relu, ReluGrad, SgdUpdate (with and without momentum)
and Narrow, one element per cycle through one pipeline.

Operands come through three read slots (buffer ids ``a``, ``b``, ``c`` of the word; the top routes
each slot to port 0 of that buffer's memory) and results leave through two write slots: the main
slot ``w`` (into buffer ``c``, or ``a`` for SgdUpdate, the parameter) and the velocity slot ``v``
(into ``c``, SgdUpdate with momentum). Every rounding is an :class:`~ttedge.hw.requant.OutputStage`
(one per destination width), every random word a :class:`~ttedge.hw.rng.RandomLane` with
stream = the instruction's position (``pc``), step = the step register and index = the flat output
element, as in the reference interpreter.

The shift amounts and comparisons that depend only on the instruction (its word, the fracs of its
buffers, the learning-rate shift) are registered the cycle after ``start``, before the first
operand arrives, so they stay off the per-element timing paths.

Pipeline, for the element issued at cycle t (addresses), with R = memories.READ_LATENCY (6),
L = OutputStage.LATENCY (6) and shifts in registered steps of three amount bits
(``pipe.shift_stages``: two for BiasAdd's 6-bit amounts, three for the update's 7-bit ones); every
stage is a short path for the accelerator's clock::

    t+R       read data arrive, and are registered (they drive nothing else here)
    t+R+1     the operands: registered read data, BiasGrad's running sum; BiasAdd's aligning shifts
    t+R+3     the other ops' values (ReLU, BiasAdd's sum, ...) are formed
    t+R+1 .. t+R+2L+3  (SgdUpdate with momentum) g -> v's frac (OutputStage 1), v >> ms, then
              v - (v >> ms) + g, saturated (OutputStage 2), written to the velocity at t+R+2L+3
    t+R+2L+3  the update's shifts: d = v or g, d >> excess; then p << (f - fp), d << (f - fd);
    t+R+2L+9  their difference, the update's exact value, is formed
    t+R+2L+10 the main OutputStage rounds (the random word, requested RandomLane.LATENCY = 17
              cycles before, at t+11, is ready now)
    t+R+3L+10 the main result is written (t+34)

so an instruction of n issued elements is busy n + FLUSH cycles (:data:`FLUSH`, 35), BiasGrad
issuing one element per (output, batch) pair and writing one result per output. The offsets are
derived below from the units' latencies; a test checks FLUSH against simulation.
"""

# No `from __future__ import annotations`: wiring.Component reads the port annotations as objects.

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.data import StructLayout
from amaranth.lib.wiring import In, Out

from ..fixed.ops import MAX_STOCHASTIC_SHIFT
from .isa import Op
from .memories import READ_LATENCY
from .pipe import delay, shift_edges, shift_stages, stage
from .requant import SHIFT_BITS, OutputStage, RoundingMode
from .rng import RandomLane
from .scale import FRAC_BITS

__all__ = ["ElementwiseUnit", "FLUSH"]

_ALIGN_BITS = 6  # BiasAdd's aligning shift amounts (bits)
_UPD_BITS = 7  # the update's shift amounts (bits)
_OPS_AT = READ_LATENCY + 1  # cycle offset (after issue) where the registered operands are ready: t + 7
_VAL_AT = _OPS_AT + shift_edges(_ALIGN_BITS)  # where the other ops' values are formed: t + 9
_MOM_STAGES = 2  # v >> ms, then v - (v >> ms) + g, between the momentum's two OutputStages
_V_AT = _OPS_AT + 2 * OutputStage.LATENCY + _MOM_STAGES  # where the new velocity is ready: t + 21
_UPD_AT = _V_AT + 2 * shift_edges(_UPD_BITS)  # where the update is formed (after its two shifts): t + 27
_MAIN_AT = max(RandomLane.LATENCY, _UPD_AT + 1)  # where the main OutputStage takes its input: t + 28
_RNG_DELAY = _MAIN_AT - RandomLane.LATENCY  # the random word is requested this many cycles after the issue
_WRITE_AT = _MAIN_AT + OutputStage.LATENCY  # where the main result is written: t + 34
FLUSH = _WRITE_AT + 1  # cycles from the last issue to busy falling: 35
_W = 64  # bits of the datapath (the reference's int64 codes)


class ElementwiseUnit(wiring.Component):
    """One element per cycle of the elementwise instructions (module docstring).

    ``w_widths``: the widths (bits) of every main-slot destination; ``v_widths``: of every velocity;
    ``seed``: the program's random seed; ``addr_bits``: bits of a memory address.
    """

    def __init__(self, layout: StructLayout, addr_bits: int, w_widths: list[int], v_widths: list[int],
                 seed: int, counter_width: int) -> None:
        self.w_widths, self.v_widths, self.seed = sorted(set(w_widths)), sorted(set(v_widths)) or [2], seed
        nsel = max(len(self.w_widths), len(self.v_widths), 1)
        super().__init__({
            "start": In(1), "word": In(layout), "busy": Out(1),
            "pc": In(32), "step": In(counter_width), "lr_decay": In(8),
            "fa": In(FRAC_BITS), "fb": In(FRAC_BITS), "fc": In(FRAC_BITS),
            "w_sel": In(range(nsel)), "v_sel": In(range(nsel)),  # index of the destination width
            "ea": Out(unsigned(addr_bits)), "eb": Out(unsigned(addr_bits)), "ec": Out(unsigned(addr_bits)),
            "reading": Out(1),  # ea, eb, ec are read this cycle (their data are used)
            "da": In(signed(_W)), "db": In(signed(_W)), "dc": In(signed(_W)),
            "w_en": Out(1), "w_addr": Out(unsigned(addr_bits)), "w_data": Out(signed(_W)), "w_sat": Out(1),
            "v_en": Out(1), "v_addr": Out(unsigned(addr_bits)), "v_data": Out(signed(_W)), "v_sat": Out(1),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        w = self.word
        nb = w.nx.shape().width + 2
        op = Signal(4)
        m.d.comb += op.eq(w.op)

        # --- issue: i over outputs, j over the BiasGrad batch (inner), addresses
        issuing = Signal()
        i, j, addr_a, bmod = (Signal(signed(nb), name=n) for n in ("i", "j", "addr_a", "bmod"))
        # the loop bounds, per instruction: registered at start, ready for the first issue after it
        j_last, i_last, b_last = (Signal(signed(nb), name=n) for n in ("j_last", "i_last", "b_last"))
        m.d.sync += [j_last.eq(Mux(op == Op.BIAS_GRAD, w.nzlo, 1) - 1), i_last.eq(w.nx - 1), b_last.eq(w.ny - 1)]
        last_j = j == j_last
        last_i = i == i_last
        with m.If(self.start):
            m.d.sync += [issuing.eq(w.nx > 0), i.eq(0), j.eq(0), addr_a.eq(0), bmod.eq(0)]
        with m.Elif(issuing):
            with m.If(last_j):
                m.d.sync += [j.eq(0), i.eq(i + 1), addr_a.eq(Mux(op == Op.BIAS_GRAD, i + 1, addr_a + 1))]
                m.d.sync += bmod.eq(Mux(bmod == b_last, 0, bmod + 1))
                with m.If(last_i):
                    m.d.sync += issuing.eq(0)
            with m.Else():
                m.d.sync += [j.eq(j + 1), addr_a.eq(addr_a + w.ny)]
        m.d.comb += [self.ea.eq(addr_a), self.eb.eq(Mux(op == Op.BIAS_ADD, bmod, i)), self.ec.eq(i), self.reading.eq(issuing)]

        # Per-issue control carried down the pipeline: valid, first/last of a BiasGrad sum, output index.
        depth = _WRITE_AT + 1
        valid = [Signal(name=f"valid{t}") for t in range(depth)]
        first = [Signal(name=f"first{t}") for t in range(depth)]
        last = [Signal(name=f"last{t}") for t in range(depth)]
        index = [Signal(signed(nb), name=f"index{t}") for t in range(depth)]
        m.d.comb += [valid[0].eq(issuing), first[0].eq(j == 0), last[0].eq(last_j), index[0].eq(i)]
        for t in range(1, depth):
            m.d.sync += [valid[t].eq(valid[t - 1]), first[t].eq(first[t - 1]), last[t].eq(last[t - 1]), index[t].eq(index[t - 1])]
        rng = m.submodules.rng = RandomLane()
        m.d.comb += [rng.seed.eq(self.seed), rng.stream.eq(self.pc), rng.step.eq(self.step),
                     rng.index.eq(index[_RNG_DELAY]), rng.valid.eq(valid[_RNG_DELAY])]

        # --- _OPS_AT: operands (the read data, registered as they arrive)
        da, db, dc = (Signal(signed(_W), name=n) for n in ("da_r", "db_r", "dc_r"))
        m.d.sync += [da.eq(self.da), db.eq(self.db), dc.eq(self.dc)]
        fa, fb, fc = self.fa, self.fb, self.fc
        lr = w.k1 + self.lr_decay
        acc = Signal(signed(_W))  # BiasGrad running sum
        acc_next = Signal(signed(_W))
        m.d.comb += acc_next.eq(Mux(first[_OPS_AT], da, acc + da))
        with m.If(valid[_OPS_AT]):
            m.d.sync += acc.eq(acc_next)

        # Momentum: OutputStage 1 (g to v's frac, nearest, not counted), then 2 (v - (v >> ms) + g).
        os1 = [OutputStage(64, vw) for vw in self.v_widths]
        os2 = [OutputStage(64, vw) for vw in self.v_widths]
        for k, (s1, s2) in enumerate(zip(os1, os2)):
            m.submodules[f"os1_{k}"], m.submodules[f"os2_{k}"] = s1, s2
        g_v = Signal(signed(_W))
        v_new, v_sat = Signal(signed(_W)), Signal()
        lat = OutputStage.LATENCY
        v_d = [Signal(signed(_W), name=f"v_d{t}") for t in range(lat + 1)]  # v delayed to OutputStage 1's output
        g_d = [Signal(signed(_W), name=f"g_d{t}") for t in range(_V_AT - _OPS_AT + 1)]  # g delayed to _V_AT
        p_d = [Signal(signed(_W), name=f"p_d{t}") for t in range(_V_AT - _OPS_AT + 1)]  # param delayed to _V_AT
        m.d.comb += [v_d[0].eq(dc), g_d[0].eq(db), p_d[0].eq(da)]
        for lst in (v_d, g_d, p_d):
            for t in range(1, len(lst)):
                m.d.sync += lst[t].eq(lst[t - 1])
        with m.Switch(self.v_sel):
            for k in range(len(self.v_widths)):
                with m.Case(k):
                    m.d.comb += [g_v.eq(os1[k].code), v_new.eq(os2[k].code), v_sat.eq(os2[k].saturated)]
        ms = w.k2[:6]  # momentum shift (bits), unsigned
        # Per-instruction values (from the word and the fracs, which hold for the whole instruction)
        # are registered once: ready the cycle after start, before the first operand arrives, and
        # off the datapath's timing paths.
        sh_bc, sh_ab, sh_ac = (Signal(signed(SHIFT_BITS), name=n) for n in ("sh_bc", "sh_ab", "sh_ac"))
        a_ge_b = Signal()
        m.d.sync += [sh_bc.eq(fb - fc), sh_ab.eq(fa - fb), sh_ac.eq(fa - fc), a_ge_b.eq(fa >= fb)]
        v_m, v_shr, g_m = (Signal(signed(_W), name=n) for n in ("v_m", "v_shr", "g_m"))
        mom = Signal(signed(_W))
        m.d.sync += [v_m.eq(v_d[lat]), v_shr.eq(v_d[lat] >> ms), g_m.eq(g_v), mom.eq(v_m - v_shr + g_m)]
        for s1, s2 in zip(os1, os2):
            m.d.comb += [s1.value.eq(db), s1.shift.eq(sh_bc), s1.rounding.eq(RoundingMode.NEAREST), s1.valid.eq(valid[_OPS_AT]),
                         s2.value.eq(mom), s2.shift.eq(0), s2.rounding.eq(RoundingMode.NEAREST),
                         s2.valid.eq(valid[_OPS_AT + lat + _MOM_STAGES])]
        momentum = (op == Op.SGD) & w.momentum
        m.d.comb += [self.v_en.eq(momentum & valid[_V_AT]), self.v_addr.eq(index[_V_AT]), self.v_data.eq(v_new), self.v_sat.eq(v_sat)]

        # --- _V_AT .. _UPD_AT: the update's exact value
        d = Signal(signed(_W))
        m.d.comb += d.eq(Mux(w.momentum, v_new, g_d[-1]))
        # The update's shifts, per instruction, in registered steps (they hold for the whole
        # instruction and are final 5 cycles after start, long before the first update): fd = frac
        # of d after the learning-rate shift, capped at fw + MAX_STOCHASTIC_SHIFT by first shifting
        # d right by the excess.
        fw = fa
        fd = stage(m, Mux(w.momentum, fc, fb) + lr, signed(16), "upd_fd")
        over = stage(m, fd - fw - MAX_STOCHASTIC_SHIFT, signed(16), "upd_over")  # the excess, if > 0
        excess = stage(m, Mux(over > 0, over[:_UPD_BITS], 0), _UPD_BITS, "excess")
        fd2 = stage(m, Mux(over > 0, fw + MAX_STOCHASTIC_SHIFT, fd), signed(16), "upd_fd2")
        f = stage(m, Mux(fw > fd2, fw, fd2), signed(16), "upd_f")
        p_up, d_up = stage(m, (f - fw)[:_UPD_BITS], _UPD_BITS, "p_up"), stage(m, (f - fd2)[:_UPD_BITS], _UPD_BITS, "d_up")
        upd_shift = stage(m, f - fw, signed(SHIFT_BITS), "upd_shift")
        d3 = shift_stages(m, shift_stages(m, d, excess, False, "upd_d2"), d_up, True, "upd_d3")
        p3 = shift_stages(m, delay(m, p_d[-1], shift_edges(_UPD_BITS), "upd_p2"), p_up, True, "upd_p3")
        upd = Signal(signed(_W))
        m.d.comb += upd.eq(p3 - d3)

        # --- _OPS_AT: BiasAdd's aligning shifts (the others' operands pass them unshifted); _VAL_AT:
        # the other ops' values, delayed with the update's
        bias_add = op == Op.BIAS_ADD
        up_a = stage(m, Mux(bias_add & ~a_ge_b, (-sh_ab)[:_ALIGN_BITS], 0), _ALIGN_BITS, "align_a")  # per instruction
        up_b = stage(m, Mux(bias_add & a_ge_b, sh_ab[:_ALIGN_BITS], 0), _ALIGN_BITS, "align_b")
        pa, pb = shift_stages(m, da, up_a, True, "pa"), shift_stages(m, db, up_b, True, "pb")
        acc_v = delay(m, acc, _VAL_AT - _OPS_AT - 1, "acc_v")  # the running sum through the element at _VAL_AT
        val1, sh1 = Signal(signed(_W)), Signal(signed(SHIFT_BITS))
        with m.Switch(op):
            with m.Case(Op.RELU):
                m.d.comb += [val1.eq(Mux(pa > 0, pa, 0)), sh1.eq(0)]
            with m.Case(Op.RELU_GRAD):
                m.d.comb += [val1.eq(Mux(pb > 0, pa, 0)), sh1.eq(0)]
            with m.Case(Op.BIAS_ADD):
                m.d.comb += [val1.eq(pa + pb), sh1.eq(Mux(a_ge_b, 0, -sh_ab))]
            with m.Case(Op.BIAS_GRAD):
                m.d.comb += [val1.eq(acc_v), sh1.eq(sh_ac)]  # the running sum, through this element
            with m.Case(Op.NARROW):
                m.d.comb += [val1.eq(pa), sh1.eq(sh_ac)]
        # val_d[k] holds at cycle t + _VAL_AT + k the value of the element issued at t; for SgdUpdate
        # the slot after _UPD_AT takes the update formed then. The main OutputStage reads the last.
        n = _MAIN_AT - _VAL_AT + 1
        swap = _UPD_AT - _VAL_AT + 1
        val_d = [Signal(signed(_W), name=f"val_d{t}") for t in range(n)]
        sh_d = [Signal(signed(SHIFT_BITS), name=f"sh_d{t}") for t in range(n)]
        m.d.comb += [val_d[0].eq(val1), sh_d[0].eq(sh1)]
        for t in range(1, n):
            src_v, src_s = val_d[t - 1], sh_d[t - 1]
            if t == swap:
                src_v, src_s = Mux(op == Op.SGD, upd, src_v), Mux(op == Op.SGD, upd_shift, src_s)
            m.d.sync += [val_d[t].eq(src_v), sh_d[t].eq(src_s)]

        # --- _MAIN_AT: the main output stage
        osw = [OutputStage(64, ww) for ww in self.w_widths]
        code, sat = Signal(signed(_W)), Signal()
        rounding = Mux(op == Op.SGD, RoundingMode.STOCHASTIC, Mux(op == Op.NARROW, w.rounding, RoundingMode.NEAREST))
        in_valid = valid[_MAIN_AT] & (~(op == Op.BIAS_GRAD) | last[_MAIN_AT])
        for k, s in enumerate(osw):
            m.submodules[f"osw_{k}"] = s
            m.d.comb += [s.value.eq(val_d[-1]), s.shift.eq(sh_d[-1]), s.rounding.eq(rounding), s.random.eq(rng.word), s.valid.eq(in_valid)]
        with m.Switch(self.w_sel):
            for k in range(len(self.w_widths)):
                with m.Case(k):
                    m.d.comb += [code.eq(osw[k].code), sat.eq(osw[k].saturated)]
        out_valid = valid[_WRITE_AT] & (~(op == Op.BIAS_GRAD) | last[_WRITE_AT])
        m.d.comb += [self.w_en.eq(out_valid), self.w_addr.eq(index[_WRITE_AT]), self.w_data.eq(code), self.w_sat.eq(sat)]

        m.d.comb += self.busy.eq(self.start | issuing | Cat(*valid[1:]).any())
        return m
