"""Memory banks (ttedge.hw.banks): every bank one block RAM with one read and one write port."""

from __future__ import annotations

import pytest

from ttedge.hw.banks import (BLOCK_SHAPES, MAX_PIECES, READ_ROLES, WRITE_ROLES, accesses, bank_images, bank_layout, bank_layouts,
                             plan_banks)
from ttedge.hw.memories import image_files
from ttedge.hw.config import AcceleratorConfig
from ttedge.hw.isa import Op, encode_program
from ttedge.hw.memmap import MemoryMap

from test_sim import random_case


def _bank(banks, offset: int, depth: int) -> int:
    """The bank holding words offset .. offset + depth - 1 (all of them in one bank)."""
    hits = [b for b, (lo, hi) in enumerate(banks) if lo <= offset < hi]
    assert len(hits) == 1 and offset + depth <= banks[hits[0]][1]
    return hits[0]


@pytest.mark.parametrize("seed", range(8))
def test_one_array_row_keeps_every_instructions_ports_in_separate_banks(seed: int) -> None:
    interp, _, _ = random_case(seed)
    config = AcceleratorConfig(p=1, q=1)
    mm = MemoryMap(interp.program, config)
    words = encode_program(interp.program, config).words
    plan = plan_banks(mm, words, config)
    pls, depths = mm.placements, mm.depths()
    for k, banks in enumerate(plan):
        if banks is None:
            continue
        assert banks[0][0] == 0 and banks[-1][1] == max(depths[k], 1)
        assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(banks, banks[1:]))  # contiguous, in order
    checked = 0
    for word in words:
        for kind in (READ_ROLES, WRITE_ROLES):
            used = [(role, pls[word[slot]]) for role, slot in accesses(word) if role in kind]
            for i, (ra, a) in enumerate(used):
                for rb, b in used[i + 1:]:
                    if a.memory != b.memory or plan[a.memory] is None or (kind == WRITE_ROLES and {ra, rb} <= {"O", "W"}):
                        continue
                    if a.index == b.index:
                        pytest.fail(f"{a.name} on two ports of a banked memory")
                    assert _bank(plan[a.memory], a.offset, a.depth) != _bank(plan[b.memory], b.offset, b.depth)
                    checked += 1
    assert checked > 0


def test_a_buffer_on_several_ports_leaves_its_memory_unbanked() -> None:
    # P = 2 rows read two words of one core per cycle; Q = 2 lanes write two words of one output
    interp, _, _ = random_case(0)
    for config in (AcceleratorConfig(p=2, q=1), AcceleratorConfig(p=1, q=2)):
        mm = MemoryMap(interp.program, config)
        words = encode_program(interp.program, config).words
        plan = plan_banks(mm, words, config)
        slot = "a" if config.p == 2 else "c"  # CONTRACT's left operands, or its outputs
        touched = {mm.placements[w[slot]].memory for w in words if w["op"] == Op.CONTRACT}
        assert touched and all(plan[k] is None for k in touched)
        assert any(banks is not None for banks in plan)


def test_bank_images_split_a_memory_image_by_bank_piece_and_slice() -> None:
    # pieces of two words counted from each bank's start, slices of three bits (the last one two)
    layouts = bank_layouts(((0, 3), (3, 8)), 5, shape=(2, 3))
    assert [lay.pieces for lay in layouts] == [((0, 2), (2, 3)), ((3, 5), (5, 7), (7, 8))]
    assert layouts[0].slices == ((0, 3), (3, 5)) and [lay.blocks for lay in layouts] == [4, 6]
    image = [0b10110, -1, 7, 0, 1, 2, 3, -16]  # -1 and -16: 11111 and 10000 at five bits
    assert bank_images(image, 5, layouts) == [
        ([0b110, 0b111], 3), ([0b10, 0b11], 2), ([7], 3), ([0], 2),
        ([0, 1], 3), ([0, 0], 2), ([2, 3], 3), ([0, 0], 2), ([0], 3), ([2], 2)]
    assert bank_images([1, -2], 8, None) == [([1, 254], 8)]
    assert image_files(1, layouts) == ["mem1_0_0_0.hex", "mem1_0_0_1.hex", "mem1_0_1_0.hex", "mem1_0_1_1.hex",
                                       "mem1_1_0_0.hex", "mem1_1_0_1.hex", "mem1_1_1_0.hex", "mem1_1_1_1.hex",
                                       "mem1_1_2_0.hex", "mem1_1_2_1.hex"]
    assert image_files(0, None) == ["mem0.hex"]
    assert bank_layouts(None, 8) is None


@pytest.mark.parametrize("words,width,shape,blocks", [
    (14272, 8, (2048, 9), 7),        # the MNIST 8-bit class: seven pieces, one slice
    (25984, 16, (4096, 4), 28),      # seven pieces of four slices; 1024 x 18's 26 blocks would be 26 pieces
    (40144, 16, (8192, 2), 40),      # five pieces of eight slices, as many blocks as 1024 x 18's 40 pieces
    (14801, 32, (2048, 9), 32),      # eight pieces of four slices: 32 blocks, as 16384 x 1 in 32 slices
    (784, 16, (1024, 18), 1),        # one block holds it
    (32, 16, (1024, 18), 1),
    (3000, 36, (512, 36), 6),        # six pieces of one slice; 1024 x 18 takes six blocks in two slices
    (100000, 8, (16384, 1), 56),     # no shape keeps to MAX_PIECES: the deepest, seven pieces of eight slices
])
def test_bank_layout_takes_the_fewest_blocks_in_few_pieces(words: int, width: int, shape: tuple[int, int], blocks: int) -> None:
    lay = bank_layout(0, words, width)
    assert (lay.depth, lay.bits) == shape and lay.blocks == blocks
    assert all(d * b <= 18432 for d, b in BLOCK_SHAPES)  # 16 Kbit of data, 18 with parity bits
    assert sum(hi - lo for lo, hi in lay.pieces) == words and lay.slices[-1][1] == width
    assert len(lay.pieces) <= MAX_PIECES or (lay.depth, lay.bits) == BLOCK_SHAPES[0]
    # no shape within MAX_PIECES pieces takes fewer blocks, or as many in fewer slices
    for d, b in BLOCK_SHAPES:
        other = bank_layout(0, words, width, shape=(d, b))
        assert len(other.pieces) > MAX_PIECES or (other.blocks, len(other.slices)) >= (lay.blocks, len(lay.slices))
