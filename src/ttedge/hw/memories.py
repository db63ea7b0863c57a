"""The on-chip memories: one per width class (``MemoryMap.widths``), with the ports its users need.

Read ports return their data :data:`READ_LATENCY` (6) cycles after the address: a register on
every input (addresses, enables, write data), a second one after the bank decode (a bank's
address, write enable and data, which then travel to the block RAMs that hold it: a large bank
spans many, far apart), a third per piece of the bank (its address, and its write enable from the
address's high bits; a piece is a few block RAMs side by side, one per slice of the word:
``ttedge.hw.banks.BankLayout``), the block RAMs' synchronous read, a register right at each one's
output, and one after the mux of the bank's pieces (at most eight: one slice's LUTs and muxes). So the units'
address logic, the bank decode, the distribution to the pieces and the gathering of their words
are separate paths, and no logic follows a block RAM's slow clock-to-output in the same cycle (the
piece, bank and port selection come after registers). A write lands :data:`WRITE_DELAY` (3) cycles
after the edge it is presented at; a read presented with a write to its word still returns the old word
(banked, :func:`memory_verilog`: that case is left undefined, and never happens). Every
unit that reads memory takes its timing from these constants. The port assignment is static, from
the roles the class plays anywhere in the program:

* L (the engine's left operand): ports 0 .. P-1; R (right operand): the Q ports after those;
* the elementwise read slots a, b, c, d: ports 0, 1, 2, 3 (d: PriorGrad's right precision); the
  host: port 0 (only while idle).

So a class read as both L and R in one contraction has P + Q read ports. As an external module the
memory is banked where the program allows (``ttedge.hw.banks``): one array per bank, each with one
read and one write port, so that synthesis maps every bank to one block RAM; a memory that one
buffer reaches through several ports at once keeps a multi-ported array, which synthesis replicates
per read port and cannot map to block RAM with several write ports. Write ports: port 0 for
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

from collections.abc import Sequence
from typing import TYPE_CHECKING

from amaranth import Cat, ClockSignal, Elaboratable, Instance, Module, Mux, Signal, signed, unsigned
from amaranth.lib.memory import Memory

from .banks import BankLayout, bank_layouts
from .pipe import delay

if TYPE_CHECKING:
    from .banks import Banks

__all__ = ["ClassMemory", "READ_LATENCY", "WRITE_DELAY", "image_files", "memory_verilog", "port_counts"]

WRITE_DELAY = 3  # the input, bank and piece registers: a write presented at edge t changes the word at edge t + 3
READ_LATENCY = WRITE_DELAY + 3  # cycles from a read address to its data on ``ClassMemory.data``: the read, two output registers
assert WRITE_DELAY == 3  # the stages memory_verilog writes: <input>_q, then a bank's registers, then its pieces'
_OUT_STAGES = READ_LATENCY - WRITE_DELAY - 1  # registers after a block RAM's own output one
assert _OUT_STAGES == 2  # memory_verilog's banks: a piece's output register, then the one after the pieces' mux


def port_counts(roles: set[str], p: int, q: int) -> tuple[int, int]:
    """(read ports, write ports) of a memory playing ``roles`` on a ``p`` x ``q`` array (module docstring)."""
    reads = max(1, (p if "L" in roles else 0) + (q if "R" in roles else 0),
                1 if "EA" in roles else 0, 2 if "EB" in roles else 0, 3 if "EC" in roles else 0, 4 if "ED" in roles else 0)
    writes = 1 + (q - 1 if "O" in roles else 0) + (1 if "V" in roles else 0)
    return reads, writes


class ClassMemory(Elaboratable):
    """One width class's memory and its port routing (module docstring).

    ``roles``: a subset of {"L", "R", "O", "EA", "EB", "EC", "ED", "V"}; ``addr_bits``: bits of a word address.
    The select inputs say which role reads through the ports this cycle: high only in the cycles
    whose data its unit uses (at most one engine or elementwise instruction runs; with none
    selected, port 0 follows ``host_addr``, which ``host_sel`` enables in the host's read cycles).
    """

    def __init__(self, width: int, depth: int, init: list[int], roles: set[str], p: int, q: int, addr_bits: int,
                 external: str | None = None, banks: Banks | None = None) -> None:
        self.width, self.depth, self.roles, self.p, self.q = width, max(depth, 1), roles, p, q
        self.addr_bits, self.external = addr_bits, external  # external: the Verilog module's name
        self.banks = banks if external else None  # the external module's banks (ttedge.hw.banks)
        self.layouts = bank_layouts(self.banks, width)  # their block RAMs
        # An all-zero image is left out, so large memories without initial state stay small in Verilog.
        self.memory = None if external else Memory(shape=signed(width), depth=self.depth, init=init if any(init) else [])
        self.l_base = 0
        self.r_base = p if "L" in roles else 0
        nports, _ = port_counts(roles, p, q)
        A = lambda name: Signal(unsigned(addr_bits), name=name)  # noqa: E731
        self.l_sel, self.r_sel, self.ea_sel, self.eb_sel, self.ec_sel, self.ed_sel = (
            Signal(name=n) for n in ("l_sel", "r_sel", "ea_sel", "eb_sel", "ec_sel", "ed_sel"))
        self.l_addr = [A(f"l_addr{i}") for i in range(p)]
        self.r_addr = [A(f"r_addr{i}") for i in range(q)]
        self.ea, self.eb, self.ec, self.ed, self.host_addr = A("ea"), A("eb"), A("ec"), A("ed"), A("host_addr")
        self.host_sel = Signal(name="host_sel")  # the host reads through port 0 (the accelerator is idle)
        self.data = [Signal(signed(width), name=f"data{j}") for j in range(nports)]
        self.w_en, self.w_addr, self.w_data = Signal(), A("w_addr"), Signal(signed(64), name="w_data")
        self.v_en, self.v_addr, self.v_data = Signal(), A("v_addr"), Signal(signed(64), name="v_data")
        lanes = q - 1 if "O" in roles else 0  # engine output lanes 1 .. Q-1
        self.e_en = [Signal(name=f"e_en{i}") for i in range(lanes)]
        self.e_addr = [A(f"e_addr{i}") for i in range(lanes)]
        self.e_data = [Signal(signed(64), name=f"e_data{i}") for i in range(lanes)]
        assert len(self.write_ports()) == port_counts(roles, p, q)[1]

    def write_ports(self) -> list[tuple[Signal, Signal, Signal]]:
        """(enable, address, data) of every write port, in the memory's port order."""
        ports = [(self.w_en, self.w_addr, self.w_data)] + list(zip(self.e_en, self.e_addr, self.e_data))
        return ports + ([(self.v_en, self.v_addr, self.v_data)] if "V" in self.roles else [])

    def verilog(self, init_files: Sequence[str] = (), blackbox: bool = False) -> str:
        """The external memory module of this class (``external`` set), initialized from
        ``init_files`` (:func:`image_files` of it); with ``blackbox`` its ports only, marked
        ``(* blackbox *)`` for synthesis of the rest."""
        assert self.external is not None
        return memory_verilog(self.external, self.width, self.depth, self.addr_bits, len(self.data), len(self.write_ports()),
                              init_files, blackbox, self.layouts)

    def _read_enable(self, j: int) -> object:
        """Whether read port ``j`` is in use this cycle: a role that owns it is selected (port 0: or
        the host)."""
        P, Q, roles = self.p, self.q, self.roles
        on: list[object] = [self.host_sel] if j == 0 else []
        on += [self.l_sel] if "L" in roles and j < P else []
        on += [self.r_sel] if "R" in roles and self.r_base <= j < self.r_base + Q else []
        for k, (role, sel) in enumerate(zip(("EA", "EB", "EC", "ED"), (self.ea_sel, self.eb_sel, self.ec_sel, self.ed_sel))):
            on += [sel] if role in roles and j == k else []
        return Cat(*on).any()

    def elaborate(self, platform: object) -> Module:
        m = Module()
        roles, P, Q = self.roles, self.p, self.q
        raddr = [Signal(unsigned(self.addr_bits), name=f"raddr{j}") for j in range(len(self.data))]
        if self.external is None:
            m.submodules.memory = mem = self.memory
            late = WRITE_DELAY - 1  # the address stages before the port's own register
            for j, (a, data) in enumerate(zip(raddr, self.data)):  # address stages, the read, the output registers
                port = mem.read_port()
                m.d.sync += [port.addr.eq(delay(m, a, late, f"raddr{j}")), data.eq(delay(m, port.data, _OUT_STAGES - 1, f"q{j}"))]
            for j, (en, addr, wdata) in enumerate(self.write_ports()):
                w = mem.write_port()
                m.d.sync += [w.en.eq(delay(m, en, late, f"we{j}")), w.addr.eq(delay(m, addr, late, f"waddr{j}")),
                             w.data.eq(delay(m, wdata, late, f"wdata{j}"))]
        else:
            ports: dict[str, object] = {"i_clk": ClockSignal()}
            for j, (a, data) in enumerate(zip(raddr, self.data)):
                ports[f"i_raddr{j}"], ports[f"o_rdata{j}"] = a, data
                if self.banks is not None:
                    ports[f"i_ren{j}"] = ren = Signal(name=f"ren{j}")
                    m.d.comb += ren.eq(self._read_enable(j))
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


def image_files(memory: int, layouts: Sequence[BankLayout] | None) -> list[str]:
    """The ``$readmemh`` files of memory ``memory``: ``mem<k>.hex``, or ``mem<k>_<b>_<p>_<s>.hex``
    per slice ``s`` of piece ``p`` of bank ``b`` (``ttedge.hw.banks.BankLayout``; the order of
    ``ttedge.hw.banks.bank_images``)."""
    if layouts is None:
        return [f"mem{memory}.hex"]
    return [f"mem{memory}_{b}_{p}_{s}.hex" for b, lay in enumerate(layouts) for p in range(len(lay.pieces))
            for s in range(len(lay.slices))]


def memory_verilog(name: str, width: int, depth: int, addr_bits: int, reads: int, writes: int,
                   init_files: Sequence[str] = (), blackbox: bool = False, layouts: Sequence[BankLayout] | None = None) -> str:
    """A Verilog module ``name``: ``depth`` signed words of ``width`` bits, ``reads`` read ports of
    :data:`READ_LATENCY` edges (``rdata<j>`` holds the word at ``raddr<j>`` six edges before;
    every input passes three registers before a write lands (:data:`WRITE_DELAY`), so a read
    presented with a write to its word returns the old word; banked: see below) and ``writes`` write ports (a later port wins on the same address;
    the accelerator never writes one address twice in a cycle). With
    ``init_files`` the words start from them (``$readmemh``: one hex word a line; one file, or one
    per piece of a bank, :func:`image_files`); without, at whatever the tool gives (zero under
    Verilator): the host writes the state before a step reads it. With ``blackbox``: the ports
    only, a ``(* blackbox *)`` stub.

    With ``layouts`` (``ttedge.hw.banks.bank_layouts``) the words are split into banks, each with one
    read and one write port: a read port with its ``ren<j>`` input high drives the read address of
    the bank its address falls in, and ``rdata<j>`` comes from the bank it addressed; likewise for
    writes. The banks are planned so that two ports never meet in one bank in a cycle; simulation
    (not synthesis) stops with ``$fatal`` if they do, or if a bank's word is read and written in one
    cycle, which the accelerator never does: its block RAMs are marked ``no_rw_check``, so
    synthesis adds no logic to define that case. A bank is held in pieces, each with its address
    and write registers, and each piece in slices of the word's bits, an array of its own with its
    output register: one block RAM (``ttedge.hw.banks.BankLayout``).
    """
    a, w = addr_bits - 1, width - 1
    ports = ["input wire clk"]
    out = "wire" if blackbox else "reg"
    for j in range(reads):
        ports += [f"input wire [{a}:0] raddr{j}, output {out} signed [{w}:0] rdata{j}"]
        ports += [f"input wire ren{j}"] if layouts is not None else []
    ports += [f"input wire we{j}, input wire [{a}:0] waddr{j}, input wire [{w}:0] wdata{j}" for j in range(writes)]
    head = [f"module {name} (", ",\n".join(f"  {p}" for p in ports), ");"]
    if blackbox:
        return "\n".join(["(* blackbox *)", *head, "endmodule", ""])
    head += _input_registers(a, w, reads, writes, layouts is not None)
    if layouts is None:
        lines = [*head, f"  reg signed [{w}:0] mem [0:{depth - 1}];"]
        if init_files:
            lines.append(f'  initial $readmemh("{init_files[0]}", mem);')
        # the inputs' further stages (<input>_q2 .. up to WRITE_DELAY), the read and its output registers
        late = [f"_q{k}" if k > 1 else "_q" for k in range(1, WRITE_DELAY + 1)]
        last = late[-1]
        lines += [f"  reg signed [{w}:0] {', '.join(f'q{j}_{t}' for t in range(_OUT_STAGES))};" for j in range(reads)]
        lines += [f"  reg [{a}:0] {', '.join(f'raddr{j}{x}' for x in late[1:])};" for j in range(reads)]
        lines += [f"  reg {', '.join(f'we{j}{x}' for x in late[1:])};\n  reg [{a}:0] {', '.join(f'waddr{j}{x}' for x in late[1:])};\n"
                  f"  reg [{w}:0] {', '.join(f'wdata{j}{x}' for x in late[1:])};" for j in range(writes)]
        lines.append("  always @(posedge clk) begin")
        for x, y in zip(late, late[1:]):
            lines += [f"    raddr{j}{y} <= raddr{j}{x};" for j in range(reads)]
            lines += [f"    we{j}{y} <= we{j}{x}; waddr{j}{y} <= waddr{j}{x}; wdata{j}{y} <= wdata{j}{x};" for j in range(writes)]
        for j in range(reads):
            outs = [f"mem[raddr{j}{last}]"] + [f"q{j}_{t}" for t in range(_OUT_STAGES)]
            lines += [f"    {dst} <= {src};" for src, dst in zip(outs, outs[1:] + [f"rdata{j}"])]
        lines += [f"    if (we{j}{last}) mem[waddr{j}{last}] <= wdata{j}{last};" for j in range(writes)]
        return "\n".join([*lines, "  end", "endmodule", ""])
    return "\n".join([*head, *_banked_body(w, a, reads, writes, init_files, layouts), "endmodule", ""])


def _input_registers(a: int, w: int, reads: int, writes: int, banked: bool) -> list[str]:
    """Registers ``<input>_q`` of every address, enable and write data input (:data:`WRITE_DELAY`)."""
    regs = [(f"[{a}:0] ", f"raddr{j}") for j in range(reads)] + ([("", f"ren{j}") for j in range(reads)] if banked else [])
    regs += [r for j in range(writes) for r in (("", f"we{j}"), (f"[{a}:0] ", f"waddr{j}"), (f"[{w}:0] ", f"wdata{j}"))]
    lines = [f"  reg {width}{name}_q;" for width, name in regs]
    return lines + ["  always @(posedge clk) begin", *[f"    {name}_q <= {name};" for _, name in regs], "  end"]


def _banked_body(w: int, a: int, reads: int, writes: int, init_files: Sequence[str], layouts: Sequence[BankLayout]) -> list[str]:
    """The arrays and port muxes of a banked :func:`memory_verilog` (its docstring)."""
    sel_bits = max(1, (len(layouts) - 1).bit_length())

    def addr(v: int) -> str:  # an address constant, one bit wider so that a bank's end always fits
        return f"{a + 2}'d{v}"

    zero = f"{w + 1}'d0"  # a data word of zeros

    def pick(hits: list[str], values: list[str], default: str) -> str:
        return " : ".join([f"{h} ? {v}" for h, v in zip(hits, values)] + [default])

    lines = []
    files = iter(init_files)
    for b, lay in enumerate(layouts):
        lo, hi, pieces, slices = lay.start, lay.stop, lay.pieces, lay.slices
        low = lay.depth.bit_length() - 1  # a bank offset's bits within its piece
        lb = max(1, min(low, a + 1))  # a piece's address bits
        rhit = [f"rhit{j}_{b}" for j in range(reads)]
        whit = [f"whit{j}_{b}" for j in range(writes)]
        lines += [f"  // bank {b}: words {lo} .. {hi - 1}, in {len(pieces)} piece(s) of up to {lay.depth} words, "
                  f"{len(slices)} slice(s) of up to {lay.bits} bits"]
        lines += [f"  wire {h} = ren{j}_q && raddr{j}_q >= {addr(lo)} && raddr{j}_q < {addr(hi)};" for j, h in enumerate(rhit)]
        lines += [f"  wire {h} = we{j}_q && waddr{j}_q >= {addr(lo)} && waddr{j}_q < {addr(hi)};" for j, h in enumerate(whit)]
        lines += [
            f"  wire [{a}:0] ra{b} = {pick(rhit, [f'raddr{j}_q - {addr(lo)}' for j in range(reads)], addr(0))};",
            f"  wire [{a}:0] wa{b} = {pick(whit, [f'waddr{j}_q - {addr(lo)}' for j in range(writes)], addr(0))};",
            f"  wire [{w}:0] wd{b} = {pick(whit, [f'wdata{j}_q' for j in range(writes)], zero)};",
            f"  reg [{a}:0] bank{b}_ra, bank{b}_wa;  // the bank's decoded addresses, write enable and data, registered",
            f"  reg bank{b}_we;",
            f"  reg [{w}:0] bank{b}_wd;",
            f"  reg [{a}:0] bank{b}_s1, bank{b}_s2, bank{b}_s3;  // the piece read: beside its address, output, output register",
            f"  reg signed [{w}:0] qq{b};  // the word of the piece read, registered after their mux",
            "  always @(posedge clk) begin",
            f"    bank{b}_ra <= ra{b}; bank{b}_wa <= wa{b}; bank{b}_wd <= wd{b}; bank{b}_we <= {' || '.join(whit) or '0'};",
            f"    bank{b}_s1 <= bank{b}_ra >> {low}; bank{b}_s2 <= bank{b}_s1; bank{b}_s3 <= bank{b}_s2;",
            f"    case (bank{b}_s3)",
            *[f"      {a + 1}'d{p}: qq{b} <= p{b}_{p}_qq;" for p in range(len(pieces))],
            f"      default: qq{b} <= p{b}_0_qq;",
            "    endcase",
            "  end",
        ]
        for p, (plo, phi) in enumerate(pieces):
            n = f"p{b}_{p}"
            local, wlocal = (f"bank{b}_{x}[{lb - 1}:0]" if low else "1'd0" for x in ("ra", "wa"))
            lines += [
                f"  // piece {p}: words {plo} .. {phi - 1}",
                f"  reg [{lb - 1}:0] {n}_ra, {n}_wa;",
                f"  reg {n}_we;",
                f"  reg [{w}:0] {n}_wd;",
                "  always @(posedge clk) begin",
                f"    {n}_ra <= {local}; {n}_wa <= {wlocal}; {n}_wd <= bank{b}_wd;",
                f"    {n}_we <= bank{b}_we && (bank{b}_wa >> {low}) == {a + 1}'d{p};",
                "  end",
            ]
            for k, (b0, b1) in enumerate(slices):
                x = f"{n}_{k}"
                # no_rw_check: no logic for a read and a write of one word in one cycle (simulation
                # stops on one, below), so the block RAM's output goes straight to its register
                lines += [f"  (* no_rw_check *) reg [{b1 - b0 - 1}:0] {x} [0:{phi - plo - 1}];  // bits {b0} .. {b1 - 1}"]
                if init_files:
                    lines.append(f'  initial $readmemh("{next(files)}", {x});')
                lines += [
                    f"  reg [{b1 - b0 - 1}:0] {x}_q, {x}_qq;  // the block RAM's output, and its register",
                    "  always @(posedge clk) begin",
                    f"    {x}_q <= {x}[{n}_ra];",
                    f"    {x}_qq <= {x}_q;",
                    f"    if ({n}_we) {x}[{n}_wa] <= {n}_wd[{b1 - 1}:{b0}];",
                    "  end",
                ]
            lines += [f"  wire signed [{w}:0] {n}_qq = {{{', '.join(f'{n}_{k}_qq' for k in reversed(range(len(slices))))}}};"]
        lines += [
            "`ifndef SYNTHESIS",
            f"  reg bank{b}_re;",
            "  always @(posedge clk) begin",
            f"    bank{b}_re <= {' || '.join(rhit) or '0'};",
            f'    if ({" + ".join(rhit) or "0"} > 1) $fatal(1, "bank {b}: two reads in one cycle");',
            f'    if ({" + ".join(whit) or "0"} > 1) $fatal(1, "bank {b}: two writes in one cycle");',
            f'    if (bank{b}_re && bank{b}_we && bank{b}_ra == bank{b}_wa) $fatal(1, "bank {b}: a read and a write of one word in one cycle (word %0d of the bank)", bank{b}_ra);',
            "  end",
            "`endif",
        ]
    for j in range(reads):
        which = pick([f"rhit{j}_{b}" for b in range(len(layouts))], [f"{sel_bits}'d{b}" for b in range(len(layouts))], f"{sel_bits}'d0")
        stages = [f"from{j}_{t}" for t in range(READ_LATENCY - 1)]  # the bank read, from the bank registers' edge on
        moves = " ".join(f"{y} <= {x};" for x, y in zip(stages, stages[1:]))
        lines += [f"  reg [{sel_bits - 1}:0] {', '.join(stages)};",
                  f"  always @(posedge clk) begin {stages[0]} <= {which}; {moves} end",
                  "  always @* begin", f"    case ({stages[-1]})"]
        lines += [f"      {sel_bits}'d{b}: rdata{j} = qq{b};" for b in range(len(layouts))]
        lines += [f"      default: rdata{j} = qq0;", "    endcase", "  end"]
    return lines
