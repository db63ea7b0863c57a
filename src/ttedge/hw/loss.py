"""The loss unit: SoftmaxXentGrad over a batch, row by row, through a :class:`SoftmaxXentUnit`.

For row r of the (B, M) logits (word fields: a = logits, b = labels, c = error, nx = B, ny = M,
k1 = C classes), with R = ``memories.READ_LATENCY`` (6)::

    cycle 0          read labels[r] (slot b) and logits[r, 0] (slot a)
    cycles 1..C-1    read logits[r, 1 .. C-1]; each arrives R cycles after its read and is
                     registered, so the unit sees logit c at cycle c + R + 1 (in_valid)
    cycle R          the label arrives: start the unit (label, the logits' current frac)
    cycles R+1..     write the padding error[r, C:] = 0 (the reference's e[:, C:] = 0)
    later            each gradient the unit emits is written to error[r, c] (saturations counted)
    done cycle       the unit's ``done`` (cycle R + softmax_row_cycles(C)); the next row starts after

so a row takes R + 1 + ``softmax_row_cycles(C)`` cycles (:func:`ttedge.hw.cycles.instruction_cycles`):
the logits reach the unit on the C edges right after its start. The reference gives the unit no
random words (its softmax_xent_grad rounds the gradient without them), so ``in_random`` is 0.
"""

# No `from __future__ import annotations`: wiring.Component reads the port annotations as objects.

from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.data import StructLayout
from amaranth.lib.wiring import In, Out

from ..fixed.format import FixedFormat
from .memories import READ_LATENCY
from .pipe import valid_chain
from .scale import FRAC_BITS
from .softmax import SoftmaxXentUnit

__all__ = ["LossUnit"]


class LossUnit(wiring.Component):
    """SoftmaxXentGrad for logits of ``in_width`` bits into ``out_fmt`` with ``num_classes`` classes."""

    def __init__(self, layout: StructLayout, addr_bits: int, in_width: int, out_fmt: FixedFormat, num_classes: int) -> None:
        self.in_width, self.out_fmt, self.num_classes = in_width, out_fmt, num_classes
        super().__init__({
            "start": In(1), "word": In(layout), "busy": Out(1), "fa": In(FRAC_BITS),
            "ea": Out(unsigned(addr_bits)), "eb": Out(unsigned(addr_bits)),
            "ea_on": Out(1), "eb_on": Out(1),  # ea / eb is read this cycle (its data are used)
            "da": In(signed(64)), "db": In(signed(64)),
            "w_en": Out(1), "w_addr": Out(unsigned(addr_bits)), "w_data": Out(signed(64)), "w_sat": Out(1),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        w, C, R = self.word, self.num_classes, READ_LATENCY
        nb = w.nx.shape().width + 2
        unit = m.submodules.softmax = SoftmaxXentUnit(self.in_width, self.out_fmt, C)
        row, base, col = Signal(signed(nb)), Signal(signed(nb)), Signal(signed(nb))  # row, its first element, next class to read
        state = Signal(2)  # 0 idle, 1 waiting for the row's label, 3 row running
        wait = Signal(range(R + 1))  # cycles since the row's label read
        pad = Signal(signed(nb))  # next padding column to zero (C .. M-1)
        pad_on = Signal()  # pad < M: a padding column remains (kept with pad, so no comparator drives the writes)
        loading = Signal()  # reading the row's logits
        code = Signal(signed(self.in_width))  # a logit, registered as it arrives
        m.d.sync += code.eq(self.da[: self.in_width])
        m.d.comb += [self.busy.eq(self.start | (state != 0)), unit.frac.eq(self.fa), unit.label.eq(self.db[: max(1, (C - 1).bit_length())]),
                     unit.in_random.eq(0), unit.in_code.eq(code)]
        m.d.comb += [self.eb.eq(row), self.ea.eq(base + col)]

        def next_row(r: object, b: object) -> list[object]:
            return [row.eq(r), base.eq(b), state.eq(1), wait.eq(0), col.eq(0), loading.eq(1)]

        with m.If(self.start):
            m.d.sync += next_row(0, 0)
        with m.Elif(state == 1):
            m.d.sync += wait.eq(wait + 1)
            with m.If(wait == R):  # the label is on db
                m.d.comb += unit.start.eq(1)
                m.d.sync += [state.eq(3), pad.eq(C), pad_on.eq(w.ny > C)]
        with m.Elif(state == 3):
            with m.If(unit.done):
                with m.If(row == w.nx - 1):
                    m.d.sync += state.eq(0)
                with m.Else():
                    m.d.sync += next_row(row + 1, base + w.ny)
        with m.If(loading & ~self.start):
            m.d.sync += col.eq(col + 1)
            with m.If(col == C - 1):
                m.d.sync += loading.eq(0)
        # The logit read at cycle t reaches the unit at t + R + 1: its in_valid.
        m.d.comb += [self.ea_on.eq(loading & (state != 0)), self.eb_on.eq((state == 1) & (wait == 0))]
        m.d.comb += unit.in_valid.eq(valid_chain(m, self.ea_on, R + 1, "logit_valid")[-1])
        # Writes: the unit's gradients, else the padding zeros.
        padding = (state == 3) & pad_on & ~unit.out_valid
        with m.If(unit.out_valid):
            m.d.comb += [self.w_en.eq(1), self.w_addr.eq(base + unit.out_index), self.w_data.eq(unit.out_code),
                         self.w_sat.eq(unit.out_saturated)]
        with m.Elif(padding):
            m.d.comb += [self.w_en.eq(1), self.w_addr.eq(base + pad), self.w_data.eq(0)]
            m.d.sync += [pad.eq(pad + 1), pad_on.eq(pad + 1 < w.ny)]
        return m
