"""The compiled training program: structure against the contraction plans, bit-exact determinism,
state round trips, and training the digits in fixed point."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ttedge.errors import CheckpointError, ConfigError
from ttedge.fixed import (
    Contract,
    Interpreter,
    PrecisionConfig,
    ScaleRule,
    SgdUpdate,
    compile_program,
)
from ttedge.models import MLP
from ttedge.tt import TTLinear


def small_mlp(order: str = "rtl", seed: int = 0) -> MLP:
    gen = torch.Generator().manual_seed(seed)
    return MLP(
        [
            TTLinear([4, 4, 4], [2, 2, 4], 3, order=order, generator=gen),  # type: ignore[arg-type]
            TTLinear([2, 2, 4], [2, 5, 1], 3, order=order, generator=gen),  # type: ignore[arg-type]
        ],
        10,
    )


def batch(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, 64)), rng.integers(0, 10, n)


@pytest.mark.parametrize("order", ["rtl", "ltr"])
def test_buffers_and_macs_follow_the_plans(order: str) -> None:
    model, b = small_mlp(order), 5
    prog = compile_program(model, PrecisionConfig(), b)
    contracts = [i for i in prog.instructions if isinstance(i, Contract)]
    for li, layer in enumerate(model.layers):
        plan = layer.plan(b)
        assert plan.order == order and prog.orders[li] == order
        fwd = [c for c in contracts if c.mode == "forward" and c.b.buffer.startswith(f"l{li}.")]
        assert sum(c.macs for c in fwd) == plan.macs
        assert [(c.rows, c.contract, c.out_len, c.cols) for c in fwd] == [
            (s.rows, s.contract, s.out, s.cols) for s in plan.steps
        ]
        for k, core in enumerate(layer.cores):
            buf = prog.buffer(f"l{li}.core{k}")
            assert buf.kind == "core" and buf.numel == core.numel() and buf.bits == core.numel() * 8
            grad = prog.buffer(f"l{li}.dcore{k}")
            assert grad.shape == buf.shape and grad.kind == "gradient"  # direct core gradient, no dense dW
        for i, step in enumerate(plan.steps):
            core = f"l{li}.core{step.core}"
            grads = [c for c in contracts if c.mode == "core_grad" and c.out.buffer == f"l{li}.dcore{step.core}"]
            errors = [c for c in contracts if c.mode == "input_error" and c.b.buffer == core]
            assert [c.macs for c in grads] == [step.macs]
            # Backward costs 2x the forward step, except the network input's error, never computed.
            assert [c.macs for c in errors] == ([] if li == 0 and i == 0 else [step.macs])
            # Kept for backward: exactly the state entering each step (the plan's in_elements).
            assert grads[0].b.view == (step.rows, step.contract, step.cols)
    kept = [bf for bf in prog.buffers if bf.kind == "activation"]
    assert all(bf.dynamic for bf in kept)
    assert prog.macs == sum(c.macs for c in contracts)
    assert prog.bits_by_kind()["total"] == sum(bf.bits for bf in prog.buffers)
    updates = [i for i in prog.instructions if isinstance(i, SgdUpdate)]
    assert {u.param for u in updates} == {bf.name for bf in prog.buffers if bf.kind in ("core", "bias")}


def test_accumulator_too_narrow_is_refused() -> None:
    with pytest.raises(ConfigError, match="overflow a 24-bit accumulator; widen it"):
        compile_program(small_mlp(), PrecisionConfig(acc_width=24), 4)


def run(seed: int, steps: int, rounding: str = "nearest", state: dict | None = None, start: int = 0) -> Interpreter:
    prog = compile_program(small_mlp(), PrecisionConfig(seed=seed, rounding=rounding, lr_shift=5), 4)  # type: ignore[arg-type]
    interp = Interpreter(prog, small_mlp())
    if state is not None:
        interp.load_state_dict(state)
    else:
        x, y = batch(4, 99)
        interp.calibrate(interp.quantize_input(x), y)
    for s in range(start, start + steps):
        x, y = batch(4, s)
        interp.step(interp.quantize_input(x), y)
    return interp


def same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("rounding", ["nearest", "stochastic"])
def test_same_seed_same_bits_other_seed_other_bits(rounding: str) -> None:
    a, b, c = run(1, 5, rounding).state_dict(), run(1, 5, rounding).state_dict(), run(2, 5, rounding).state_dict()
    assert same(a, b)
    assert not same(a, c)
    cores = [k for k in a if ".core" in k and not k.startswith(("sat.", "scale."))]
    assert any(not np.array_equal(a[k], c[k]) for k in cores)  # the seed reaches the weights


def test_state_dict_round_trip_continues_bit_exactly() -> None:
    whole = run(3, 6, "stochastic")
    half = run(3, 3, "stochastic")
    saved = {k: v.copy() for k, v in half.state_dict().items()}
    resumed = run(3, 3, "stochastic", state=saved, start=3)
    assert int(resumed.state["step"]) == 6
    assert same(whole.state_dict(), resumed.state_dict())
    with pytest.raises(CheckpointError, match="does not belong to this program"):
        resumed.load_state_dict({k: v for k, v in saved.items() if k != "step"})


def test_momentum_program_trains_deterministically() -> None:
    precision = PrecisionConfig(momentum_shift=3, lr_shift=7)
    prog = compile_program(small_mlp(), precision, 4)
    assert prog.bits_by_kind()["optimizer"] == sum(c.numel() * 32 for c in small_mlp().parameters())
    states = []
    for _ in range(2):
        interp = Interpreter(prog, small_mlp())
        for s in range(3):
            x, y = batch(4, s)
            interp.step(interp.quantize_input(x), y)
        states.append(interp.state_dict())
    assert same(*states)
    assert any(np.any(states[0][k]) for k in states[0] if k.endswith(".v"))


def test_scale_rule_hysteresis() -> None:
    rule = ScaleRule()  # 16 bits: MAX = 32767, HI = 29490, LO = 9830
    assert rule.update(16, 32767, 10, 0, 5) == (9, 0, 0)  # at the rail: double the range now
    assert rule.update(16, 40000, 10, 0, 0) == (9, 0, 0)  # -2**15 and beyond count as the rail
    assert rule.update(16, 29491, 10, 0, 3) == (10, 1, 0)  # overflow risk once: wait
    assert rule.update(16, 29491, 10, 1, 0) == (9, 0, 0)  # twice in a row: double the range
    assert rule.update(16, 29490, 10, 1, 0) == (10, 0, 0)  # in band: both counters reset
    assert rule.update(16, 9829, 10, 0, 6) == (10, 0, 7)  # small, not yet for long enough
    assert rule.update(16, 9829, 10, 0, 7) == (11, 0, 0)  # 14-bit max: one bit up, to [2**13, 2**14)
    assert rule.update(16, 100, 10, 0, 7) == (17, 0, 0)  # 7-bit max: 14 - 7 = 7 bits up at once
    assert rule.update(16, 0, 10, 0, 7) == (18, 0, 0)  # all zero: max_step bits
    assert rule.update(16, 0, 30, 0, 7) == (31, 0, 0)  # clamped to frac_max
    assert rule.update(16, 32767, 0, 0, 0) == (0, 0, 0)  # clamped to frac_min
