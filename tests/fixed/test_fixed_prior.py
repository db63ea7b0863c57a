"""The rank prior inside the fixed-point program: PriorGrad, LambdaUpdate and host-side pruning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ttedge.bayes import GammaPrior, RankPrior
from ttedge.errors import ConfigError
from ttedge.fixed import (
    FixedFormat,
    Interpreter,
    LambdaUpdate,
    PrecisionConfig,
    PriorConfig,
    PriorGrad,
    compile_program,
)
from ttedge.fixed.prune import bond_lambdas, prune_program
from ttedge.memory import fixed_step_bits
from ttedge.models import MLP
from ttedge.tt import TTLinear
from ttedge.tt.apply import core_from_matrix, core_matrix

BATCH = 8


def small_mlp(order: str, seed: int = 0) -> MLP:
    gen = torch.Generator().manual_seed(seed)
    return MLP([
        TTLinear([4, 4, 4], [4, 2, 4], [4, 3], order=order, generator=gen),  # type: ignore[arg-type]
        TTLinear([4, 8], [2, 8], [4], order=order, generator=gen),  # type: ignore[arg-type]
    ], 10)


def batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(BATCH, 64)), rng.integers(0, 10, BATCH)


PRECISIONS = {
    "sgd": PrecisionConfig(lr_shift=5),
    "master": PrecisionConfig(core=FixedFormat(4, 3), master=FixedFormat(12, 11), momentum_shift=3, lr_shift=8),
}


def run(order: str, precision: PrecisionConfig, prior: PriorConfig, steps: int) -> tuple[Interpreter, MLP, dict, list]:
    """``steps`` training steps; returns the interpreter, its model, the state before the last step
    and the last step's trace."""
    model = small_mlp(order)
    interp = Interpreter(compile_program(model, precision, BATCH, prior), model)
    x, y = batch()
    codes = interp.quantize_input(x)
    for _ in range(steps - 1):
        interp.step(codes, y)
    before = interp.state_dict()
    trace: list = []
    interp.step(codes, y, trace)
    return interp, model, before, trace


def to4d(codes: np.ndarray, frac: int, shape: tuple[int, ...], order: str) -> torch.Tensor:
    """Codes in a core's matrix layout as float64 values in core layout (r0, m, n, r1)."""
    mat = torch.from_numpy(np.ldexp(codes.astype(np.float64), -frac))
    return core_from_matrix(mat, torch.Size(shape), order)  # type: ignore[arg-type]


@pytest.mark.parametrize("order", ["rtl", "ltr"])
@pytest.mark.parametrize("kind", sorted(PRECISIONS))
def test_prior_gradient_is_the_float_penalty_gradient_within_its_lsb_bound(order: str, kind: str) -> None:
    """The change PriorGrad makes to a core gradient equals d/dG of weight * B * sum M / (2 lambda)
    (``RankPrior.penalty`` at the step's lambdas and cores) within half an LSB of the gradient plus
    the quantization of the constant (16 bits) and of the precisions (their LSB)."""
    prior = PriorConfig(beta=0.5, weight=2e-3)
    interp, model, before, trace = run(order, PRECISIONS[kind], prior, steps=3)
    program = interp.program
    fmt_prec = program.buffer(program.priors[0][0][1]).fmt
    checked = 0
    for li, layer in enumerate(model.layers):
        rank_prior = RankPrior(layer, GammaPrior(alpha=prior.alpha, beta=prior.beta))
        for k, (lam, _) in enumerate(program.priors[li]):
            getattr(rank_prior, f"lam_{k}").copy_(torch.from_numpy(np.ldexp(before[lam].astype(np.float64), -program.buffer(lam).fmt.frac)))
        stored = [program.stored_name(c) for c in program.cores[li]]
        cores = [to4d(before[s], program.buffer(s).fmt.frac, shape, program.orders[li]).requires_grad_(True)
                 for s, shape in zip(stored, program.core_shapes[li])]
        with torch.no_grad():
            for param, value in zip(layer.cores, cores):
                param.copy_(value)
        layer.zero_grad()
        (prior.weight * BATCH * rank_prior.penalty(layer)).backward()
        for i, ins in enumerate(program.instructions):
            if not isinstance(ins, PriorGrad) or ins.core not in stored:
                continue
            k = stored.index(ins.core)
            fg = int(before[f"scale.{ins.grad}.frac"])
            delta = to4d(trace[i][ins.grad] - trace[i - 1][ins.grad], fg, ins.shape, ins.order)  # Contract, then PriorGrad
            want = layer.cores[k].grad
            value = cores[k].detach().abs()
            lsb_p, c_err = 2.0**-fmt_prec.frac, prior.weight * BATCH * 2.0**-15
            precs = sum(torch.from_numpy(np.ldexp(before[b].astype(np.float64), -fmt_prec.frac)).reshape(shape)
                        for b, shape in ((ins.left, (-1, 1, 1, 1)), (ins.right, (1, 1, 1, -1))) if b is not None)
            bound = 2.0 ** -(fg + 1) + value * (prior.weight * BATCH * 2 * lsb_p + c_err * precs) + 1e-12
            assert torch.all((delta - want).abs() <= bound), (ins.core, float((delta - want).abs().max()))
            assert float(want.abs().max()) > 2.0**-fg  # the term is visible at the gradient's LSB
            checked += 1
    assert checked == sum(isinstance(i, PriorGrad) for i in program.instructions) == 5


@pytest.mark.parametrize("order", ["rtl", "ltr"])
def test_lambda_update_is_the_damped_float_em_step_within_its_lsb_bound(order: str) -> None:
    prior = PriorConfig(alpha=1.0, beta=0.5, weight=1e-3, damping_shift=1)
    interp, model, before, _ = run(order, PRECISIONS["sgd"], prior, steps=2)
    program = interp.program
    gamma = GammaPrior(alpha=prior.alpha, beta=prior.beta)
    ups = [i for i in program.instructions if isinstance(i, LambdaUpdate)]
    assert len(ups) == 3
    for ins in ups:
        fl, fg = program.buffer(ins.lam).fmt.frac, program.buffer(ins.left).fmt.frac
        left = to4d(interp.state[ins.left], fg, ins.left_shape, ins.left_order)  # the cores after this step's update
        right = to4d(interp.state[ins.right], fg, ins.right_shape, ins.right_order)
        m = left.pow(2).sum(dim=(0, 1, 2)) + right.pow(2).sum(dim=(1, 2, 3))
        size = left[..., 0].numel() + right[0].numel()
        target = gamma.update(m, size).numpy()
        old = np.ldexp(before[ins.lam].astype(np.float64), -fl)
        want = old + 0.5 * (target - old)
        got = interp.value(ins.lam)
        den = size + 2 + 2 * prior.alpha
        # floor of the division, 2 beta at frac 2 fG, den at frac 8, then the halving's rounding
        bound = 0.5 * (2.0**-fl + 2.0 ** -(2 * fg + 1) / den + target * 2.0**-9 / den) + 2.0 ** -(fl + 1) + 1e-15
        assert np.all(np.abs(got - want) <= bound), np.abs(got - want).max()
        prec = interp.state[ins.prec]
        assert np.array_equal(prec, (1 << (program.buffer(ins.prec).fmt.frac + fl)) // interp.state[ins.lam])


def test_prior_off_changes_neither_gradients_nor_lambdas() -> None:
    model = small_mlp("rtl")
    interp = Interpreter(compile_program(model, PRECISIONS["sgd"], BATCH, PriorConfig(beta=0.5, weight=1e-2)), model)
    interp.state["prior.on"] = np.zeros((), np.int64)
    lambdas = {k: v.copy() for k, v in interp.state.items() if ".lam" in k or ".prec" in k}
    x, y = batch()
    trace: list = []
    interp.step(interp.quantize_input(x), y, trace)
    for i, ins in enumerate(interp.program.instructions):
        if isinstance(ins, PriorGrad):
            assert np.array_equal(trace[i][ins.grad], trace[i - 1][ins.grad])
    assert all(np.array_equal(interp.state[k], v) for k, v in lambdas.items())


@pytest.mark.parametrize("kind", sorted(PRECISIONS))
def test_pruning_keeps_the_codes_and_equals_the_masked_network(kind: str) -> None:
    """The pruned program's integer forward pass equals the unpruned one with the cut slices zeroed,
    bit for bit, and every kept code (cores, masters, momentum) is carried over unchanged."""
    precision, prior = PRECISIONS[kind], PriorConfig(beta=0.5, weight=5e-2)
    interp, model, _, _ = run("ltr", precision, prior, steps=40)
    result = prune_program(interp, model, precision, prior, factor=2.0)
    assert result.num_removed > 0 and all(r >= 1 for layer in result.ranks_after for r in layer)
    new = result.interpreter
    assert new.program.priors and [len(x) for x in bond_lambdas(new)] == [2, 1]
    program = interp.program
    masked = Interpreter(program, model)
    masked.load_state_dict(interp.state_dict())
    for li, bonds in enumerate(program.priors):
        gamma = GammaPrior(alpha=prior.alpha, beta=prior.beta)
        for k, (lam, _) in enumerate(bonds):
            ins = next(i for i in program.instructions if isinstance(i, LambdaUpdate) and i.lam == lam)
            size = ins.left_shape[0] * ins.left_shape[1] * ins.left_shape[2] + ins.right_shape[1] * ins.right_shape[2] * ins.right_shape[3]
            cut = interp.value(lam) < 2.0 * gamma.threshold(size)
            if cut.all():
                cut[np.argmax(interp.value(lam))] = False
            for name, axis in ((program.cores[li][k], 3), (program.cores[li][k + 1], 0)):
                stored = program.stored_name(name)
                shape = program.core_shapes[li][program.cores[li].index(name)]
                core = core_from_matrix(torch.from_numpy(masked.state[stored]), torch.Size(shape), program.orders[li]).clone()
                index = [slice(None)] * 4
                index[axis] = torch.from_numpy(np.flatnonzero(cut))  # type: ignore[call-overload]
                core[tuple(index)] = 0
                masked.state[stored] = core_matrix(core, program.orders[li]).numpy().copy()  # type: ignore[arg-type]
    x, _ = batch(1)
    codes = interp.quantize_input(x)
    assert np.array_equal(new.predict(codes), masked.predict(codes))
    for key in ("step", "l0.bias", "scale.l0.y.frac", "sat.l1.ey"):
        assert np.array_equal(new.state[key], interp.state[key])
    fixed_bits = fixed_step_bits(new.program)
    assert fixed_bits["cores"] < fixed_step_bits(program)["cores"]


def test_lambda_buffers_are_counted_and_bad_priors_refused() -> None:
    model = small_mlp("rtl")
    with_prior = compile_program(model, PRECISIONS["sgd"], BATCH, PriorConfig())
    plain = compile_program(model, PRECISIONS["sgd"], BATCH)
    lam_bits = sum(b.bits for b in with_prior.buffers if b.kind == "lambda")
    assert lam_bits == (4 + 3 + 4) * (32 + 24)
    assert fixed_step_bits(with_prior)["optimizer"] - fixed_step_bits(plain)["optimizer"] == lam_bits
    with pytest.raises(ConfigError, match="beta must be a positive number"):
        PriorConfig(beta=0.0)
    with pytest.raises(ConfigError, match="damping_shift must lie in 0..16"):
        PriorConfig(damping_shift=20)
    with pytest.raises(ConfigError, match="unsigned"):
        compile_program(model, PrecisionConfig(lam=FixedFormat(32, 24)), BATCH, PriorConfig())
