"""Fixed-point numbers: the format, bit-exact reference ops, the rounding generator and softmax."""

from .format import OVERFLOWS, ROUNDINGS, FixedFormat, Overflow, Rounding
from .ops import SaturationCount, accumulate, add, matmul_exact, mul, quantize, requantize, to_float
from .rng import random_bits, random_bits_scalar

__all__ = [
    "FixedFormat",
    "OVERFLOWS",
    "Overflow",
    "ROUNDINGS",
    "Rounding",
    "SaturationCount",
    "accumulate",
    "add",
    "matmul_exact",
    "mul",
    "quantize",
    "random_bits",
    "random_bits_scalar",
    "requantize",
    "to_float",
]
