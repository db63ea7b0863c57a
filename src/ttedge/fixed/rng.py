"""A counter-based 32-bit generator for stochastic rounding that a hardware lane can compute.

The random word for a value depends only on its coordinates, not on how many words were drawn
before it, so any number of hardware lanes can produce the words of their own elements in any order
and still match this reference bit for bit. The word is a fixed function of four 32-bit inputs:

* ``seed``: the run's seed;
* ``stream``: which tensor is being rounded (the compiled program numbers its rounding sites);
* ``step``: the training step (or any counter the caller advances between uses of a stream);
* ``index``: the element's flat (C-order) position in the tensor being rounded.

One word is used per output element: ``requantize`` and ``quantize`` take ``random_bits`` of the
output's shape, normally ``random_bits(seed, stream, step, np.arange(size).reshape(shape))``.

Bit-level definition (all words 32-bit unsigned, ``+`` modulo 2**32, ``rotl`` a left rotation, which
is only wiring in hardware; no multipliers; the constants below are fixed bit patterns)::

    a = seed   ^ 0x61707865
    b = stream ^ 0x3320646E
    c = step   ^ 0x79622D32
    d = index  ^ 0x6B206574
    for r in 0 .. ROUNDS-1:             # ROUNDS = 4
        a = a + K[r]                    # K = [0x9E3779B9, 0x3C6EF372, 0xDAA66D2B, 0x78DDE6E4]
        a = a + b;  d = rotl(d ^ a, 16)     # the ChaCha quarter round
        c = c + d;  b = rotl(b ^ c, 12)
        a = a + b;  d = rotl(d ^ a, 8)
        c = c + d;  b = rotl(b ^ c, 7)
    return b ^ d

K[r] = (r + 1) * 0x9E3779B9 mod 2**32 (the golden-ratio Weyl sequence); it breaks the symmetry of
the quarter round, which maps the all-zero state to itself. The initial constants are ChaCha's
"expand 32-byte k". Every round is a bijection of the 128-bit state (a, b, c, d), so distinct
inputs give distinct states; the output keeps 32 of those bits. Cost per word: 4 rounds of four
32-bit adders, four 32-bit XORs and fixed rotations, i.e. 16 adders unrolled (one word per cycle
per lane when pipelined) or 4 adders iterated over 4 cycles. It is a statistical generator for
dithering, not a cryptographic one.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

__all__ = ["random_bits", "random_bits_scalar", "ROUNDS"]

ROUNDS = 4
_MASK = 0xFFFFFFFF
_INIT = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)
_KEYS = tuple(((r + 1) * 0x9E3779B9) & _MASK for r in range(ROUNDS))


def _check_word(name: str, value: object) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not 0 <= int(value) <= _MASK:
        raise ConfigError(
            f"random-bit {name} must be an integer from 0 to 2**32 - 1, got {value!r}; reduce it modulo 2**32."
        )
    return int(value)


def _rotl_scalar(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _MASK


def random_bits_scalar(seed: int, stream: int, step: int, index: int) -> int:
    """The 32-bit word for one element, in plain Python integers (the reference of the definition)."""
    a = _check_word("seed", seed) ^ _INIT[0]
    b = _check_word("stream", stream) ^ _INIT[1]
    c = _check_word("step", step) ^ _INIT[2]
    d = _check_word("index", index) ^ _INIT[3]
    for key in _KEYS:
        a = (a + key) & _MASK
        a = (a + b) & _MASK
        d = _rotl_scalar(d ^ a, 16)
        c = (c + d) & _MASK
        b = _rotl_scalar(b ^ c, 12)
        a = (a + b) & _MASK
        d = _rotl_scalar(d ^ a, 8)
        c = (c + d) & _MASK
        b = _rotl_scalar(b ^ c, 7)
    return b ^ d


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def random_bits(seed: int, stream: int, step: int, index: np.ndarray | int) -> np.ndarray:
    """The 32-bit words for the elements at ``index`` (any shape; values 0..2**32-1), as uint32.

    The result has the shape of ``index``; element i equals ``random_bits_scalar(seed, stream, step,
    index[i])``.
    """
    seed, stream, step = _check_word("seed", seed), _check_word("stream", stream), _check_word("step", step)
    idx = np.asarray(index)
    if idx.dtype.kind not in "iu" or (idx.size and (int(idx.min()) < 0 or int(idx.max()) > _MASK)):
        raise ConfigError("random-bit indices must be integers from 0 to 2**32 - 1; pass flat element positions.")
    d = idx.astype(np.uint32) ^ np.uint32(_INIT[3])
    # Array arithmetic on uint32 wraps modulo 2**32, as the hardware adders do.
    a = np.full(d.shape, seed ^ _INIT[0], dtype=np.uint32)
    b = np.full(d.shape, stream ^ _INIT[1], dtype=np.uint32)
    c = np.full(d.shape, step ^ _INIT[2], dtype=np.uint32)
    for key in _KEYS:
        a += np.uint32(key)
        a += b
        d = _rotl(d ^ a, 16)
        c += d
        b = _rotl(b ^ c, 12)
        a += b
        d = _rotl(d ^ a, 8)
        c += d
        b = _rotl(b ^ c, 7)
    return b ^ d
