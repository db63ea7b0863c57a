"""Fixed-point numbers: the format, bit-exact reference ops, the rounding generator and softmax,
and the training program with its reference interpreter."""

from .compile import PrecisionConfig, compile_program
from .format import OVERFLOWS, ROUNDINGS, FixedFormat, Overflow, Rounding
from .ops import SaturationCount, accumulate, add, matmul_exact, mul, quantize, requantize, to_float
from .interpreter import Interpreter
from .program import (
    BiasAdd,
    BiasGrad,
    Buffer,
    Contract,
    Instruction,
    Operand,
    Program,
    Relu,
    ReluGrad,
    ScaleControl,
    ScaleRule,
    SgdUpdate,
    SoftmaxXentGrad,
)
from .rng import random_bits, random_bits_scalar
from .softmax import (
    EXP_ERROR,
    EXP_TABLE,
    LOG2E,
    SOFTMAX_EXP_FRAC,
    exp_neg,
    softmax_xent_grad,
    softmax_xent_grad_error_bound,
)

__all__ = [
    "BiasAdd",
    "BiasGrad",
    "Buffer",
    "Contract",
    "Instruction",
    "Interpreter",
    "Operand",
    "PrecisionConfig",
    "Program",
    "Relu",
    "ReluGrad",
    "ScaleControl",
    "ScaleRule",
    "SgdUpdate",
    "SoftmaxXentGrad",
    "compile_program",
    "EXP_ERROR",
    "EXP_TABLE",
    "LOG2E",
    "SOFTMAX_EXP_FRAC",
    "FixedFormat",
    "OVERFLOWS",
    "Overflow",
    "ROUNDINGS",
    "Rounding",
    "SaturationCount",
    "accumulate",
    "add",
    "exp_neg",
    "matmul_exact",
    "mul",
    "quantize",
    "random_bits",
    "random_bits_scalar",
    "requantize",
    "softmax_xent_grad",
    "softmax_xent_grad_error_bound",
    "to_float",
]
