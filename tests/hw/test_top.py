"""The accelerator's interfaces: instruction encoding, memory map, refusals and the host port."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from amaranth.sim import Simulator

from ttedge.errors import ConfigError
from ttedge.fixed import FixedFormat, Interpreter, PrecisionConfig, compile_program
from ttedge.fixed.program import Program
from ttedge.hw import AcceleratorConfig, MemoryMap, encode_program
from ttedge.hw.memmap import CTRL, CYCLES, STATUS
from ttedge.hw.top import HOST_READ_LATENCY, Accelerator
from ttedge.models import MLP
from ttedge.tt import TTLinear


def small_program(**precision: object) -> tuple[Program, MLP]:
    gen = torch.Generator().manual_seed(0)
    model = MLP([TTLinear([2, 4], [2, 3], 2, generator=gen), TTLinear([2, 3], [2, 5], 2, generator=gen)], 10)
    return compile_program(model, PrecisionConfig(**precision), 2), model  # type: ignore[arg-type]


def test_words_pack_and_unpack() -> None:
    program, _ = small_program(momentum_shift=2)
    image = encode_program(program, AcceleratorConfig(p=4, q=2))
    assert len(image.words) == len(program.instructions) + 1
    for word in image.words:
        assert image.unpack(image.pack(word)) == word
    assert image.layout().size == image.word_bits


def test_memory_map_places_every_buffer_once() -> None:
    program, model = small_program(momentum_shift=2)
    mm = MemoryMap(program, AcceleratorConfig())
    interp = Interpreter(program, model)
    assert set(mm.registers) == set(interp.state) - {b.name for b in program.buffers}
    seen = set()
    for pl in mm.placements:
        assert pl.width == pl.buffer.fmt.width and pl.depth == pl.buffer.numel
        words = {(pl.memory, pl.offset + i) for i in range(pl.depth)}
        assert not words & seen
        seen |= words
    bits = mm.bits()
    assert bits["program"] == sum(b.bits for b in program.buffers)
    assert sum(v for k, v in bits.items() if k.startswith("mem")) == bits["total"]
    assert "x" in mm.describe()


def test_rank_prior_registers_and_unsigned_words() -> None:
    """With the rank prior: the host register prior.on, and lambdas / precisions (unsigned codes)
    in words one bit wider than their codes, so a code with its top bit set reads as its value."""
    from ttedge.fixed import PriorConfig
    from ttedge.fixed.program import LambdaUpdate, PriorGrad

    gen = torch.Generator().manual_seed(0)
    model = MLP([TTLinear([2, 2, 2], [2, 2, 2], 2, generator=gen), TTLinear([2, 4], [2, 5], 2, generator=gen)], 10)
    program = compile_program(model, PrecisionConfig(), 2, PriorConfig())  # type: ignore[arg-type]
    mm = MemoryMap(program, AcceleratorConfig())
    interp = Interpreter(program, model)
    assert "prior.on" in mm.registers and set(mm.registers) == set(interp.state) - {b.name for b in program.buffers}
    lam = next(i for i in program.instructions if isinstance(i, LambdaUpdate))
    for name in (lam.lam, lam.prec):
        fmt = program.buffer(name).fmt
        assert not fmt.signed and mm.placement(name).width == fmt.width + 1
    words = encode_program(program, AcceleratorConfig()).words
    prior = next(w for w, i in zip(words, program.instructions) if isinstance(i, PriorGrad))
    assert prior["pl"] + prior["pr"] >= 1


def test_adam_and_unknown_instructions_are_refused() -> None:
    program, _ = small_program(optimizer="adam")
    with pytest.raises(ConfigError, match=r"\(AdamUpdate\) is not supported by the accelerator"):
        encode_program(program, AcceleratorConfig())

    @dataclasses.dataclass(frozen=True)
    class PriorGrad:  # a kind the hardware has never heard of
        phase: str = "backward"
        macs: int = 0
        reads: tuple[str, ...] = ()
        writes: tuple[str, ...] = ()

    sgd, _ = small_program()
    future = dataclasses.replace(sgd, instructions=sgd.instructions + (PriorGrad(),))  # type: ignore[operator]
    with pytest.raises(ConfigError, match=r"\(PriorGrad\) is not supported by the accelerator"):
        encode_program(future, AcceleratorConfig())


def test_widths_and_sizes_beyond_the_hardware_are_refused() -> None:
    program, _ = small_program(activation=FixedFormat(20, 8), acc_width=48)
    with pytest.raises(ConfigError, match="is 20 bits wide but the accelerator supports at most 16"):
        encode_program(program, AcceleratorConfig())
    program, _ = small_program(acc_width=40)
    with pytest.raises(ConfigError, match="supports at most 32; raise AcceleratorConfig.max_acc_width"):
        encode_program(program, AcceleratorConfig(max_acc_width=32))
    with pytest.raises(ConfigError, match="raise AcceleratorConfig.max_memory_words"):
        MemoryMap(program, AcceleratorConfig(max_memory_words=16))


@pytest.mark.parametrize("field,value", [("p", 0), ("q", 65), ("max_operand_width", 40), ("max_acc_width", 8), ("host_width", 32)])
def test_accelerator_config_is_validated(field: str, value: int) -> None:
    with pytest.raises(ConfigError, match=f"AcceleratorConfig.{field} must"):
        AcceleratorConfig(**{field: value})


def test_host_port_reads_and_writes_memories_and_registers() -> None:
    program, model = small_program()
    interp = Interpreter(program, model)
    dut = Accelerator(program, AcceleratorConfig(p=2, q=2), interp.state_dict())
    mm = dut.mmap
    core = mm.placement("l0.core0")
    decay = mm.register_address("lr.decay")
    frac = mm.register_address("scale.l0.y.frac")

    async def bench(ctx) -> None:  # type: ignore[no-untyped-def]
        async def read(addr: int) -> int:
            ctx.set(dut.host_addr, addr)
            ctx.set(dut.host_re, 1)
            await ctx.tick()
            ctx.set(dut.host_re, 0)
            await ctx.tick().repeat(HOST_READ_LATENCY - 1)
            return ctx.get(dut.host_rdata)

        async def write(addr: int, value: int) -> None:
            ctx.set(dut.host_addr, addr)
            ctx.set(dut.host_wdata, value)
            ctx.set(dut.host_we, 1)
            await ctx.tick()
            ctx.set(dut.host_we, 0)

        codes = interp.state["l0.core0"].reshape(-1)
        assert [await read(core.base + i) for i in range(core.depth)] == codes.tolist()
        await write(core.base + 1, -3)
        assert await read(core.base + 1) == -3
        await write(decay, 2)
        assert await read(decay) == 2
        assert await read(frac) == program.buffer("l0.y").fmt.frac
        assert await read(STATUS) == 0
        await write(CTRL, 1)
        assert await read(STATUS) == 2  # busy
        await write(core.base + 1, 5)  # ignored while busy
        for _ in range(20000):
            if ctx.get(dut.done):
                break
            await ctx.tick()
        assert await read(STATUS) == 1  # done
        assert await read(mm.register_address("step")) == 1
        last = await read(mm.profile_base + len(program.instructions) - 1)
        assert last + 3 == await read(CYCLES)  # + the END word's fetch, decode and issue
        assert 0 < await read(mm.profile_base) < last

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("order", ["rtl", "ltr"])
def test_rank_digits_follow_the_stored_core_layout(order: str) -> None:
    """isa.rank_digit: (e // stride) % size is the left / right rank index of stored element e."""
    from ttedge.hw.isa import rank_digit
    from ttedge.tt.apply import core_matrix

    shape = (3, 2, 5, 4)
    r0, m, n, r1 = shape
    index = torch.arange(r0 * m * n * r1).reshape(shape)
    flat_left = core_matrix(index // (m * n * r1), order).reshape(-1)  # type: ignore[arg-type]
    flat_right = core_matrix(index % r1, order).reshape(-1)  # type: ignore[arg-type]
    (sa, na), (sb, nb) = rank_digit(shape, order, "r0"), rank_digit(shape, order, "r1")
    e = torch.arange(flat_left.numel())
    assert (na, nb) == (r0, r1)
    assert torch.equal((e // sa) % na, flat_left) and torch.equal((e // sb) % nb, flat_right)
