"""The on-chip memories: one per width class (``MemoryMap.widths``), with the ports its users need.

Read ports are synchronous (data one cycle after the address). Their assignment is static, from
the roles the class plays anywhere in the program:

* L (the engine's left operand): ports 0 .. P-1; R (right operand): the Q ports after those;
* the elementwise read slots a, b, c: ports 0, 1, 2; the host: port 0 (only while idle).

So a class read as both L and R in one contraction has P + Q read ports (on an FPGA each port
beyond two is a replica of the block RAM: banking instead is future work). Write ports: port 0 for
the engine's output lane 0, the elementwise main slot and the host; one more per further engine
output lane in a class the engine writes (role "O": Q sums leave the engine per cycle); one for the
velocity slot (an SgdUpdate with momentum writes a parameter and its velocity in the same cycle).
"""

from __future__ import annotations

from amaranth import Elaboratable, Module, Mux, Signal, signed, unsigned
from amaranth.lib.memory import Memory

__all__ = ["ClassMemory"]


class ClassMemory(Elaboratable):
    """One width class's memory and its port routing (module docstring).

    ``roles``: a subset of {"L", "R", "O", "EA", "EB", "EC", "V"}; ``addr_bits``: bits of a word address.
    The select inputs say which role owns the ports this cycle (at most one engine or elementwise
    instruction runs; with none selected, port 0 follows ``host_addr``).
    """

    def __init__(self, width: int, depth: int, init: list[int], roles: set[str], p: int, q: int, addr_bits: int) -> None:
        self.width, self.depth, self.roles, self.p, self.q = width, max(depth, 1), roles, p, q
        # An all-zero image is left out, so large memories without initial state stay small in Verilog.
        self.memory = Memory(shape=signed(width), depth=self.depth, init=init if any(init) else [])
        self.l_base = 0
        self.r_base = p if "L" in roles else 0
        nports = max(1, (p if "L" in roles else 0) + (q if "R" in roles else 0),
                     1 if "EA" in roles else 0, 2 if "EB" in roles else 0, 3 if "EC" in roles else 0)
        A = lambda name: Signal(unsigned(addr_bits), name=name)  # noqa: E731
        self.l_sel, self.r_sel, self.ea_sel, self.eb_sel, self.ec_sel = (Signal(name=n) for n in ("l_sel", "r_sel", "ea_sel", "eb_sel", "ec_sel"))
        self.l_addr = [A(f"l_addr{i}") for i in range(p)]
        self.r_addr = [A(f"r_addr{i}") for i in range(q)]
        self.ea, self.eb, self.ec, self.host_addr = A("ea"), A("eb"), A("ec"), A("host_addr")
        self.data = [Signal(signed(width), name=f"data{j}") for j in range(nports)]
        self.w_en, self.w_addr, self.w_data = Signal(), A("w_addr"), Signal(signed(64), name="w_data")
        self.v_en, self.v_addr, self.v_data = Signal(), A("v_addr"), Signal(signed(64), name="v_data")
        lanes = q - 1 if "O" in roles else 0  # engine output lanes 1 .. Q-1
        self.e_en = [Signal(name=f"e_en{i}") for i in range(lanes)]
        self.e_addr = [A(f"e_addr{i}") for i in range(lanes)]
        self.e_data = [Signal(signed(64), name=f"e_data{i}") for i in range(lanes)]

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.memory = mem = self.memory
        roles, P, Q = self.roles, self.p, self.q
        for j, data in enumerate(self.data):
            port = mem.read_port()
            addr: object = self.host_addr if j == 0 else 0
            if "EC" in roles and j == 2:
                addr = Mux(self.ec_sel, self.ec, addr)
            if "EB" in roles and j == 1:
                addr = Mux(self.eb_sel, self.eb, addr)
            if "EA" in roles and j == 0:
                addr = Mux(self.ea_sel, self.ea, addr)
            if "R" in roles and self.r_base <= j < self.r_base + Q:
                addr = Mux(self.r_sel, self.r_addr[j - self.r_base], addr)
            if "L" in roles and j < P:
                addr = Mux(self.l_sel, self.l_addr[j], addr)
            m.d.comb += [port.addr.eq(addr), data.eq(port.data)]
        w = mem.write_port()
        m.d.comb += [w.en.eq(self.w_en), w.addr.eq(self.w_addr), w.data.eq(self.w_data)]
        for en, addr, data in zip(self.e_en, self.e_addr, self.e_data):
            e = mem.write_port()
            m.d.comb += [e.en.eq(en), e.addr.eq(addr), e.data.eq(data)]
        if "V" in roles:
            v = mem.write_port()
            m.d.comb += [v.en.eq(self.v_en), v.addr.eq(self.v_addr), v.data.eq(self.v_data)]
        return m
