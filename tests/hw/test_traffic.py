"""Operation and memory-traffic counts of a training step (the energy model's inputs)."""

from __future__ import annotations

import torch

from ttedge.fixed import Contract, FixedFormat, PrecisionConfig, compile_program
from ttedge.hw import AcceleratorConfig
from ttedge.hw.traffic import step_traffic
from ttedge.models import MLP
from ttedge.tt import TTLinear


def small_program(master: bool = False):  # type: ignore[no-untyped-def]
    gen = torch.Generator().manual_seed(0)
    model = MLP([TTLinear([4, 4], [4, 2], [3], generator=gen), TTLinear([2, 4], [2, 5], [2], generator=gen)], 10)  # type: ignore[arg-type]
    precision = PrecisionConfig(core=FixedFormat(4, 3), master=FixedFormat(8, 7)) if master else PrecisionConfig()
    return compile_program(model, precision, 2)


def test_useful_macs_and_single_lane_traffic_follow_the_program() -> None:
    program = small_program()
    one = step_traffic(program, AcceleratorConfig(p=1, q=1))
    assert sum(one.mults.values()) == program.macs == sum(n for w, n in one.adds.items() if w in (32, 48))
    # One lane: every MAC reads one code of each operand.
    contract_bits = 0
    width = {b.name: b.fmt.width for b in program.buffers}
    for ins in program.instructions:
        if isinstance(ins, Contract):
            contract_bits += ins.macs * (width[ins.a.buffer] + width[ins.b.buffer])
    wide = step_traffic(program, AcceleratorConfig(p=4, q=4))
    assert one.read_bits - wide.read_bits > 0  # a wider array re-reads less
    other = one.read_bits - contract_bits
    assert other > 0 and wide.read_bits - other < contract_bits  # elementwise traffic is the same for both arrays
    assert one.write_bits == wide.write_bits and one.as_dict()["read_bits"] == one.read_bits


def test_master_copies_are_read_at_the_master_width() -> None:
    narrow, wide = step_traffic(small_program(True), AcceleratorConfig(p=1, q=1)), step_traffic(small_program(False), AcceleratorConfig(p=1, q=1))
    assert (4, 16) in narrow.mults or (16, 4) in narrow.mults  # 4-bit compute codes meet 16-bit states
    narrows = sum(b.numel * 8 for b in small_program(True).buffers if b.kind == "core")  # each Narrow reads its master once
    assert narrow.read_bits - narrows == wide.read_bits  # contractions read 8-bit masters, as many bits as 8-bit cores
