"""The contraction engine: P x Q multiply-accumulate lanes fed by address generators.

It computes ``out[x, y] = sum_z L[x, z] * R[z, y]`` for one Contract word (``ttedge.hw.isa``):
lane (p, q) owns the output element (x0 + p, y0 + q) of the current tile and accumulates it exactly
(``acc_width`` bits) over every z. Each cycle the generators present P addresses into L's memory
and Q into R's (no transposes in memory: the index maps are walked directly; the addresses are
whole memory addresses, the word's buffer offsets ``ao`` and ``bo`` included), and the data come
back into the MACs (timing below).

Loop nest (y tiles outer, x tiles inner, z innermost)::

    for y0 in 0, Q, 2Q, ... < ny:          lane q holds (ylo, yflat, R y-address, out y-address)
      for x0 in 0, P, 2P, ... < nx:        lane p's x-address is xbase + p * stride (constant product)
        for z in (zhi, zlo):               acc[p][q] += L[x0 + p, z] * R[z, y0 + q]
        -> shadow <- acc; drain the P rows of Q sums, one row per cycle, while the next tile runs

The drain emits, per y lane q, (index, value) with ``index`` the flat output element (the output
memory address and the random-word index); lanes beyond nx or ny are emitted with their
``out_valid`` bit low. A tile may start issuing only when the previous drain ends by its own last
MAC, so tiles start every max(Z, P) cycles (Z = nzhi * nzlo):
:func:`ttedge.hw.cycles.contract_cycles` is the exact count.

The addresses of an issue are registered before they leave for the memories, the read data are
registered as they arrive (``memories.READ_LATENCY`` cycles after that), multiplied into a
register the cycle after, and accumulated the cycle after that: a MAC happens :data:`MAC_LATENCY`
(9) cycles after its issue.

Timing of one instruction, from the ``start`` cycle: Q cycles set the y lanes up (a walker shifts
lane states in), then tile k issues from cycle s_k = Q + 1 + k * max(Z, P); the last row is
emitted P cycles after the last tile's last MAC; ``busy`` falls the cycle after.
"""

# No `from __future__ import annotations`: wiring.Component reads the port annotations as objects.

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.data import ArrayLayout, StructLayout
from amaranth.lib.wiring import In, Out

from .config import AcceleratorConfig
from .memories import READ_LATENCY
from .pipe import stage

__all__ = ["ContractionEngine", "MAC_LATENCY"]

MAC_LATENCY = 1 + READ_LATENCY + 2  # issue -> MAC, cycles: address register, read, arrival register, product register


class ContractionEngine(wiring.Component):
    """P x Q MAC lanes and their address generators (module docstring).

    Parameters: ``config`` (P, Q), ``layout`` (the instruction word's StructLayout), ``addr_bits``
    (bits of a memory address), ``operand_width`` (bits of the widest operand code, sign-extended)
    and ``acc_width`` (bits of every accumulator: the widest accumulator the program uses).
    """

    def __init__(self, config: AcceleratorConfig, layout: StructLayout, addr_bits: int, operand_width: int, acc_width: int) -> None:
        self.config, self.addr_bits, self.operand_width, self.acc_width = config, addr_bits, operand_width, acc_width
        self.num_bits = layout.members["nx"].width
        p, q = config.p, config.q
        super().__init__({
            "start": In(1),
            "word": In(layout),
            "busy": Out(1),
            "l_addr": Out(ArrayLayout(unsigned(addr_bits), p)),
            "l_data": In(ArrayLayout(signed(operand_width), p)),
            "r_addr": Out(ArrayLayout(unsigned(addr_bits), q)),
            "r_data": In(ArrayLayout(signed(operand_width), q)),
            "out_valid": Out(q),  # per y lane: out_index/out_value hold a sum this cycle
            "out_index": Out(ArrayLayout(unsigned(addr_bits), q)),
            "out_value": Out(ArrayLayout(signed(acc_width), q)),
            "macs": Out(1),  # a MAC cycle (the data of an issued z step are being accumulated)
            "reading": Out(1),  # l_addr and r_addr are read this cycle (their data are used)
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        P, Q = self.config.p, self.config.q
        D = P  # drain cycles per tile: one row of Q sums per cycle
        w = self.word
        nb = self.num_bits + 2
        S = lambda name, **kw: Signal(signed(nb), name=name, **kw)  # noqa: E731
        # x- and y-addresses of L and R hold the buffer's offset (ao, bo): whole memory addresses
        addr_shape = signed(max(nb, self.addr_bits + 1))
        SA = lambda name: Signal(addr_shape, name=name)  # noqa: E731

        # --- y lanes: (ylo, yflat, R y-address, out y-address) per q, and the walker that fills them
        ylo = [S(f"ylo{q}") for q in range(Q)]
        yfl = [S(f"yflat{q}") for q in range(Q)]
        ya_r = [SA(f"ya_r{q}") for q in range(Q)]
        ya_o = [S(f"ya_o{q}") for q in range(Q)]
        wk = [S("walk_lo"), S("walk_flat"), SA("walk_r"), S("walk_o")]

        # A walker step of (dlo, dflat, step_r, step_o): ylo moves by dlo and wraps at nylo, when the
        # addresses move by their wrap too. Both outcomes are formed from per-instruction registers
        # (ready the cycle after start, as the walk begins), so a step is one adder and a mux:
        # lo wraps iff lo >= nylo - dlo.
        def steps(dlo: object, step_r: object, step_o: object, name: str) -> tuple[Signal, ...]:
            return tuple(stage(m, v, addr_shape, f"{name}_{n}") for n, v in (
                ("lim", w.nylo - dlo), ("dlo", dlo), ("r", step_r), ("rw", step_r + w.r_ywrap), ("o", step_o),
                ("ow", step_o + w.o_ywrap)))

        def advance(state: list[Signal], dflat: object, step: tuple[Signal, ...]) -> list[object]:
            lim, dlo, r, rw, o, ow = step
            wrap = state[0] >= lim
            return [Mux(wrap, state[0] - lim, state[0] + dlo), state[1] + dflat,
                    Mux(wrap, state[2] + rw, state[2] + r), Mux(wrap, state[3] + ow, state[3] + o)]

        step1 = steps(w.d1lo, w.r_ystep1, w.o_ystep1, "step1")
        stepq = steps(w.dqlo, w.r_ystepq, w.o_ystepq, "stepq")

        # --- x tile and z walk
        x0, xl, xo = S("x0"), SA("xl"), S("xo")
        zlo, zhi, zl, zr = S("zlo"), S("zhi"), S("zl"), S("zr")
        issuing = Signal()
        init_left = Signal(range(Q + 1))
        dl = Signal(range(D + 3))  # cycles until the running drain ends (the tile-start rule): 0 .. D + 2
        # Per-instruction values from the word, registered: ready the cycle after start (the first
        # issue comes Q + 1 cycles after it), and off the per-cycle timing paths.
        # Z + 1 capped at D + 2, the most dl holds: the tile-start rule compares only up to there, so
        # the product of the two z counts, each capped first (and registered: nz1 is ready two cycles
        # after start), is a few shifts and adds of D.bit_length() + 1 bits, not a multiplier.
        cap = D + 2
        nz1 = Signal(range(cap + 1))
        zlo_c, zhi_c = (Signal(range(cap + 1), name=n) for n in ("zlo_c", "zhi_c"))
        m.d.sync += [zlo_c.eq(Mux(w.nzlo >= cap, cap, w.nzlo)), zhi_c.eq(Mux(w.nzhi >= cap, cap, w.nzhi))]
        z_c = sum(Mux(zhi_c[i], zlo_c << i, 0) for i in range(len(zhi_c)))  # zlo_c * zhi_c
        l_lane = [S(f"l_lane{p}") for p in range(P)]  # lane p's x-address offset, p * l_sx
        l_tile, o_tile = S("l_tile"), S("o_tile")  # x-address steps between tiles, P * l_sx and P * o_sx
        m.d.sync += [nz1.eq(Mux(z_c + 1 >= cap, cap, z_c + 1)), l_tile.eq(w.l_sx * P), o_tile.eq(w.o_sx * P)]
        m.d.sync += [l_lane[p].eq(w.l_sx * p) for p in range(P)]

        # --- addresses (invalid lanes read the buffer's first word, ao or bo)
        x_lim = [S(f"x_lim{p}") for p in range(P)]  # lane p holds an x while x0 < nx - p (per instruction)
        m.d.sync += [x_lim[p].eq(w.nx - p) for p in range(P)]
        xvalid = [x0 < x_lim[p] for p in range(P)]
        yvalid = [yfl[q] < w.ny for q in range(Q)]
        for p in range(P):
            m.d.sync += self.l_addr[p].eq(Mux(xvalid[p], xl + l_lane[p] + zl, w.ao))
        for q in range(Q):
            m.d.sync += self.r_addr[q].eq(Mux(yvalid[q], ya_r[q] + zr, w.bo))

        # Where the walk stands, as flags registered with the counters they describe (each from a
        # comparison with a per-instruction limit, on its register's input), so that the issue
        # decision and the counters' enables are a few gates: zlo and zhi at their last values, the
        # z walk at its first step, the x tile and the y lanes at their last.
        at_zlo, at_zhi, z_first, at_x, at_y = (Signal(name=n) for n in ("at_zlo", "at_zhi", "z_first", "at_x", "at_y"))
        zlo_pen, zhi_pen, x_pen, y_pen = S("zlo_pen"), S("zhi_pen"), S("x_pen"), S("y_pen")  # the values before the last
        one_lo, one_hi, one_x = Signal(), Signal(), Signal()  # a walk of one step: last at once
        m.d.sync += [zlo_pen.eq(w.nzlo - 2), zhi_pen.eq(w.nzhi - 2), x_pen.eq(w.nx - 2 * P), y_pen.eq(w.ny - 2 * Q),
                     one_lo.eq(w.nzlo == 1), one_hi.eq(w.nzhi == 1), one_x.eq(w.nx <= P)]
        last_z = at_zlo & at_zhi
        last_x, last_y = at_x, at_y
        # The tile's output coordinates, carried down the MAC pipeline beside its issues: at the last
        # MAC of a tile (MAC_LATENCY cycles after its last issue) they move to the drain.
        here = [x0, xo, *ya_o, *yfl]
        carried = [[S(f"pend{t}_{k}") for k in range(len(here))] for t in range(MAC_LATENCY)]
        for t, regs in enumerate(carried):
            m.d.sync += [a.eq(b) for a, b in zip(regs, here if t == 0 else carried[t - 1])]
        pend_x0, pend_xo, pend_yo, pend_yf = carried[-1][0], carried[-1][1], carried[-1][2:2 + Q], carried[-1][2 + Q:]

        # The tile-start rule, dl <= nz1, as a flag registered with dl (from dl's next value): the
        # issue decision, which enables every counter, is then one gate. nz1 holds from two cycles
        # after start, before the first issue; dl is 0 between instructions, where the rule holds.
        start_ok = Signal(init=1)
        fire = Signal()
        m.d.comb += fire.eq(issuing & (~z_first | start_ok))
        m.d.sync += self.reading.eq(fire & ~self.start)  # with the registered addresses
        with m.If(self.start):
            m.d.sync += [init_left.eq(Q), issuing.eq(0), x0.eq(0), xl.eq(w.ao), xo.eq(0),
                         zlo.eq(0), zhi.eq(0), zl.eq(0), zr.eq(0)]
            m.d.sync += [wk[0].eq(0), wk[1].eq(0), wk[2].eq(w.bo), wk[3].eq(0)]
            # lane 0 starts at the walker's first state, y = 0
            m.d.sync += [at_zlo.eq(w.nzlo == 1), at_zhi.eq(w.nzhi == 1), z_first.eq(1), at_x.eq(w.nx <= P), at_y.eq(w.ny <= Q)]
        with m.Elif(init_left != 0):
            # Shift lane states in: after Q cycles lane q holds the walker's state after q steps.
            for q in range(Q - 1):
                m.d.sync += [ylo[q].eq(ylo[q + 1]), yfl[q].eq(yfl[q + 1]), ya_r[q].eq(ya_r[q + 1]), ya_o[q].eq(ya_o[q + 1])]
            m.d.sync += [ylo[Q - 1].eq(wk[0]), yfl[Q - 1].eq(wk[1]), ya_r[Q - 1].eq(wk[2]), ya_o[Q - 1].eq(wk[3])]
            nxt = advance(wk, 1, step1)
            m.d.sync += [s.eq(v) for s, v in zip(wk, nxt)]
            m.d.sync += init_left.eq(init_left - 1)
            with m.If(init_left == 1):
                m.d.sync += issuing.eq(1)
        with m.Elif(fire):
            with m.If(last_z):
                m.d.sync += [zlo.eq(0), zhi.eq(0), zl.eq(0), zr.eq(0), at_zlo.eq(one_lo), at_zhi.eq(one_hi), z_first.eq(1)]
                with m.If(last_x):
                    m.d.sync += [x0.eq(0), xl.eq(w.ao), xo.eq(0), at_x.eq(one_x), at_y.eq(yfl[0] >= y_pen)]
                    for q in range(Q):
                        nxt = advance([ylo[q], yfl[q], ya_r[q], ya_o[q]], Q, stepq)
                        m.d.sync += [s.eq(v) for s, v in zip([ylo[q], yfl[q], ya_r[q], ya_o[q]], nxt)]
                    with m.If(last_y):
                        m.d.sync += issuing.eq(0)
                with m.Else():
                    m.d.sync += [x0.eq(x0 + P), xl.eq(xl + l_tile), xo.eq(xo + o_tile), at_x.eq(x0 >= x_pen)]
            with m.Elif(at_zlo):
                m.d.sync += [zlo.eq(0), zhi.eq(zhi + 1), zl.eq(zl + w.l_zwrap), zr.eq(zr + w.r_zwrap),
                             at_zlo.eq(one_lo), at_zhi.eq(zhi == zhi_pen), z_first.eq(0)]
            with m.Else():
                m.d.sync += [zlo.eq(zlo + 1), zl.eq(zl + w.l_szlo), zr.eq(zr + w.r_szlo), at_zlo.eq(zlo == zlo_pen), z_first.eq(0)]

        with m.If(fire & last_z):
            m.d.sync += [dl.eq(D + 1), start_ok.eq(D + 1 <= nz1)]
        with m.Elif(dl != 0):
            m.d.sync += [dl.eq(dl - 1), start_ok.eq(dl <= nz1 + 1)]

        # --- MAC stage: the valid, first and last flags delayed MAC_LATENCY cycles, to meet
        # the read data registered on arrival
        v = [Signal(name=f"mac_v{t}") for t in range(MAC_LATENCY + 1)]
        first = [Signal(name=f"mac_first{t}") for t in range(MAC_LATENCY + 1)]
        last = [Signal(name=f"mac_last{t}") for t in range(MAC_LATENCY + 1)]
        m.d.comb += [v[0].eq(fire & ~self.start), first[0].eq(z_first), last[0].eq(last_z)]
        for t in range(1, MAC_LATENCY + 1):
            m.d.sync += [v[t].eq(v[t - 1]), first[t].eq(first[t - 1]), last[t].eq(last[t - 1])]
        mac_v, mac_first, mac_last = v[-1], first[-1], last[-1]
        l_reg = [Signal(signed(self.operand_width), name=f"l_reg{p}") for p in range(P)]
        r_reg = [Signal(signed(self.operand_width), name=f"r_reg{q}") for q in range(Q)]
        m.d.sync += [a.eq(b) for a, b in zip(l_reg, self.l_data)]
        m.d.sync += [a.eq(b) for a, b in zip(r_reg, self.r_data)]
        m.d.comb += self.macs.eq(mac_v)
        acc = [[Signal(signed(self.acc_width), name=f"acc{p}_{q}", reset_less=True) for q in range(Q)] for p in range(P)]
        shadow = [[Signal(signed(self.acc_width), name=f"shadow{p}_{q}", reset_less=True) for q in range(Q)] for p in range(P)]
        acc_next = [[Signal(signed(self.acc_width), name=f"accn{p}_{q}") for q in range(Q)] for p in range(P)]
        for p in range(P):
            for q in range(Q):
                prod = stage(m, l_reg[p] * r_reg[q], signed(2 * self.operand_width), f"prod{p}_{q}")
                m.d.comb += acc_next[p][q].eq(Mux(mac_first, 0, acc[p][q]) + prod)
                with m.If(mac_v):
                    m.d.sync += acc[p][q].eq(acc_next[p][q])

        # --- drain: shift the shadow out a row (Q entries, one x) per cycle
        left = Signal(range(P + 1))
        dx = S("dx")  # x of the row being emitted
        dxo = S("dxo")  # its out x-address
        dyo = [S(f"dyo{q}") for q in range(Q)]
        dyf = [S(f"dyf{q}") for q in range(Q)]
        for q in range(Q):
            m.d.comb += [
                self.out_valid[q].eq((left != 0) & (dx < w.nx) & (dyf[q] < w.ny)),
                self.out_index[q].eq(dxo + dyo[q]),
                self.out_value[q].eq(shadow[0][q]),
            ]
        with m.If(mac_v & mac_last):
            m.d.sync += [shadow[p][q].eq(acc_next[p][q]) for p in range(P) for q in range(Q)]
            m.d.sync += [left.eq(P), dx.eq(pend_x0), dxo.eq(pend_xo)]
            m.d.sync += [dyo[q].eq(pend_yo[q]) for q in range(Q)]
            m.d.sync += [dyf[q].eq(pend_yf[q]) for q in range(Q)]
        with m.Elif(left != 0):
            m.d.sync += [shadow[p][q].eq(shadow[p + 1][q]) for p in range(P - 1) for q in range(Q)]
            m.d.sync += [left.eq(left - 1), dx.eq(dx + 1), dxo.eq(dxo + w.o_sx)]

        m.d.comb += self.busy.eq(issuing | (init_left != 0) | Cat(*v[1:]).any() | (left != 0) | self.start)
        return m
