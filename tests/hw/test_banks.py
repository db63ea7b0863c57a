"""Memory banks (ttedge.hw.banks): every bank one block RAM with one read and one write port."""

from __future__ import annotations

import pytest

from ttedge.hw.banks import READ_ROLES, WRITE_ROLES, accesses, bank_images, plan_banks
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


def test_bank_images_split_a_memory_image() -> None:
    assert bank_images([1, 2, 3, 4, 5], ((0, 2), (2, 5))) == [[1, 2], [3, 4, 5]]
    assert bank_images([1, 2], None) == [[1, 2]]
