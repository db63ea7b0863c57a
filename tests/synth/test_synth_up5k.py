"""The UP5K memory plan: exact placements of a small program, lifetime sharing, and the MNIST configurations."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ttedge.config import load_config
from ttedge.fixed import PrecisionConfig, compile_program
from ttedge.fixed.format import FixedFormat
from ttedge.fixed.program import Buffer, Program
from ttedge.models import MLP, build_model
from ttedge.synth.up5k import CAPACITY_BITS, _ebr_choice, plan_up5k_memories, render_up5k_plan
from ttedge.train.config import RunConfig
from ttedge.tt import TTLinear

CONFIGS = Path(__file__).parents[2] / "configs"
X304 = ["--model.ranks=[[10,7,8],[8]]", "--model.out_modes=[[4,4,2,16],[2,5]]", "--fixed.bias=fx<8,2>"]


def small_program() -> Program:
    gen = torch.Generator().manual_seed(0)
    model = MLP([TTLinear([4, 4, 4], [4, 2, 4], [4, 3], generator=gen),  # type: ignore[arg-type]
                 TTLinear([4, 8], [2, 8], [4], generator=gen)], 10)  # type: ignore[arg-type]
    return compile_program(model, PrecisionConfig(lr_shift=5), 4)


def mnist_program(overrides: list[str]) -> Program:
    cfg = load_config(RunConfig, CONFIGS / "mnist_tt_fixed.toml", overrides)
    return cfg.compile_fixed(build_model(cfg.model, 896, 10), 1, 60000)


def test_small_program_placements_are_exact() -> None:
    plan = plan_up5k_memories(small_program())
    spram = {s.buffer.name: (s.offset, s.words) for s in plan.slots if s.memory == "spram"}
    # largest first at the lowest free word, but l0.s2 and l0.e2 move to block 1 (0x4000): each shares
    # an instruction with a buffer already in block 0 (l0.s1, l0.e1), whose single port it would contend for
    assert spram == {"l0.s1": (0, 768), "l0.e1": (768, 768), "l0.s2": (16384, 512), "l1.s1": (1536, 512),
                     "l1.e1": (2048, 512), "l0.e2": (16896, 512), "labels": (2560, 8)}
    assert plan.port_conflicts() == [] and plan.spram_blocks_used == 2
    ebr = [s.buffer.name for s in plan.slots if s.memory == "ebr"]
    assert len(ebr) == 19 and all(s.ebr_blocks == 1 and s.ebr_shape == (256, 16) for s in plan.slots if s.memory == "ebr")
    assert ebr[:5] == ["x", "l0.core0", "l0.core1", "l0.core2", "l0.y"]
    assert plan.slot("l0.core1").words == 48  # 96 8-bit codes, two per 16-bit word
    assert plan.slot("labels").words == 8  # 4 32-bit labels, two words each
    assert plan.spram_words == 3592 and plan.ebr_blocks == 19 and plan.fits and plan.deficit_bits == 0
    assert plan.stored_bits == sum(b.bits for b in small_program().buffers)
    assert plan.used_bits == 3592 * 16 + 19 * 4096 and plan.headroom_bits == CAPACITY_BITS - plan.used_bits
    assert plan.slot("l0.s1").where() == "spram0 @0x0000" and plan.slot("l0.s2").where() == "spram1 @0x4000"


def test_sharing_reuses_words_only_between_disjoint_lifetimes() -> None:
    program = small_program()
    plan = plan_up5k_memories(program, share=True)
    assert plan.spram_words == 1800 and plan.fits
    assert plan.slot("l0.e1").offset == plan.slot("l0.s1").offset == 0  # e1 lives after s1's last read
    spram = [s for s in plan.slots if s.memory == "spram"]
    for i, a in enumerate(spram):
        for b in spram[i + 1:]:
            assert a.offset is not None and b.offset is not None and a.lifetime is not None and b.lifetime is not None
            words_meet = a.offset < b.offset + b.words and b.offset < a.offset + a.words
            times_meet = a.lifetime[0] <= b.lifetime[1] and b.lifetime[0] <= a.lifetime[1]
            assert not (words_meet and times_meet), (a.buffer.name, b.buffer.name)


def test_ebr_configuration_is_the_one_needing_fewest_blocks() -> None:
    b = Buffer("w", (600,), FixedFormat(8, 1), "core")
    assert _ebr_choice(b, pack=True) == (2, (256, 16), 300)  # two codes per 16-bit word: 300 words
    assert _ebr_choice(b, pack=False) == (2, (512, 8), 600)  # one 8-bit code per word: the 512x8 shape
    wide = Buffer("v", (100,), FixedFormat(32, 0), "optimizer")
    assert _ebr_choice(wide, pack=True) == (2, (256, 16), 100)  # two 16-bit lanes side by side


def test_unpacked_codes_take_a_word_each() -> None:
    packed, unpacked = plan_up5k_memories(small_program()), plan_up5k_memories(small_program(), pack=False)
    assert unpacked.slot("l0.core1").words == 96 == 2 * packed.slot("l0.core1").words


def test_the_304x_mnist_training_step_fits_the_up5k() -> None:
    program = mnist_program(X304)
    plan = plan_up5k_memories(program)
    assert plan.fits and plan.stored_bits == 748_240
    assert plan.spram_words == 45_230 and plan.ebr_blocks == 11
    assert plan.headroom_bits == 402_720
    assert plan.bits_by_kind()["optimizer"] == 171_072
    shared = plan_up5k_memories(program, share=True)
    assert plan.port_conflicts() == [(17, 2, ("l0.ey", "l0.dcore3")), (30, 1, ("l0.core1", "l0.core1.v"))]
    assert shared.fits and shared.spram_words == 31_916 and shared.headroom_bits == 615_744
    assert shared.port_conflicts() == []
    flat = plan.to_flat()
    assert flat["up5k_mem.fits"] is True and flat["up5k_mem.headroom_bits"] == 402_720 and flat["up5k_mem.port_conflicts"] == 2
    assert flat["up5k_mem.error_bits"] == 217_248 and flat["up5k_mem.capacity_bits"] == 1_171_456
    text = render_up5k_plan(plan)
    assert "| l0.core3.v | optimizer | 16x128 | 32 | 65,536 | spram1 @0x4000 | 4,096 |" in text
    assert text.rstrip().endswith("Fits: every buffer is on chip, with 402,720 bits of RAM to spare (34% of 1,171,456).")


def test_the_rank_16_mnist_step_does_not_fit_and_says_what_to_shrink() -> None:
    plan = plan_up5k_memories(mnist_program([]))
    assert not plan.fits and plan.stored_bits == 1_658_912
    assert plan.deficit_bits == sum(s.words * 16 for s in plan.unplaced) > plan.stored_bits - CAPACITY_BITS
    assert plan.headroom_bits == -plan.deficit_bits
    assert plan.shrink_options()[0] == "optimizer: 473,600 bits in 32-bit codes; 16-bit codes would save 236,800"
    text = render_up5k_plan(plan)
    assert f"Does not fit: {plan.deficit_bits:,} bits short; not placed: " in text
    assert "- fewer TT ranks shrink" in text


def test_unknown_buffer_name_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        plan_up5k_memories(small_program()).slot("nope")
