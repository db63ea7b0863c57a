"""The on-chip memories: one per width class (``MemoryMap.widths``), with the ports its users need.

Read ports are synchronous (data one cycle after the address). Their assignment is static, from
the roles the class plays anywhere in the program:

* L (the engine's left operand): ports 0 .. P-1; R (right operand): the Q ports after those;
* the elementwise read slots a, b, c, d: ports 0, 1, 2, 3 (d: PriorGrad's right precision); the
  host: port 0 (only while idle).

So a class read as both L and R in one contraction has P + Q read ports (on an FPGA each port
beyond two is a replica of the block RAM: banking instead is future work). Write ports: port 0 for
the engine's output lane 0, the elementwise main slot and the host; one more per further engine
output lane in a class the engine writes (role "O": Q sums leave the engine per cycle); one for the
velocity slot (an SgdUpdate with momentum writes a parameter and its velocity in the same cycle).

With ``external`` the memory array is not an Amaranth ``Memory`` but an instance of a plain Verilog
module (:func:`memory_verilog`, written beside the design by :meth:`ClassMemory.verilog`) with the
same ports and timing, initialized by ``$readmemh`` from a file. Amaranth emits a memory's initial
value word by word, which takes minutes and gigabytes for the millions of words of a large batch;
the module's text is a few lines at any depth. Amaranth's simulator cannot run an instance, so the
tests' Python simulation keeps the native memory and the Verilog paths use the module.
"""

from __future__ import annotations

from amaranth import ClockSignal, Elaboratable, Instance, Module, Mux, Signal, signed, unsigned
from amaranth.lib.memory import Memory

__all__ = ["ClassMemory", "memory_verilog"]


class ClassMemory(Elaboratable):
    """One width class's memory and its port routing (module docstring).

    ``roles``: a subset of {"L", "R", "O", "EA", "EB", "EC", "ED", "V"}; ``addr_bits``: bits of a word address.
    The select inputs say which role owns the ports this cycle (at most one engine or elementwise
    instruction runs; with none selected, port 0 follows ``host_addr``).
    """

    def __init__(self, width: int, depth: int, init: list[int], roles: set[str], p: int, q: int, addr_bits: int,
                 external: str | None = None) -> None:
        self.width, self.depth, self.roles, self.p, self.q = width, max(depth, 1), roles, p, q
        self.addr_bits, self.external = addr_bits, external  # external: the Verilog module's name
        # An all-zero image is left out, so large memories without initial state stay small in Verilog.
        self.memory = None if external else Memory(shape=signed(width), depth=self.depth, init=init if any(init) else [])
        self.l_base = 0
        self.r_base = p if "L" in roles else 0
        nports = max(1, (p if "L" in roles else 0) + (q if "R" in roles else 0),
                     1 if "EA" in roles else 0, 2 if "EB" in roles else 0, 3 if "EC" in roles else 0, 4 if "ED" in roles else 0)
        A = lambda name: Signal(unsigned(addr_bits), name=name)  # noqa: E731
        self.l_sel, self.r_sel, self.ea_sel, self.eb_sel, self.ec_sel, self.ed_sel = (
            Signal(name=n) for n in ("l_sel", "r_sel", "ea_sel", "eb_sel", "ec_sel", "ed_sel"))
        self.l_addr = [A(f"l_addr{i}") for i in range(p)]
        self.r_addr = [A(f"r_addr{i}") for i in range(q)]
        self.ea, self.eb, self.ec, self.ed, self.host_addr = A("ea"), A("eb"), A("ec"), A("ed"), A("host_addr")
        self.data = [Signal(signed(width), name=f"data{j}") for j in range(nports)]
        self.w_en, self.w_addr, self.w_data = Signal(), A("w_addr"), Signal(signed(64), name="w_data")
        self.v_en, self.v_addr, self.v_data = Signal(), A("v_addr"), Signal(signed(64), name="v_data")
        lanes = q - 1 if "O" in roles else 0  # engine output lanes 1 .. Q-1
        self.e_en = [Signal(name=f"e_en{i}") for i in range(lanes)]
        self.e_addr = [A(f"e_addr{i}") for i in range(lanes)]
        self.e_data = [Signal(signed(64), name=f"e_data{i}") for i in range(lanes)]

    def write_ports(self) -> list[tuple[Signal, Signal, Signal]]:
        """(enable, address, data) of every write port, in the memory's port order."""
        ports = [(self.w_en, self.w_addr, self.w_data)] + list(zip(self.e_en, self.e_addr, self.e_data))
        return ports + ([(self.v_en, self.v_addr, self.v_data)] if "V" in self.roles else [])

    def verilog(self, init_file: str = "", blackbox: bool = False) -> str:
        """The external memory module of this class (``external`` set), initialized from ``init_file``;
        with ``blackbox`` its ports only, marked ``(* blackbox *)`` for synthesis of the rest."""
        assert self.external is not None
        return memory_verilog(self.external, self.width, self.depth, self.addr_bits, len(self.data), len(self.write_ports()),
                              init_file, blackbox)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        roles, P, Q = self.roles, self.p, self.q
        raddr = [Signal(unsigned(self.addr_bits), name=f"raddr{j}") for j in range(len(self.data))]
        if self.external is None:
            m.submodules.memory = mem = self.memory
            for a, data in zip(raddr, self.data):
                port = mem.read_port()
                m.d.comb += [port.addr.eq(a), data.eq(port.data)]
            for en, addr, wdata in self.write_ports():
                w = mem.write_port()
                m.d.comb += [w.en.eq(en), w.addr.eq(addr), w.data.eq(wdata)]
        else:
            ports: dict[str, object] = {"i_clk": ClockSignal()}
            for j, (a, data) in enumerate(zip(raddr, self.data)):
                ports[f"i_raddr{j}"], ports[f"o_rdata{j}"] = a, data
            for j, (en, addr, wdata) in enumerate(self.write_ports()):
                ports[f"i_we{j}"], ports[f"i_waddr{j}"], ports[f"i_wdata{j}"] = en, addr, wdata[: self.width]
            m.submodules.memory = Instance(self.external, **ports)
        for j, a in enumerate(raddr):
            addr: object = self.host_addr if j == 0 else 0
            if "ED" in roles and j == 3:
                addr = Mux(self.ed_sel, self.ed, addr)
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
            m.d.comb += a.eq(addr)
        return m


def memory_verilog(name: str, width: int, depth: int, addr_bits: int, reads: int, writes: int, init_file: str = "",
                   blackbox: bool = False) -> str:
    """A Verilog module ``name``: ``depth`` signed words of ``width`` bits, ``reads`` synchronous
    read ports (``rdata<j>`` holds the word at ``raddr<j>`` of the previous edge, the old word when
    that edge also writes it, as Amaranth's ports do) and ``writes`` write ports (a later port wins
    on the same address; the accelerator never writes one address twice in a cycle). With
    ``init_file`` the words start from it (``$readmemh``: one hex word a line); without, at whatever
    the tool gives (zero under Verilator): the host writes the state before a step reads it. With
    ``blackbox``: the ports only, a ``(* blackbox *)`` stub."""
    a, w = addr_bits - 1, width - 1
    ports = ["input wire clk"]
    ports += [f"input wire [{a}:0] raddr{j}, output {'wire' if blackbox else 'reg'} signed [{w}:0] rdata{j}" for j in range(reads)]
    ports += [f"input wire we{j}, input wire [{a}:0] waddr{j}, input wire [{w}:0] wdata{j}" for j in range(writes)]
    if blackbox:
        return "\n".join(["(* blackbox *)", f"module {name} (", ",\n".join(f"  {p}" for p in ports), ");", "endmodule", ""])
    lines = [f"module {name} (", ",\n".join(f"  {p}" for p in ports), ");",
             f"  reg signed [{w}:0] mem [0:{depth - 1}];"]
    if init_file:
        lines.append(f'  initial $readmemh("{init_file}", mem);')
    lines.append("  always @(posedge clk) begin")
    lines += [f"    rdata{j} <= mem[raddr{j}];" for j in range(reads)]
    lines += [f"    if (we{j}) mem[waddr{j}] <= wdata{j};" for j in range(writes)]
    lines += ["  end", "endmodule", ""]
    return "\n".join(lines)
