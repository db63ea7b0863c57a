"""Memory banks (ttedge.hw.banks): every bank one block RAM with one read and one write port."""

from __future__ import annotations

import pytest

from ttedge.hw.banks import READ_ROLES, WRITE_ROLES, accesses, bank_images, bank_pieces, block_depth, plan_banks
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


def test_bank_images_split_a_memory_image_by_bank_and_piece() -> None:
    assert bank_images([1, 2, 3, 4, 5], ((0, 2), (2, 5)), 4) == [[1, 2], [3, 4, 5]]
    # pieces of two words, counted from each bank's start
    assert bank_pieces(((0, 3), (3, 8)), 2) == (((0, 2), (2, 3)), ((3, 5), (5, 7), (7, 8)))
    assert bank_images(list(range(8)), ((0, 3), (3, 8)), 2) == [[0, 1], [2], [3, 4], [5, 6], [7]]
    assert bank_images([1, 2], None, 2) == [[1, 2]]
    assert image_files(1, ((0, 3), (3, 8)), 2) == ["mem1_0_0.hex", "mem1_0_1.hex", "mem1_1_0.hex", "mem1_1_1.hex", "mem1_1_2.hex"]
    assert image_files(0, None, 2) == ["mem0.hex"]


def test_block_depth_is_one_block_rams_words() -> None:
    """16 Kbit blocks: 16384 x 1 .. 2048 x 9, 1024 x 18, 512 x 36; wider words at depth 512."""
    assert [block_depth(w) for w in (1, 2, 3, 4, 8, 9, 16, 18, 24, 32, 36, 48, 64)] == \
        [16384, 8192, 4096, 4096, 2048, 2048, 1024, 1024, 512, 512, 512, 512, 512]
