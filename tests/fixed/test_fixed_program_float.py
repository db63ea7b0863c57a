"""One fixed-point training step against the float64 step of the same (dequantized) network.

Tolerance derivation. Write x~ for the fixed-point value of a buffer, x for the float value and
d(x) >= |x~ - x| for the bound carried along the program, instruction by instruction, from
d = 0 at the input and the weights (the float model is given the dequantized codes):

* Contract, Y = G A (exact products, then one rounding to nearest into Y's format):
  |Y~ - Y| <= |G| d(A) + d(G) |A~| + d(G) d(A) + LSB(Y)/2, from G~A~ - GA = G~(A~-A) + (G~-G)A~ -
  (G~-G)(A~-A) with the matrix products taken over the same indices as the instruction's.
  In backward, d(G) = 0 (the cores are exact until the update); for the core gradient both
  operands carry bounds.
* BiasAdd: + LSB(y)/2 if the bias has more fractional bits than y, else exact.
* ReLU is 1-Lipschitz. ReluGrad: where |z~| > d(z) the mask is certain and d passes (or is 0);
  elsewhere the masks may differ and the bound is |e~| + d(e).
* Softmax - onehot: each row of the softmax Jacobian has absolute sum 2 p (1 - p) <= 1/2, so a
  logit error of at most max_c d(z_c) moves each p by at most half of it; plus the fixed-point
  softmax's own bound (``softmax_xent_grad_error_bound``: exponential error and LSB(e)/2).
* BiasGrad: sum of the errors' bounds + LSB(g)/2.
* SGD with stochastic rounding into the core: |w~' - w'| <= 2**-lr d(g) + LSB(w) (one LSB at
  most from the stochastic rounding) + 2**-(frac_w + 32) (the floor below 32 dithered bits).
* float64's own rounding in the reference: sums of < 10**3 terms below 2**8, < 1e-9 here (SLACK).

No value saturates in this step (asserted), so the bound holds element by element. It is a worst
case (every rounding error aligned), hundreds to thousands of LSBs for the first layer's core
gradients. A second, statistical check models each rounding error as independent and uniform in
+-LSB/2 (variance LSB**2/12), propagates the variance v through the same instructions with squared
coefficients (G**2 v(A), sums of E**2 v(S) + v(E) S**2, a quarter of the largest logit variance
through the softmax, whose own error bound b adds b**2/3, and (|e| + d(e))**2 where a ReLU mask
is uncertain), and asserts every deviation is within 6 standard deviations.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ttedge.fixed import (
    BiasAdd,
    BiasGrad,
    Contract,
    FixedFormat,
    Interpreter,
    PrecisionConfig,
    Relu,
    ReluGrad,
    SoftmaxXentGrad,
    compile_program,
    softmax_xent_grad_error_bound,
)
from ttedge.models import MLP
from ttedge.tt import TTLinear
from ttedge.tt.apply import core_matrix

SLACK = 1e-9


def small_mlp(order: str) -> MLP:
    gen = torch.Generator().manual_seed(0)
    return MLP(
        [
            TTLinear([4, 4, 4], [2, 2, 4], 3, order=order, generator=gen),  # type: ignore[arg-type]
            TTLinear([2, 2, 4], [2, 5, 1], 3, order=order, generator=gen),  # type: ignore[arg-type]
        ],
        10,
    )


def batch(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((n, 64)), rng.integers(0, 10, n)


def _sum_outer(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return np.einsum("roc,rkc->ok", p, q)


def propagate(interp: Interpreter, fracs: dict[str, int], before: dict[str, np.ndarray],
              trace: list[dict[str, np.ndarray]]) -> tuple[dict[str, np.ndarray], ...]:
    """(values, bounds, variances) of every buffer written in one step (module docstring)."""
    prog = interp.program
    lsb = {name: 2.0 ** -f for name, f in fracs.items()}
    cur = {name: np.ldexp(before[name].astype(float), -fracs[name]) for name in before if name in fracs}
    err = {name: np.zeros_like(v) for name, v in cur.items()}
    var = {name: np.zeros_like(v) for name, v in cur.items()}
    pre_relu: dict[str, np.ndarray] = {}
    for ins, written in zip(prog.instructions, trace):
        if isinstance(ins, Contract):
            a, ea = cur[ins.a.buffer].reshape(ins.a.view), err[ins.a.buffer].reshape(ins.a.view)
            b, eb = cur[ins.b.buffer].reshape(ins.b.view), err[ins.b.buffer].reshape(ins.b.view)
            va, vb = var[ins.a.buffer].reshape(ins.a.view), var[ins.b.buffer].reshape(ins.b.view)
            if ins.mode == "forward":
                new = np.matmul(np.abs(b), ea) + np.matmul(eb, np.abs(a)) + np.matmul(eb, ea)
                v = np.matmul(b**2, va) + np.matmul(vb, a**2)
            elif ins.mode == "input_error":
                new = np.matmul(np.abs(b).T, ea) + np.matmul(eb.T, np.abs(a)) + np.matmul(eb.T, ea)
                v = np.matmul((b**2).T, va) + np.matmul(vb.T, a**2)
            else:
                new = _sum_outer(np.abs(a), eb) + _sum_outer(ea, np.abs(b)) + _sum_outer(ea, eb)
                v = _sum_outer(a**2, vb) + _sum_outer(va, b**2)
            shape, out = prog.buffer(ins.out.buffer).shape, ins.out.buffer
            err[out] = new.reshape(shape) + lsb[out] / 2
            var[out] = v.reshape(shape) + lsb[out] ** 2 / 12
        elif isinstance(ins, BiasAdd):
            rounded = fracs[ins.bias] > fracs[ins.y]
            err[ins.y] = err[ins.y] + (lsb[ins.y] / 2 if rounded else 0.0)
            var[ins.y] = var[ins.y] + (lsb[ins.y] ** 2 / 12 if rounded else 0.0)
        elif isinstance(ins, Relu):
            pre_relu[ins.x] = cur[ins.x]
        elif isinstance(ins, ReluGrad):
            z, dz, e, de = pre_relu[ins.activation], err[ins.activation], cur[ins.error], err[ins.error]
            sure = np.abs(z) > dz
            err[ins.error] = np.where(sure, np.where(z > 0, de, 0.0), np.abs(e) + de)
            var[ins.error] = np.where(sure, np.where(z > 0, var[ins.error], 0.0), (np.abs(e) + de) ** 2)
        elif isinstance(ins, BiasGrad):
            err[ins.grad] = err[ins.error].sum(axis=0) + lsb[ins.grad] / 2
            var[ins.grad] = var[ins.error].sum(axis=0) + lsb[ins.grad] ** 2 / 12
        elif isinstance(ins, SoftmaxXentGrad):
            c = ins.num_classes
            new, v = np.zeros(prog.buffer(ins.error).shape), np.zeros(prog.buffer(ins.error).shape)
            own = softmax_xent_grad_error_bound(c, prog.buffer(ins.error).fmt)
            new[:, :c] = err[ins.logits][:, :c].max(axis=1, keepdims=True) / 2 + own
            v[:, :c] = var[ins.logits][:, :c].max(axis=1, keepdims=True) / 4 + own**2 / 3
            err[ins.error], var[ins.error] = new, v
        else:
            continue  # updates are checked against the float step directly; scale control moves no value
        for name, codes in written.items():
            cur[name] = np.ldexp(codes.astype(float), -fracs[name])
    return cur, err, var


def float_step(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> torch.Tensor:
    logits = model(torch.from_numpy(x))
    F.cross_entropy(logits, torch.from_numpy(y), reduction="sum").backward()
    return logits.detach()


@pytest.mark.parametrize(("order", "b", "core"), [("rtl", 4, "fx<8,1>"), ("ltr", 4, "fx<8,1>"), ("rtl", 1, "fx<4,1>")])
def test_one_step_is_within_the_lsb_bound_of_the_float_step(order: str, b: int, core: str) -> None:
    precision = PrecisionConfig(core=FixedFormat.parse(core), lr_shift=5)
    prog = compile_program(small_mlp(order), precision, b)
    interp = Interpreter(prog, small_mlp(order))
    x, y = batch(b)
    codes = interp.quantize_input(x)
    interp.calibrate(codes, y)
    fracs = {bf.name: interp.frac(bf.name) for bf in prog.buffers if bf.kind != "label"}
    before = interp.state_dict() | {prog.input: codes}
    reference = small_mlp(order).double()
    interp.to_model(reference)
    old = copy.deepcopy(reference)
    trace: list[dict[str, np.ndarray]] = []
    interp.step(codes, y, trace)
    assert all(int(v) == 0 for k, v in interp.state.items() if k.startswith("sat.")), "a value saturated"
    cur, err, var = propagate(interp, fracs, before, trace)

    def close(name: str, want: np.ndarray, keep: slice = slice(None)) -> bool:
        dev = np.abs(cur[name][keep] - want)
        return bool(np.all(dev <= err[name][keep] + SLACK) and np.all(dev <= 6 * np.sqrt(var[name][keep]) + SLACK))

    logits = float_step(reference, np.ldexp(codes.astype(float), -fracs[prog.input]), y)
    assert close(prog.logits, logits.numpy(), np.s_[:, :10])
    lr = 2.0**-precision.lr_shift
    for li, (layer, old_layer) in enumerate(zip(reference.layers, old.layers)):
        for k, (core, old_core) in enumerate(zip(layer.cores, old_layer.cores)):
            grad = core_matrix(core.grad, order).numpy()  # type: ignore[arg-type]
            name = f"l{li}.dcore{k}"
            assert np.abs(grad).max() > 8 * lsb_of(fracs, name)  # the gradient is resolved, not noise
            assert close(name, grad), name
            fmt = prog.buffer(f"l{li}.core{k}").fmt
            want = np.clip(core_matrix(old_core.detach(), order).numpy() - lr * grad, fmt.min, fmt.max)  # type: ignore[arg-type]
            got = interp.value(f"l{li}.core{k}")
            assert np.all(np.abs(got - want) <= lr * err[name] + fmt.lsb + 2.0 ** -(fmt.frac + 32) + SLACK)
        name = f"l{li}.dbias"
        assert close(name, layer.bias.grad.numpy()), name


def lsb_of(fracs: dict[str, int], name: str) -> float:
    return 2.0 ** -fracs[name]
