"""The counter-based generator: vectorized = scalar reference, reproducible, and statistically sound.

Statistical checks use 5-sigma bounds of the binomial counts a uniform 32-bit word would give, so a
correct generator fails them with probability below 1e-6 per check.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttedge.errors import ConfigError
from ttedge.fixed import random_bits, random_bits_scalar

WORD = st.integers(0, 2**32 - 1)
N = 1 << 14


def bits(words: np.ndarray) -> np.ndarray:
    """(n, 32) array of the bits of uint32 words, least significant first."""
    return ((words[:, None] >> np.arange(32, dtype=np.uint32)) & 1).astype(np.int64)


def popcount(words: np.ndarray) -> np.ndarray:
    return bits(words).sum(axis=1)


@settings(max_examples=100, deadline=None)
@given(WORD, WORD, WORD, st.lists(WORD | st.sampled_from([0, 2**32 - 1]), min_size=1, max_size=8))
def test_vectorized_equals_scalar_reference(seed: int, stream: int, step: int, index: list[int]) -> None:
    words = random_bits(seed, stream, step, np.array(index, dtype=np.uint64))
    assert words.dtype == np.uint32
    assert words.tolist() == [random_bits_scalar(seed, stream, step, i) for i in index]


def test_known_answers() -> None:
    # Pinned words for hardware test benches; changing the generator must change these on purpose.
    cases = {
        (0, 0, 0, 0): 0x08761502,
        (0, 0, 0, 1): 0x188BF61E,
        (1, 0, 0, 0): 0xC102AD62,
        (0, 1, 0, 0): 0x1AFFE8A7,
        (0, 0, 1, 0): 0x3C2AD5A0,
        (2**32 - 1,) * 4: 0x5BE4C451,
        (12345, 7, 1000, 999999): 0x2E10771E,
    }
    for args, word in cases.items():
        assert random_bits_scalar(*args) == word
        assert int(random_bits(*args[:3], np.array([args[3]]))[0]) == word


def test_same_inputs_give_same_bits_and_shapes_follow_the_index() -> None:
    index = np.arange(24).reshape(2, 3, 4)
    first = random_bits(3, 1, 5, index)
    assert first.shape == (2, 3, 4)
    assert np.array_equal(first, random_bits(3, 1, 5, index))
    assert np.array_equal(first.ravel(), random_bits(3, 1, 5, np.arange(24)))


def test_consecutive_indices_give_distinct_words() -> None:
    for seed in range(4):
        assert len(np.unique(random_bits(seed, 0, 0, np.arange(4096)))) == 4096


def test_every_bit_is_balanced() -> None:
    for seed, stream, step in [(0, 0, 0), (1, 2, 3), (2**32 - 1, 0, 10**6)]:
        counts = bits(random_bits(seed, stream, step, np.arange(N))).sum(axis=0)  # (32,)
        assert np.all(np.abs(counts - N / 2) <= 5 * math.sqrt(N) / 2)


@pytest.mark.parametrize("neighbour", ["seed", "stream", "step", "index"])
def test_neighbouring_counters_are_decorrelated(neighbour: str) -> None:
    index = np.arange(N)
    base = random_bits(5, 9, 100, index)
    other = {
        "seed": random_bits(6, 9, 100, index),
        "stream": random_bits(5, 10, 100, index),
        "step": random_bits(5, 9, 101, index),
        "index": random_bits(5, 9, 100, index + 1),
    }[neighbour]
    # Equal bits between the two words: Binomial(32 N, 1/2) if independent.
    equal = 32 * N - int(popcount(base ^ other).sum())
    assert abs(equal - 16 * N) <= 5 * math.sqrt(32 * N) / 2
    # Their values as uniform numbers in [0, 1) have correlation ~ N(0, 1/N) if independent.
    u, v = base / 2.0**32 - 0.5, other / 2.0**32 - 0.5
    assert abs(np.corrcoef(u, v)[0, 1]) <= 5 / math.sqrt(N)


def test_single_input_bit_flips_avalanche() -> None:
    # Flipping any one input bit changes each output bit with probability 1/2: the Hamming distance
    # has mean 16 and std sqrt(8) per word.
    n = 1024
    index = np.random.default_rng(1).integers(0, 2**32, n).astype(np.uint32)
    base = random_bits(11, 22, 33, index)
    for bit in range(32):
        flips = [
            random_bits(11 ^ (1 << bit), 22, 33, index),
            random_bits(11, 22 ^ (1 << bit), 33, index),
            random_bits(11, 22, 33 ^ (1 << bit), index),
            random_bits(11, 22, 33, index ^ np.uint32(1 << bit)),
        ]
        for flipped in flips:
            assert abs(popcount(base ^ flipped).mean() - 16) <= 5 * math.sqrt(8) / math.sqrt(n)


def test_out_of_range_counters_are_named() -> None:
    with pytest.raises(ConfigError, match=r"^random-bit seed must be an integer from 0 to 2\*\*32 - 1, got -1; reduce it modulo 2\*\*32\.$"):
        random_bits(-1, 0, 0, np.arange(3))
    with pytest.raises(ConfigError, match=r"^random-bit step must be an integer from 0 to 2\*\*32 - 1, got 4294967296; reduce it modulo 2\*\*32\.$"):
        random_bits_scalar(0, 0, 2**32, 0)
    with pytest.raises(ConfigError, match=r"^random-bit indices must be integers from 0 to 2\*\*32 - 1; pass flat element positions\.$"):
        random_bits(0, 0, 0, np.array([-1, 0]))
