"""The rank-prior unit: PriorGrad (the penalty's gradient into a core gradient) and LambdaUpdate
(the damped EM step of one bond's variances and their inverses), as ``ttedge.fixed.program``
defines them, bit for bit.

Both walk a core in its stored (out, contract) matrix layout, where the rank index of a bond is a
mixed-radix digit of the flat element index e: digit = (e // stride) % size. A digit counter
(an inner count to ``stride`` and the digit itself) follows it, so nothing divides.

**PriorGrad** (word: a = core, b = gradient, c / d = left / right precision buffers, flags ``pl`` /
``pr`` say the bond exists; ``nylo``/``nyhi`` = stride and size of the left digit, ``nzlo``/``nzhi``
of the right one; k1 = c, the 16-bit constant; k2 = coef_frac + fG + fP). One element per cycle,
with L = OutputStage.LATENCY (6), in stages short enough for the accelerator's clock::

    t      addresses: core[e], grad[e], prec_left[a], prec_right[b]
    t+R    read data arrive (R = memories.READ_LATENCY = 6); G and Pl + Pr are registered
    t+R+1  k1 * G;  t+R+2 its products with the low and high 20 bits of Pl + Pr;  t+R+3 their sum
    t+R+4  T = k1 * G * (Pl + Pr) (mod 2**64) into OutputStage 1 (shift k2 - fg, nearest, 48-bit clamp)
    t+R+4+L  g + U into OutputStage 2 (shift 0, nearest, the gradient's width: saturation counted)
    t+R+4+2L written to grad[e] (main write slot), t+22

so an instruction of n elements is busy n + :data:`PRIOR_FLUSH` cycles (23).

**LambdaUpdate** (word: a / b = the bond's left / right cores, c = lambda, d = precision; ``nx``
elements of the left core with the bond's digit at stride ``nylo``, size ``nyhi`` = the rank;
``nzlo`` elements of the right core, digit stride ``nzhi``; k1 = s (signed), k2 = the damping
shift, k3 = two_beta, k4 = den, k5 = fP + fL). First every element of both cores is squared and
added into its rank's accumulator (one element per cycle: the value registered as it arrives, its
square registered, then the sum; a drain of as many cycles follows); then per rank
index t, sequentially (:data:`LAMBDA_PER_RANK` cycles each): read lambda[t], divide
(M + two_beta) << s by den (or by den << -s) on the divider, form the damped and clamped lambda,
divide 2**(fP + fL) by it on the same divider, clamp, and write lambda[t] (main slot) and
precision[t] (second slot) in one cycle, each with its saturation flag.

:func:`ttedge.hw.cycles.instruction_cycles` counts both; a test checks it against simulation.
"""

# No `from __future__ import annotations`: wiring.Component reads the port annotations as objects.

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.data import StructLayout
from amaranth.lib.wiring import In, Out

from .arith import Divider, divider_cycles
from .isa import Op
from .memories import READ_LATENCY
from .pipe import delay, stage, valid_chain
from .requant import SHIFT_BITS, OutputStage, RoundingMode
from .scale import FRAC_BITS

__all__ = ["PriorUnit", "PRIOR_FLUSH", "LAMBDA_DRAIN", "LAMBDA_PER_RANK"]

_W = 64  # bits of the datapath (the reference's int64 codes)
_T_AT = READ_LATENCY + 4  # PriorGrad: cycle offset (after issue) where T enters OutputStage 1: t + 10
_WRITE_AT = _T_AT + 2 * OutputStage.LATENCY  # where the gradient is written: t + 22
PRIOR_FLUSH = _WRITE_AT + 1  # PriorGrad: the start cycle and the pipeline after the last issue: 23
_HALF = 20  # Pl + Pr (40 bits used) multiplies in two halves
_SQ_STAGES = 2  # LambdaUpdate: a value registered as it arrives, then its square, then the sum
LAMBDA_DRAIN = 1 + _SQ_STAGES  # LambdaUpdate: the start cycle and the drain before the ranks
_DIV = divider_cycles(_W)
LAMBDA_PER_RANK = READ_LATENCY + 2 * _DIV + 1  # read lambda[t] (R cycles), two divisions, write


class PriorUnit(wiring.Component):
    """PriorGrad and LambdaUpdate (module docstring).

    ``g_widths``: the widths of every PriorGrad gradient; ``max_rank``: the largest bond rank;
    ``lam_max`` / ``prec_max``: the largest lambda and precision codes (one format each per program).
    Without ``enabled`` (a program without the prior) the unit is empty and its outputs stay 0.
    """

    def __init__(self, layout: StructLayout, addr_bits: int, g_widths: list[int], max_rank: int, lam_max: int, prec_max: int,
                 enabled: bool = True) -> None:
        self.enabled = enabled
        self.g_widths, self.max_rank = sorted(set(g_widths)) or [2], max(max_rank, 1)
        self.lam_max, self.prec_max = lam_max, prec_max
        A = unsigned(addr_bits)
        super().__init__({
            "start": In(1), "word": In(layout), "busy": Out(1),
            "fb": In(FRAC_BITS), "w_sel": In(range(len(self.g_widths))),
            "ea": Out(A), "eb": Out(A), "ec": Out(A), "ed": Out(A),
            "ea_on": Out(1), "eb_on": Out(1), "ec_on": Out(1), "ed_on": Out(1),  # read this cycle (data used)
            "da": In(signed(_W)), "db": In(signed(_W)), "dc": In(signed(_W)), "dd": In(signed(_W)),
            "w_en": Out(1), "w_addr": Out(A), "w_data": Out(signed(_W)), "w_sat": Out(1),
            "v_en": Out(1), "v_addr": Out(A), "v_data": Out(signed(_W)), "v_sat": Out(1),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        if not self.enabled:
            return m
        w = self.word
        nb = w.nx.shape().width + 2
        prior = Signal()
        m.d.comb += prior.eq(w.op == Op.PRIOR)
        S = lambda name: Signal(signed(nb), name=name)  # noqa: E731

        # --- the element walk: e and two digit counters (count within the stride, digit)
        issuing, second = Signal(), Signal()  # second: LambdaUpdate walking the right core
        e, ca, a, cb, b = S("e"), S("ca"), S("a"), S("cb"), S("b")
        count = Mux(second, w.nzlo, w.nx)
        last = e == count - 1

        def digit_next(c: Signal, d: Signal, stride: object, size: object) -> list[object]:
            wrap = c == stride - 1
            return [c.eq(Mux(wrap, 0, c + 1)), d.eq(Mux(wrap, Mux(d == size - 1, 0, d + 1), d))]

        ranks = Signal()  # LambdaUpdate: in its per-rank phase
        drain = Signal(range(_SQ_STAGES + 1))  # LambdaUpdate: cycles left between the last square's issue and the ranks
        with m.If(self.start):
            m.d.sync += [issuing.eq(1), second.eq(0), e.eq(0), ca.eq(0), a.eq(0), cb.eq(0), b.eq(0)]
        with m.Elif(issuing):
            m.d.sync += e.eq(Mux(last, 0, e + 1))
            with m.If(prior):
                m.d.sync += digit_next(ca, a, w.nylo, w.nyhi) + digit_next(cb, b, w.nzlo, w.nzhi)
            with m.Else():
                m.d.sync += digit_next(ca, a, Mux(second, w.nzhi, w.nylo), w.nyhi)
            with m.If(last):
                with m.If(prior | second):
                    m.d.sync += issuing.eq(0)
                    m.d.sync += drain.eq(Mux(prior, 0, _SQ_STAGES))
                with m.Else():
                    m.d.sync += [second.eq(1), ca.eq(0), a.eq(0)]
        m.d.comb += [self.ea.eq(e), self.eb.eq(e), self.ed.eq(b)]
        # PriorGrad reads all four slots per element; LambdaUpdate the left core, then the right
        # one, and each lambda (c) at the start of its rank (ec_on is set below).
        m.d.comb += [self.ea_on.eq(issuing & (prior | ~second)), self.eb_on.eq(issuing & (prior | second)),
                     self.ed_on.eq(issuing & prior)]

        depth = _WRITE_AT + 1
        valid = [Signal(name=f"valid{t}") for t in range(depth)]
        index = [Signal(signed(nb), name=f"index{t}") for t in range(depth)]
        m.d.comb += [valid[0].eq(issuing & prior), index[0].eq(e)]
        for t in range(1, depth):
            m.d.sync += [valid[t].eq(valid[t - 1]), index[t].eq(index[t - 1])]

        # --- PriorGrad: T = k1 * G * (Pl + Pr), U = its 48-bit rounding at g's frac, g + U saturated
        core, psum = Signal(signed(32), name="core"), Signal(signed(40), name="psum")
        kg, p_lo, p_hi, t_val = (Signal(signed(_W), name=n) for n in ("kg", "t_lo", "t_hi", "t_val"))
        psum3 = Signal.like(psum, name="psum3")
        m.d.sync += [
            core.eq(self.da[:32]), psum.eq(Mux(w.pl, self.dc, 0) + Mux(w.pr, self.dd, 0)),  # t+R+1
            kg.eq(w.k1 * core), psum3.eq(psum),  # t+R+2
            p_lo.eq(kg * psum3[:_HALF]), p_hi.eq(kg * psum3[_HALF:].as_signed()),  # t+R+3
            t_val.eq(p_lo + (p_hi << _HALF)[:_W]),  # t+R+4: mod 2**64, as the reference's int64 product
        ]
        os1 = m.submodules.os1 = OutputStage(_W, 48)
        shift = Signal(signed(SHIFT_BITS))
        m.d.sync += shift.eq(w.k2 - self.fb)  # per instruction: ready long before the first T
        m.d.comb += [os1.value.eq(t_val), os1.shift.eq(shift), os1.rounding.eq(RoundingMode.NEAREST), os1.valid.eq(valid[_T_AT])]
        lat = OutputStage.LATENCY
        g_d = [Signal(signed(_W), name=f"g_d{t}") for t in range(_T_AT + lat - READ_LATENCY + 1)]  # g from its arrival to OutputStage 2
        m.d.comb += g_d[0].eq(self.db)
        for t in range(1, len(g_d)):
            m.d.sync += g_d[t].eq(g_d[t - 1])
        code, sat = Signal(signed(_W)), Signal()
        for k, gw in enumerate(self.g_widths):
            os2 = m.submodules[f"os2_{k}"] = OutputStage(_W, gw)
            m.d.comb += [os2.value.eq(g_d[-1] + os1.code), os2.shift.eq(0), os2.rounding.eq(RoundingMode.NEAREST),
                         os2.valid.eq(valid[_T_AT + lat])]
            with m.If(self.w_sel == k):
                m.d.comb += [code.eq(os2.code), sat.eq(os2.saturated)]

        # --- LambdaUpdate: squares into per-rank accumulators: the flags travel to the data's
        # arrival (READ_LATENCY), the value is registered, squared into a register, then summed.
        acc = Array(Signal(unsigned(_W), name=f"acc{t}", reset_less=True) for t in range(self.max_rank))
        sq_valid = valid_chain(m, issuing & ~prior, READ_LATENCY + _SQ_STAGES, "sq_valid")
        sq_second = delay(m, second, READ_LATENCY, "sq_second")
        sq_digit = delay(m, a[: max(1, (self.max_rank - 1).bit_length())], READ_LATENCY + _SQ_STAGES, "sq_digit")
        with m.If(self.start):
            m.d.sync += [acc[t].eq(0) for t in range(self.max_rank)]
        value = stage(m, Mux(sq_second, self.db, self.da)[:32].as_signed(), signed(32), "sq_value")
        square = stage(m, value * value, unsigned(_W), "square")
        with m.If(sq_valid[-1]):
            m.d.sync += acc[sq_digit].eq(acc[sq_digit] + square)

        # --- LambdaUpdate: per rank index, two divisions on one divider
        div = m.submodules.div = Divider(_W, _W)
        rank = Signal(range(self.max_rank + 1))
        step = Signal(range(LAMBDA_PER_RANK + 1))
        lam, lamc, new = (Signal(signed(_W + 2), name=n) for n in ("lam", "lamc", "new"))
        lam_sat = Signal()
        num = Signal(unsigned(_W))
        m.d.comb += num.eq(acc[rank] + w.k3)
        s, k = w.k1, w.k2[:6]
        diff = Signal(signed(_W + 2))
        m.d.comb += diff.eq(div.quotient - lam)
        half = (Const(1, _W + 2) << (k - 1)[:6])[: _W + 2]
        m.d.comb += new.eq(lam + Mux(k == 0, diff, (diff + half) >> k))
        clamped = Signal(signed(_W + 2))
        m.d.comb += clamped.eq(Mux(new < 1, 1, Mux(new > self.lam_max, self.lam_max, new)))
        prec = Signal(signed(_W + 2))
        m.d.comb += prec.eq(Mux(div.quotient > self.prec_max, self.prec_max, div.quotient))
        m.d.comb += self.ec.eq(Mux(prior, a, rank))
        with m.If(self.start):
            m.d.sync += [rank.eq(0), step.eq(0), ranks.eq(0), drain.eq(0)]
        with m.Elif(drain != 0):
            m.d.sync += drain.eq(drain - 1)
            with m.If(drain == 1):
                m.d.sync += [ranks.eq(1), step.eq(0)]
        with m.Elif(ranks):
            m.d.sync += step.eq(step + 1)
            with m.If(step == READ_LATENCY):  # lambda[t] on the read port: (M + 2 beta) << s over den
                m.d.sync += lam.eq(self.dc)
                m.d.comb += div.start.eq(1)
                with m.If(s >= 0):
                    m.d.comb += [div.num.eq(num << s[:7]), div.den.eq(w.k4)]
                with m.Else():
                    m.d.comb += [div.num.eq(num), div.den.eq(w.k4 << (-s)[:7])]
            with m.If(step == READ_LATENCY + _DIV):  # the damped, clamped lambda; then 2**(fP + fL) over it
                m.d.sync += [lamc.eq(clamped), lam_sat.eq(clamped != new)]
                m.d.comb += [div.start.eq(1), div.num.eq(Const(1, _W) << w.k5[:6]), div.den.eq(clamped)]
            with m.If(step == LAMBDA_PER_RANK - 1):
                m.d.sync += [step.eq(0), rank.eq(rank + 1)]
                with m.If(rank == w.nyhi - 1):
                    m.d.sync += ranks.eq(0)
        writing = ranks & (step == LAMBDA_PER_RANK - 1)
        # lambda[t] is read in its rank's first cycle only: its write, the rank's last, then meets no read of it
        m.d.comb += self.ec_on.eq((issuing & prior) | (ranks & (step == 0)))

        # --- write slots: PriorGrad's gradient, or LambdaUpdate's lambda (main) and precision (second)
        m.d.comb += [
            self.w_en.eq(valid[_WRITE_AT] | writing), self.w_addr.eq(Mux(prior, index[_WRITE_AT], rank)),
            self.w_data.eq(Mux(prior, code, lamc)), self.w_sat.eq(Mux(prior, sat, lam_sat)),
            self.v_en.eq(writing), self.v_addr.eq(rank), self.v_data.eq(prec), self.v_sat.eq(prec != div.quotient),
        ]
        m.d.comb += self.busy.eq(self.start | issuing | (drain != 0) | ranks | Cat(*valid[1:]).any())
        return m
