"""Compile a TT MLP into the fixed-point training :class:`~ttedge.fixed.program.Program`.

The schedule mirrors ``ttedge.tt.apply``: forward runs each layer's ContractionPlan steps (plain
"rtl"/"ltr" sweeps, one core per step), keeping the state entering each step; backward walks the
layers and steps in reverse and, per step, computes the core gradient from the kept state and the
arriving error, then the error of the step's input (skipped for the network input). All updates
follow the backward pass, then the scale controllers run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from ..errors import ConfigError
from ..models import MLP
from ..tt import Order, TTLinear, plan_contraction
from ..tt.order_search import search_order
from .format import FixedFormat, Rounding
from .program import (
    ADAM_DITHER_BITS,
    AdamUpdate,
    BiasAdd,
    BiasGrad,
    Buffer,
    Contract,
    Instruction,
    LambdaUpdate,
    Narrow,
    Operand,
    PriorGrad,
    Program,
    Relu,
    ReluGrad,
    ScaleControl,
    ScaleRule,
    SgdUpdate,
    SoftmaxXentGrad,
    bond_size,
)

__all__ = ["PrecisionConfig", "PriorConfig", "compile_program", "layer_orders"]


@dataclass(frozen=True)
class PrecisionConfig:
    """Number formats and optimizer constants of a fixed-point training program.

    Refuses (ConfigError) a master format that cannot hold every compute code, an unknown
    optimizer, and momentum with Adam.
    """

    core: FixedFormat = FixedFormat(8, 7)  # fx<8,1>: TT cores as the contractions read them; updated in place without a master
    bias: FixedFormat = FixedFormat(16, 10)  # fx<16,6>: biases, LSB 2**-10
    input: FixedFormat = FixedFormat(16, 7)  # fx<16,9>: input codes
    activation: FixedFormat = FixedFormat(16, 7)  # fx<16,9>: width and initial frac of forward states
    error: FixedFormat = FixedFormat(16, 7)  # fx<16,9>: width and initial frac of back-propagated errors
    gradient: FixedFormat = FixedFormat(16, 7)  # fx<16,9>: width and initial frac of core/bias gradients
    loss_grad: FixedFormat = FixedFormat(16, 14)  # fx<16,2>: softmax - onehot, in [-1, 1]
    acc_width: int = 32  # bits of forward and input-error accumulators
    grad_acc_width: int = 48  # bits of core-gradient accumulators (they sum over the batch)
    rounding: Rounding = "nearest"  # of contraction outputs ("stochastic" uses the RNG too)
    lr_shift: int = 6  # learning rate 2**-lr_shift per sample (the loss sums over the batch)
    momentum_shift: int | None = None  # None: plain SGD; else mu = 1 - 2**-momentum_shift
    velocity: FixedFormat = FixedFormat(32, 24)  # fx<32,8>: momentum buffers
    seed: int = 0  # of the stochastic-rounding generator
    scale: ScaleRule = field(default_factory=ScaleRule)
    master: FixedFormat | None = None  # None: no master copy; else cores stored (and updated) in this wider format
    optimizer: Literal["sgd", "adam"] = "sgd"  # sgd (momentum optional) or adam (AdamUpdate)
    adam_m: FixedFormat = FixedFormat(32, 20)  # fx<32,12>: Adam first moments, LSB 2**-20
    adam_v: FixedFormat = FixedFormat(32, 20, signed=False)  # ufx<32,12>: Adam second moments, LSB 2**-20
    beta1_shift: int = 3  # beta1 = 1 - 2**-3 = 0.875
    beta2_shift: int = 7  # beta2 = 1 - 2**-7 = 0.9921875
    eps_shift: int = 10  # eps = 2**-10, added to sqrt(v)
    lam: FixedFormat = FixedFormat(32, 24, signed=False)  # ufx<32,8>: rank variances lambda (with a PriorConfig)
    prec: FixedFormat = FixedFormat(24, 10, signed=False)  # ufx<24,14>: their inverses 1 / lambda

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adam"):
            raise ConfigError(f"unknown fixed-point optimizer {self.optimizer!r}; use sgd or adam.")
        if self.optimizer == "adam" and self.momentum_shift is not None:
            raise ConfigError("adam keeps its own first moment, so momentum_shift must be unset (0) with adam.")
        m = self.master
        if m is not None and (m.frac < self.core.frac or m.int_bits < self.core.int_bits):
            raise ConfigError(
                f"master copy {m} is narrower than the compute format {self.core}; "
                "give it at least as many integer and fractional bits."
            )
        if self.optimizer == "adam":
            if self.adam_v.signed:
                raise ConfigError(f"Adam second moments are never negative, so their format must be unsigned (ufx), got {self.adam_v}.")
            if self.adam_v.width + self.adam_v.frac > 53:
                raise ConfigError(
                    f"Adam second moments {self.adam_v} need width + fractional bits <= 53 for the exact square "
                    "root; use fewer bits."
                )
            if not 0 <= self.eps_shift <= self.adam_v.frac:
                raise ConfigError(f"eps_shift must lie in 0..{self.adam_v.frac} (eps a code of {self.adam_v}), got {self.eps_shift}.")


@dataclass(frozen=True)
class PriorConfig:
    """The rank prior of a fixed-point program (METHOD.md section 2, gamma hyperprior only).

    The penalty's gradient enters each core gradient scaled by c = ``weight`` * B, where ``weight``
    is the float run's weight / N_train (the summed loss of one step holds B samples); lambda takes a
    damped EM step every training step, damping 2**-``damping_shift``.
    """

    alpha: float = 1.0  # shape of the inverse-gamma hyperprior
    beta: float = 0.1  # its scale; larger beta -> lower ranks
    weight: float = 1e-5  # penalty weight per sample (the float config's weight / N_train)
    damping_shift: int = 1  # EM damping s = 2**-damping_shift
    init_lambda: float = 1.0  # every lambda's starting value

    def __post_init__(self) -> None:
        for key in ("alpha", "beta", "weight", "init_lambda"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"the fixed-point rank prior's {key} must be a positive number, got {value!r}.")
        if not 0 <= self.damping_shift <= 16:
            raise ConfigError(f"damping_shift must lie in 0..16 (damping 2**-k), got {self.damping_shift!r}.")


COEF_BITS = 16  # hyperparameter constants (the penalty's c) are 16-bit codes


def _coef_code(value: float) -> tuple[int, int]:
    """(code, frac) of a positive constant as a 16-bit unsigned code with its top bit set."""
    frac = COEF_BITS - 1 - math.floor(math.log2(value))
    code = round(value * 2.0**frac)
    if code >= 1 << COEF_BITS:  # rounding reached the next power of two
        frac -= 1
        code = round(value * 2.0**frac)
    if not 0 <= frac <= 62:
        raise ConfigError(f"the rank prior's weight {value!r} is outside what a 16-bit constant can hold; use a weight nearer 1e-5.")
    return code, frac


def _check_acc(width_a: int, width_b: int, length: int, acc_width: int, what: str) -> None:
    bound = (1 << (width_a - 1)) * (1 << (width_b - 1)) * length
    if bound >= 1 << (acc_width - 1):
        raise ConfigError(
            f"{what} sums {length} products of {width_a}- and {width_b}-bit codes, which can reach "
            f"2**{bound.bit_length() - 1} or more and overflow a {acc_width}-bit accumulator; widen it."
        )


def layer_orders(model: MLP, batch: int, objective: Literal["macs", "peak"] | None = None) -> list[Order]:
    """The sweep each layer's program runs: the layer's own "rtl"/"ltr" setting (its float-speed
    choice under "auto"), or with ``objective`` the best sweep of ``ttedge.tt.search_order``."""
    out: list[Order] = []
    for li, layer in enumerate(model.layers):
        if objective is not None:
            search = search_order(layer.in_modes, layer.out_modes, layer.ranks, batch, objective, input_error=li > 0)
            out.append(search.best_sweep.sweep)  # type: ignore[arg-type]
        else:
            out.append(layer.order_setting if layer.order_setting in ("rtl", "ltr") else layer.order)  # type: ignore[arg-type]
    return out


def compile_program(model: MLP, precision: PrecisionConfig, batch: int, prior: PriorConfig | None = None,
                    order_objective: Literal["macs", "peak"] | None = None) -> Program:
    """The training step of ``model`` (an MLP of TTLinear layers) for ``batch`` samples, with the
    rank prior's gradient and EM update when ``prior`` is given; each layer sweeps in the order of
    :func:`layer_orders` (``order_objective`` selects the searched order)."""
    layers = list(model.layers)
    if not layers or not all(isinstance(l, TTLinear) for l in layers):
        raise ConfigError("compile_program needs an MLP of TTLinear layers; dense layers have no TT program.")
    if batch < 1:
        raise ConfigError(f"batch must be at least 1, got {batch}.")
    p = precision
    buffers: list[Buffer] = []
    fwd: list[Instruction] = []
    bwd: list[Instruction] = []
    upd: list[Instruction] = []
    dynamic: list[str] = []
    masters: dict[str, str] = {}  # compute copy -> master

    def buffers_by_name(name: str) -> Buffer:
        return next(b for b in buffers if b.name == name)

    def buf(name: str, shape: tuple[int, ...], fmt: FixedFormat, kind: str, dyn: bool = False) -> str:
        buffers.append(Buffer(name, shape, fmt, kind, dyn))  # type: ignore[arg-type]
        if dyn:
            dynamic.append(name)
        return name

    def sgd(param: str, grad: str, shape: tuple[int, ...]) -> None:
        param = masters.get(param, param)  # a core with a master copy is updated in the master
        if p.optimizer == "adam":
            fp = buffers_by_name(param).fmt.frac
            e = p.adam_v.frac - p.adam_m.frac - p.lr_shift + fp + ADAM_DITHER_BITS
            if (p.adam_m.width - 1) + max(e, 0) > 62:
                raise ConfigError(
                    f"the Adam step into {param} shifts {p.adam_m.width}-bit moments left by {e} bits and could "
                    "overflow 64 bits; raise lr_shift or use fewer fractional bits in adam_m's place."
                )
            m = buf(f"{param}.adam_m", shape, p.adam_m, "optimizer")
            v2 = buf(f"{param}.adam_v", shape, p.adam_v, "optimizer")
            upd.append(AdamUpdate(param, grad, m, v2, p.lr_shift, p.beta1_shift, p.beta2_shift, p.eps_shift))
            return
        v = None
        if p.momentum_shift is not None:
            v = buf(f"{param}.v", shape, p.velocity, "optimizer")
        upd.append(SgdUpdate(param, grad, p.lr_shift, v, p.momentum_shift or 0))

    x = buf("x", (batch, layers[0].in_features), p.input, "input")
    labels = buf("labels", (batch,), FixedFormat(32, 0), "label")
    cores, orders, shapes, biases = [], [], [], []
    layer_inputs, plans = [x], []
    sweeps = layer_orders(model, batch, order_objective)
    for li, layer in enumerate(layers):
        order = sweeps[li]
        plan = plan_contraction(layer.in_modes, layer.out_modes, layer.ranks, batch, order)
        plans.append(plan)
        names = []
        for k, c in enumerate(layer.cores):
            step = next(s for s in plan.steps if s.core == k)
            if p.master is None:
                names.append(buf(f"l{li}.core{k}", (step.out, step.contract), p.core, "core"))
            else:
                name = buf(f"l{li}.core{k}", (step.out, step.contract), p.core, "compute")
                masters[name] = buf(f"{name}.master", (step.out, step.contract), p.master, "core")
                fwd.append(Narrow(masters[name], name))
                names.append(name)
        cores.append(tuple(names))
        orders.append(plan.order)
        shapes.append(tuple(tuple(int(v) for v in c.shape) for c in layer.cores))
        state = layer_inputs[-1]
        for i, step in enumerate(plan.steps):
            last = i == len(plan.steps) - 1
            name = f"l{li}.y" if last else f"l{li}.s{i + 1}"
            shape = (batch, layer.out_features) if last else (step.rows, step.out, step.cols)
            out = buf(name, shape, p.activation, "activation", dyn=True)
            _check_acc(p.activation.width, p.core.width, step.contract, p.acc_width, f"layer {li} step {i}")
            fwd.append(Contract(
                "forward", Operand(state, (step.rows, step.contract, step.cols)),
                Operand(names[step.core], (step.out, step.contract)), Operand(out, (step.rows, step.out, step.cols)),
                step.rows, step.contract, step.out, step.cols, p.acc_width, p.rounding,
            ))
            state = out
        bias = None
        if layer.bias is not None:
            bias = buf(f"l{li}.bias", (layer.out_features,), p.bias, "bias")
            fwd.append(BiasAdd(state, bias))
        biases.append(bias)
        if li < len(layers) - 1:
            fwd.append(Relu(state))
        layer_inputs.append(state)

    priors: list[tuple[tuple[str, str], ...]] = []
    if prior is not None:
        if p.lam.signed or p.prec.signed:
            raise ConfigError(f"rank variances {p.lam} and their inverses {p.prec} are positive, so use unsigned (ufx) formats.")
        for li, layer in enumerate(layers):
            priors.append(tuple(
                (buf(f"l{li}.lam{k}", (r,), p.lam, "lambda"), buf(f"l{li}.prec{k}", (r,), p.prec, "lambda"))
                for k, r in enumerate(layer.ranks)
            ))
        coef, coef_frac = _coef_code(prior.weight * batch)

    def prior_grad(li: int, k: int, grad: str) -> None:
        """The penalty's gradient into core k's gradient of layer li (nothing without a prior)."""
        if prior is None or not priors[li]:
            return  # no prior, or a one-core layer without inner bonds
        stored = masters.get(cores[li][k], cores[li][k])
        width_g, width_p = buffers_by_name(stored).fmt.width, p.prec.width
        if COEF_BITS + (width_g - 1) + (width_p + 1) > 62:
            raise ConfigError(
                f"the rank prior's term multiplies a 16-bit constant, {width_g}-bit core codes and {width_p + 1}-bit "
                "precision sums, which can pass 62 bits; use a narrower precision format (fixed.prec)."
            )
        bonds = priors[li]
        bwd.append(PriorGrad(stored, grad, shapes[li][k], orders[li],  # type: ignore[arg-type]
                             bonds[k - 1][1] if k > 0 else None, bonds[k][1] if k < len(bonds) else None,
                             coef, coef_frac))

    logits = layer_inputs[-1]
    err = buf(f"l{len(layers) - 1}.ey", (batch, layers[-1].out_features), p.loss_grad, "error")
    loss = [SoftmaxXentGrad(logits, labels, err, model.num_classes)]
    for li in reversed(range(len(layers))):
        layer, plan = layers[li], plans[li]
        if li < len(layers) - 1:
            bwd.append(ReluGrad(err, layer_inputs[li + 1]))
        if biases[li] is not None:
            grad = buf(f"l{li}.dbias", (layer.out_features,), p.gradient, "gradient", dyn=True)
            bwd.append(BiasGrad(err, grad))
            sgd(biases[li], grad, (layer.out_features,))
        for i in reversed(range(len(plan.steps))):
            step = plan.steps[i]
            kept = layer_inputs[li] if i == 0 else f"l{li}.s{i}"
            e_view = Operand(err, (step.rows, step.out, step.cols))
            s_view = Operand(kept, (step.rows, step.contract, step.cols))
            core = cores[li][step.core]
            grad = buf(f"l{li}.dcore{step.core}", (step.out, step.contract), p.gradient, "gradient", dyn=True)
            widths = {b.name: b.fmt.width for b in buffers}
            e_width, s_width = widths[err], widths[kept]
            _check_acc(e_width, s_width, step.rows * step.cols, p.grad_acc_width, f"layer {li} core {step.core} gradient")
            bwd.append(Contract(
                "core_grad", e_view, s_view, Operand(grad, (step.out, step.contract)),
                step.rows, step.contract, step.out, step.cols, p.grad_acc_width, p.rounding, "backward",
            ))
            prior_grad(li, step.core, grad)
            sgd(core, grad, (step.out, step.contract))
            if i == 0 and li == 0:
                continue  # the network input needs no error
            name = f"l{li - 1}.ey" if i == 0 else f"l{li}.e{i}"
            shape = (batch, layer.in_features) if i == 0 else (step.rows, step.contract, step.cols)
            new = buf(name, shape, p.error, "error", dyn=True)
            _check_acc(e_width, p.core.width, step.out, p.acc_width, f"layer {li} step {i} input error")
            bwd.append(Contract(
                "input_error", e_view, Operand(core, (step.out, step.contract)),
                Operand(new, (step.rows, step.contract, step.cols)),
                step.rows, step.contract, step.out, step.cols, p.acc_width, p.rounding, "backward",
            ))
            err = new
    if prior is not None:
        for li, bonds in enumerate(priors):
            for k, (lam, prec) in enumerate(bonds):
                left, right = (masters.get(c, c) for c in cores[li][k : k + 2])
                fg, width_g = buffers_by_name(left).fmt.frac, buffers_by_name(left).fmt.width
                ls, rs = shapes[li][k], shapes[li][k + 1]
                size = bond_size(ls, rs)
                den_frac = 8
                two_beta = round(2 * prior.beta * 2.0 ** (2 * fg))
                shift = p.lam.frac + den_frac - 2 * fg
                largest = size * (1 << (2 * (width_g - 1))) + two_beta
                if largest.bit_length() + max(shift, 0) > 62:
                    raise ConfigError(
                        f"layer {li} bond {k}: the EM update's sum of squares shifted by {shift} bits can pass 62 bits; "
                        "use fewer fractional bits in fixed.lam."
                    )
                init = round(prior.init_lambda * 2.0**p.lam.frac)
                if not 1 <= init <= p.lam.max_int:
                    raise ConfigError(f"init_lambda {prior.init_lambda} does not fit {p.lam}; choose a value inside its range.")
                upd.append(LambdaUpdate(left, right, ls, rs, orders[li], orders[li], lam, prec,  # type: ignore[arg-type]
                                        two_beta, round((size + 2 + 2 * prior.alpha) * 2**den_frac), den_frac,
                                        prior.damping_shift, init))
    scale = [ScaleControl(name, p.scale) for name in dynamic]
    return Program(
        tuple(buffers), tuple(fwd + loss + bwd + upd + scale), batch, model.num_classes, x, labels, logits,
        p.seed, tuple(cores), tuple(orders), tuple(shapes), tuple(biases), tuple(masters.items()), tuple(priors),
    )
