"""The fixed-point exponential and the softmax cross-entropy gradient of one row, in hardware.

``ExpNeg(frac_out)`` is ``ttedge.fixed.softmax.exp_neg`` for one element per cycle, following the
reference's bit-level recipe step by step (its module docstring); the 257-entry table is a ROM
initialised from ``EXP_TABLE`` and LOG2E and the bit splits are imported, never retyped::

    x         : In(signed(32))    the input code, -2**31 < x <= 0
    frac_in   : In(FRAC_BITS)     fractional bits of x, 0..62 (runtime)
    valid     : In(1)
    y         : Out(EXP_FRAC + 1) e**x with ``frac_out`` (0..30, a parameter) fractional bits, 0..2**frac_out
    valid_out : Out(1)

LATENCY = 13 edges, fully pipelined, every stage short enough for the accelerator's clock:
(1) |x| registered; (2) the four 16 x 16-bit partial products of the constant product |x| * LOG2E;
(3) the middle two's sum; (4) Y, the sum of all (62 bits); (5) the shift Z = Y >> frac_in; (6) the
two ROM reads T[j], T[j+1] (synchronous read ports) and the final shift s = k + 30 - frac_out
capped at 32 (every shift >= 32 gives 0 since v <= 2**30); (7) the ROM words registered as they
leave the block RAM; (8) d = T[j] - T[j+1] < 2**22; (9) the interpolation product d * r
(22 x 18 bits) as two partial products, (10) their sum; (11) v = T[j] - ((d * r + 2**17) >> 18);
(12) and (13) the final rounding (((v << 1) >> s) + 1) >> 1, which equals v for s = 0 and
(v + 2**(s-1)) >> s else.

``SoftmaxXentUnit(in_width, out_fmt, num_classes)`` computes one row of
``ttedge.fixed.softmax.softmax_xent_grad`` (C = num_classes logits of ``in_width`` bits, 2..31, the
gradient codes in ``out_fmt``, whose overflow must be "saturate"). Ports::

    start       : In(1)                  at an edge where busy is low: takes frac and label, starts a row
    frac        : In(FRAC_BITS)          fractional bits of the logits (0..62)
    label       : In(range(C))           the row's class index
    in_valid    : In(1)                  after start: one logit per edge where in_valid is high, class 0 first
    in_code     : In(signed(in_width))   the logit code
    in_random   : In(32)                 its stochastic-rounding word (ignored unless out_fmt is stochastic)
    busy        : Out(1)
    out_valid   : Out(1)                 one cycle per class, in class order
    out_code    : Out(out_fmt shape)     the gradient code of class out_index
    out_index   : Out(range(C))
    out_saturated : Out(1)               this gradient was clamped
    sat_count   : Out(range(C + 1))      gradients clamped in this row (final when done is high)
    done        : Out(1)                 one cycle, after the last out_valid; busy is low in it

Schedule (the same for every row, no stalls): the C logits are kept in registers while the running
max m is taken; the ExpNeg unit takes z_c - m for c = 0..C-1 on consecutive edges (with
SOFTMAX_EXP_FRAC = 20 output bits), and its results are stored and summed into S; then for each
class a ``Divider`` (31 quotient bits, as p_c <= 2**30) computes p_c = floor(e_c * 2**30 / S),
g_c = p_c - 2**30 [c == label] goes through an ``OutputStage`` (k = 30 - out_fmt.frac, the
format's rounding) and leaves on out_code; the next division starts at the edge where the previous
one is done. From the edge that takes ``start`` (counted as one) to the cycle where ``done`` is high
there are ``softmax_row_cycles(C)`` = 1 + C + C + ExpNeg.LATENCY + C * (31 + 1) +
OutputStage.LATENCY + 1 = 34 C + 21 edges when the logits arrive on the C edges right after start;
each edge without ``in_valid`` during loading adds one.

Storage is registers: C x (in_width + 32 + 21) bits for logits, random words and exponentials.
"""

# No `from __future__ import annotations`: wiring.Component reads the port annotations as objects.

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..errors import ConfigError
from ..fixed.format import MAX_FRAC, FixedFormat
from ..fixed.softmax import (
    EXP_FRAC,
    EXP_INTERP_BITS,
    EXP_MAX_INPUT_BITS,
    EXP_SEGMENT_BITS,
    EXP_TABLE,
    LOG2E,
    SOFTMAX_EXP_FRAC,
    SOFTMAX_PROB_FRAC,
)
from .arith import Divider, divider_cycles
from .pipe import delay, stage, valid_chain
from .requant import OutputStage, RoundingMode

__all__ = ["ExpNeg", "SoftmaxXentUnit", "softmax_row_cycles", "FRAC_BITS"]

FRAC_BITS = MAX_FRAC.bit_length()  # 6: runtime fractional-bit inputs hold 0..MAX_FRAC
_WORD = 32
_TABLE_BITS = int(EXP_TABLE.max()).bit_length()  # 31
_PROB_QUOTIENT_BITS = SOFTMAX_PROB_FRAC + 1  # p_c <= 2**30 needs 31 bits
_DIFF_BITS = int((EXP_TABLE[:-1] - EXP_TABLE[1:]).max()).bit_length()  # 22: T[j] - T[j+1] < 2**22
_MAX_SHIFT = 32  # final shifts from 32 up all give 0 (v <= 2**30)


class ExpNeg(wiring.Component):
    """``exp_neg(x, frac_in, frac_out)`` for one element per cycle (module docstring)."""

    LATENCY = 13  # edges from valid to valid_out

    def __init__(self, frac_out: int) -> None:
        if not isinstance(frac_out, int) or isinstance(frac_out, bool) or not 0 <= frac_out <= EXP_FRAC:
            raise ConfigError(
                f"the exp unit gives 0 to {EXP_FRAC} fractional bits, got {frac_out!r}; pick frac_out in that range."
            )
        self.frac_out = frac_out
        super().__init__(
            {
                "x": In(signed(_WORD)),
                "frac_in": In(FRAC_BITS),
                "valid": In(1),
                "y": Out(EXP_FRAC + 1),
                "valid_out": Out(1),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.table = table = Memory(
            shape=unsigned(_TABLE_BITS), depth=len(EXP_TABLE), init=[int(t) for t in EXP_TABLE]
        )
        read_lo, read_hi = table.read_port(), table.read_port()

        valid = valid_chain(m, self.valid, self.LATENCY)
        m.d.comb += self.valid_out.eq(valid[-1])

        # (1) |x| < 2**31.
        magnitude = stage(m, -self.x, EXP_MAX_INPUT_BITS, "magnitude")
        frac_in = delay(m, stage(m, self.frac_in, FRAC_BITS, "frac_in1"), 3, "frac_in")
        # (2) the four 16 x 16-bit partial products of |x| * LOG2E (one 18 x 18 multiplier each).
        half = 16
        m_lo, m_hi = magnitude[:half], magnitude[half:]
        c_lo, c_hi = LOG2E & ((1 << half) - 1), LOG2E >> half
        ll = stage(m, m_lo * c_lo, 2 * half, "pp_ll")
        lh = stage(m, m_lo * c_hi, 2 * half, "pp_lh")
        hl = stage(m, m_hi * c_lo, 2 * half, "pp_hl")
        hh = stage(m, m_hi * c_hi, 2 * half, "pp_hh")
        # (3) the middle products' sum; the outer two do not overlap: ll + hh * 2**32 = Cat(ll, hh).
        mid = stage(m, lh + hl, 2 * half + 1, "pp_mid")
        outer = stage(m, Cat(ll, hh), 4 * half, "pp_outer")
        # (4) Y = |x| * LOG2E < 2**62.
        product = stage(m, outer + (mid << half), 2 * EXP_MAX_INPUT_BITS, "product")
        # (5) Z = Y >> frac_in; k = Z >> 30, u = Z mod 2**30, j = u >> 22, r = (u >> 4) mod 2**18.
        z = stage(m, product >> frac_in, 2 * EXP_MAX_INPUT_BITS, "z")
        u = z[:EXP_FRAC]
        j = u[EXP_FRAC - EXP_SEGMENT_BITS :]
        low_bits = EXP_FRAC - EXP_SEGMENT_BITS - EXP_INTERP_BITS
        k = z[EXP_FRAC:]
        # (6) the ROM addresses T[j], T[j+1] are taken (synchronous read ports); the shift of the
        # final rounding, s = min(k + 30 - frac_out, 32) (every s >= 32 gives 0 as v <= 2**30).
        m.d.comb += [read_lo.addr.eq(j), read_hi.addr.eq(j + 1)]
        position = stage(m, u[low_bits : low_bits + EXP_INTERP_BITS], EXP_INTERP_BITS, "position")
        s_full = k + (EXP_FRAC - self.frac_out)
        s = stage(m, Mux(s_full >= _MAX_SHIFT, _MAX_SHIFT, s_full), _MAX_SHIFT.bit_length(), "s")
        # (7) the table words, registered as they leave the ROM.
        t_lo = stage(m, read_lo.data, _TABLE_BITS, "t_lo")
        t_hi = stage(m, read_hi.data, _TABLE_BITS, "t_hi")
        # (8) d = T[j] - T[j+1] < 2**22.
        diff = stage(m, t_lo - t_hi, _DIFF_BITS, "diff")
        # (9) the interpolation product d * r as two partial products (18 x 18 and 4 x 18 bits),
        # (10) their sum.
        r = delay(m, position, 2, "position")
        d_lo, d_hi = diff[:EXP_INTERP_BITS], diff[EXP_INTERP_BITS:_DIFF_BITS]
        p_lo = stage(m, d_lo * r, 2 * EXP_INTERP_BITS, "interp_lo")
        p_hi = stage(m, d_hi * r, len(d_hi) + EXP_INTERP_BITS, "interp_hi")
        interp = stage(m, p_lo + (p_hi << EXP_INTERP_BITS), _DIFF_BITS + EXP_INTERP_BITS, "interp")
        # (11) v = T[j] - ((d * r + 2**17) >> 18) <= 2**30.
        v = stage(m, delay(m, t_lo, 3, "t_lo") - ((interp + (1 << (EXP_INTERP_BITS - 1))) >> EXP_INTERP_BITS), EXP_FRAC + 1, "v")
        # (12) floor(v / 2**(s-1)) (v << 1 when s = 0), then (13) + 1, halved: (v + 2**(s-1)) >> s.
        shifted = stage(m, Cat(Const(0, 1), v) >> delay(m, s, 5, "s"), EXP_FRAC + 2, "shifted")
        m.d.sync += self.y.eq((shifted + 1) >> 1)
        return m


def softmax_row_cycles(num_classes: int) -> int:
    """Clock edges from the edge that takes ``start`` (counted) to the cycle where ``done`` is high,
    for a row whose logits arrive on the ``num_classes`` edges right after start (module docstring)."""
    c = num_classes
    return 1 + c + c + ExpNeg.LATENCY + c * divider_cycles(_PROB_QUOTIENT_BITS) + OutputStage.LATENCY + 1


class SoftmaxXentUnit(wiring.Component):
    """One row of ``softmax_xent_grad``: logits streamed in, gradient codes streamed out (module docstring)."""

    def __init__(self, in_width: int, out_fmt: FixedFormat, num_classes: int) -> None:
        if not isinstance(in_width, int) or isinstance(in_width, bool) or not 2 <= in_width <= EXP_MAX_INPUT_BITS:
            raise ConfigError(
                f"softmax logits need 2 to {EXP_MAX_INPUT_BITS} bits, got {in_width!r}; use a narrower logit format."
            )
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
            raise ConfigError(
                f"the softmax unit needs at least 2 classes, got {num_classes!r}; pass the number of classes."
            )
        if out_fmt.overflow != "saturate":
            raise ConfigError(
                f"the softmax unit saturates its gradients, but {out_fmt} wraps; use a saturating gradient format."
            )
        self.in_width, self.out_fmt, self.num_classes = in_width, out_fmt, num_classes
        out_shape = signed(out_fmt.width) if out_fmt.signed else unsigned(out_fmt.width)
        super().__init__(
            {
                "start": In(1),
                "frac": In(FRAC_BITS),
                "label": In(range(num_classes)),
                "in_valid": In(1),
                "in_code": In(signed(in_width)),
                "in_random": In(_WORD),
                "busy": Out(1),
                "out_valid": Out(1),
                "out_code": Out(out_shape),
                "out_index": Out(range(num_classes)),
                "out_saturated": Out(1),
                "sat_count": Out(range(num_classes + 1)),
                "done": Out(1),
            }
        )

    def cycles(self) -> int:
        """``softmax_row_cycles(num_classes)``: edges from start to done at full input rate."""
        return softmax_row_cycles(self.num_classes)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        n, fmt = self.num_classes, self.out_fmt
        sum_bits = (n << SOFTMAX_EXP_FRAC).bit_length()  # S <= C * 2**20
        m.submodules.exp = exp = ExpNeg(SOFTMAX_EXP_FRAC)
        m.submodules.divider = divider = Divider(
            SOFTMAX_EXP_FRAC + 1 + SOFTMAX_PROB_FRAC, sum_bits, _PROB_QUOTIENT_BITS
        )
        m.submodules.output = output = OutputStage(_WORD, fmt.width, fmt.signed)

        logits = Array(Signal(signed(self.in_width), name=f"z{c}", reset_less=True) for c in range(n))
        words = Array(Signal(_WORD, name=f"r{c}", reset_less=True) for c in range(n))
        exps = Array(Signal(SOFTMAX_EXP_FRAC + 1, name=f"e{c}", reset_less=True) for c in range(n))
        frac = Signal(FRAC_BITS, reset_less=True)
        label = Signal(range(n), reset_less=True)
        top = Signal(signed(self.in_width), reset_less=True)  # running max of the logits
        total = Signal(sum_bits, reset_less=True)  # S
        count = Signal(range(n + 1), reset_less=True)  # logits loaded / exps issued / divisions started
        written = Signal(range(n + 1), reset_less=True)  # exps stored
        dividing = Signal(range(n), reset_less=True)  # the class in the divider
        emitted = Signal(range(n + 1), reset_less=True)  # gradients out

        quotient = Cat(divider.quotient, Const(0, 1)).as_signed()  # p_c, 0..2**30, as a signed value
        m.d.sync += self.done.eq(0)
        m.d.comb += [
            exp.frac_in.eq(frac),
            exp.x.eq(logits[count] - top),
            divider.num.eq(Cat(Const(0, SOFTMAX_PROB_FRAC), exps[count])),  # e_c * 2**30
            divider.den.eq(total),
            output.value.eq(quotient - Mux(dividing == label, 1 << SOFTMAX_PROB_FRAC, 0)),  # g_c
            output.shift.eq(SOFTMAX_PROB_FRAC - fmt.frac),
            output.rounding.eq(RoundingMode.from_name(fmt.rounding)),
            output.random.eq(words[dividing]),
            self.out_valid.eq(output.valid_out),
            self.out_code.eq(output.code),
            self.out_saturated.eq(output.saturated),
            self.out_index.eq(emitted),
        ]
        with m.If(output.valid_out):
            m.d.sync += [emitted.eq(emitted + 1), self.sat_count.eq(self.sat_count + output.saturated)]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [frac.eq(self.frac), label.eq(self.label), count.eq(0)]
                    m.next = "LOAD"
            with m.State("LOAD"):
                m.d.comb += self.busy.eq(1)
                with m.If(self.in_valid):
                    m.d.sync += [logits[count].eq(self.in_code), words[count].eq(self.in_random), count.eq(count + 1)]
                    with m.If((count == 0) | (self.in_code > top)):
                        m.d.sync += top.eq(self.in_code)
                    with m.If(count == n - 1):
                        m.d.sync += [count.eq(0), written.eq(0), total.eq(0)]
                        m.next = "EXP"
            with m.State("EXP"):
                m.d.comb += self.busy.eq(1)
                with m.If(count < n):
                    m.d.comb += exp.valid.eq(1)
                    m.d.sync += count.eq(count + 1)
                with m.If(exp.valid_out):
                    m.d.sync += [exps[written].eq(exp.y), total.eq(total + exp.y), written.eq(written + 1)]
                    with m.If(written == n - 1):
                        m.d.sync += [count.eq(0), emitted.eq(0), self.sat_count.eq(0)]
                        m.next = "DIVIDE"
            with m.State("DIVIDE"):
                m.d.comb += [self.busy.eq(1), output.valid.eq(divider.done)]
                with m.If((count < n) & ~divider.busy):
                    m.d.comb += divider.start.eq(1)
                    m.d.sync += [dividing.eq(count), count.eq(count + 1)]
                with m.If(output.valid_out & (emitted == n - 1)):
                    m.d.sync += self.done.eq(1)
                    m.next = "IDLE"
        return m
