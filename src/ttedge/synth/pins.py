"""A serial wrapper so that a unit with more port bits than the package has pins can be placed.

The UP5K's sg48 package has 39 I/O pins; a unit such as ``RandomLane`` has 162 port bits. The
wrapper keeps every bit of the unit observable, so synthesis removes none of its logic:

- the data inputs come from one shift register fed by a single pin ``sin`` (one flip-flop per bit);
- the data outputs are registered (one flip-flop per bit) and XOR-reduced onto one pin ``sout``;
- ``clk`` and ``rst`` (when the unit has them) pass straight through.

Its cost, which the figures of a wrapped unit include, is one flip-flop per port bit plus about
one LUT4 per three output bits for the XOR tree; :func:`wrapper_overhead` states it. The ports are
read from the unit's own Verilog (the plain ``input [w-1:0] name;`` declarations Amaranth writes).
"""

from __future__ import annotations

import re

from ..errors import ConfigError

__all__ = ["module_ports", "serial_wrapper", "wrapper_overhead"]

_CLOCKS = ("clk", "rst")
_DECL = re.compile(r"^\s*(input|output)\s+(?:wire\s+|reg\s+)?(?:signed\s+)?(?:\[(\d+):0\]\s*)?\\?([A-Za-z_][\w$.]*)\s*[;,]", re.M)


def module_ports(verilog: str, top: str) -> list[tuple[str, str, int]]:
    """(direction, name, width in bits) of every port of module ``top`` in ``verilog``."""
    m = re.search(rf"^\s*module\s+\\?{re.escape(top)}\s*\(.*?^\s*endmodule", verilog, re.S | re.M)
    if m is None:
        raise ConfigError(f"the Verilog has no module {top!r}; pass the name of its top module.")
    ports = [(d, name, int(msb) + 1 if msb else 1) for d, msb, name in _DECL.findall(m.group(0))]
    if not ports:
        raise ConfigError(f"module {top!r} declares no ports in the form 'input [n:0] name;'; wrap it by hand.")
    return ports


def serial_wrapper(verilog: str, top: str, wrapper: str = "ttedge_serial_top") -> str:
    """``verilog`` plus a module ``wrapper`` around ``top`` with ports clk, rst, sin and sout only."""
    ports = module_ports(verilog, top)
    ins = [(n, w) for d, n, w in ports if d == "input" and n not in _CLOCKS]
    outs = [(n, w) for d, n, w in ports if d == "output"]
    n_in = sum(w for _, w in ins)
    n_out = sum(w for _, w in outs)
    clocks = [n for d, n, _ in ports if d == "input" and n in _CLOCKS]
    lines = [f"module {wrapper}(input clk, input rst, input sin, output sout);"]
    if n_in:
        lines.append(f"  reg [{n_in - 1}:0] shift_in;")
        lines.append(f"  always @(posedge clk) shift_in <= {{shift_in[{n_in - 2}:0], sin}};" if n_in > 1
                     else "  always @(posedge clk) shift_in <= sin;")
    if n_out:
        lines.append(f"  wire [{n_out - 1}:0] unit_out;")
        lines.append(f"  reg [{n_out - 1}:0] out_q;")
        lines.append("  always @(posedge clk) out_q <= unit_out;")
        lines.append("  assign sout = ^out_q;")
    else:
        lines.append("  assign sout = 1'b0;")
    conns, pos = [f".{n}({n})" for n in clocks], 0
    for name, width in ins:
        conns.append(f".{name}(shift_in[{pos + width - 1}:{pos}])")
        pos += width
    pos = 0
    for name, width in outs:
        conns.append(f".{name}(unit_out[{pos + width - 1}:{pos}])")
        pos += width
    lines.append(f"  \\{top} unit ({', '.join(conns)});")
    lines.append("endmodule")
    return verilog + "\n" + "\n".join(lines) + "\n"


def wrapper_overhead(verilog: str, top: str) -> dict[str, int]:
    """Flip-flops the wrapper adds (``ff``: one per data port bit) and the bits it serializes."""
    ports = module_ports(verilog, top)
    n_in = sum(w for d, n, w in ports if d == "input" and n not in _CLOCKS)
    n_out = sum(w for d, _, w in ports if d == "output")
    return {"ff": n_in + n_out, "in_bits": n_in, "out_bits": n_out}
