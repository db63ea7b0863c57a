"""The reference interpreter: executes a training :class:`Program` on int64 codes, bit-exactly.

This is the specification the accelerator is tested against, so it is written to be read: one
method per instruction type, each a few NumPy lines of exact integer arithmetic (``matmul_exact``,
shifts, ``requantize``). No floating point touches the training state; floats appear only in
``__init__`` (quantizing a float model's weights once), ``quantize_input`` and ``to_model``.

State (all int64 NumPy arrays, ``state_dict()``): every stored core (in its step's (out, contract)
matrix layout; the master copy where there is one, the compute copy being derived), bias and
optimizer buffer (momentum, Adam moments) by buffer name; ``scale.<buffer>.frac/over/under`` of every
dynamic buffer; ``sat.<buffer>``, the cumulative count of saturated codes written to a buffer;
``step``, the global step (the ``step`` word of the random generator).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import CheckpointError, ShapeError
from ..models import MLP
from ..tt.apply import core_from_matrix, core_matrix
from .format import FixedFormat, Rounding
from .ops import matmul_exact, quantize, requantize
from .program import (
    ADAM_DITHER_BITS,
    AdamUpdate,
    BiasAdd,
    BiasGrad,
    Contract,
    Instruction,
    LambdaUpdate,
    Narrow,
    PriorGrad,
    Program,
    Relu,
    ReluGrad,
    ScaleControl,
    SgdUpdate,
    SoftmaxXentGrad,
)
from .rng import random_bits
from .softmax import softmax_xent_grad

__all__ = ["Interpreter", "isqrt"]


def isqrt(n: np.ndarray) -> np.ndarray:
    """floor(sqrt(n)) of int64 codes 0 <= n < 2**53, exactly (what a bit-by-bit restoring square
    root computes): the float64 root, then integer corrections until s*s <= n < (s+1)**2."""
    n = np.asarray(n, np.int64)
    s = np.floor(np.sqrt(n.astype(np.float64))).astype(np.int64)
    for _ in range(2):  # float64 sqrt of n < 2**53 is off by at most one
        s = np.where(s * s > n, s - 1, s)
        s = np.where((s + 1) * (s + 1) <= n, s + 1, s)
    return s

_STATE_KINDS = ("core", "bias", "optimizer", "lambda")


class Interpreter:
    """Runs ``program``; the initial cores and biases are ``model``'s, rounded to nearest codes."""

    def __init__(self, program: Program, model: MLP) -> None:
        self.program = program
        self.buffers: dict[str, np.ndarray] = {}  # working buffers of the last step run
        self._info = {b.name: b for b in program.buffers}
        # "lr.decay" is a host-written register: extra right shifts of every learning rate (a schedule).
        self.state: dict[str, np.ndarray] = {"step": np.zeros((), np.int64), "lr.decay": np.zeros((), np.int64)}
        for b in program.buffers:
            if b.kind in _STATE_KINDS:
                self.state[b.name] = np.zeros(b.shape, np.int64)
            if b.dynamic:
                for key, value in (("frac", b.fmt.frac), ("over", 0), ("under", 0)):
                    self.state[f"scale.{b.name}.{key}"] = np.array(value, np.int64)
            if b.kind not in ("input", "label"):
                self.state[f"sat.{b.name}"] = np.zeros((), np.int64)
        if program.priors:  # host-written: 1 while the rank prior acts (PriorGrad, LambdaUpdate)
            self.state["prior.on"] = np.ones((), np.int64)
        for ins in program.instructions:
            if isinstance(ins, LambdaUpdate):
                fl, fp = self._info[ins.lam].fmt.frac, self._info[ins.prec].fmt.frac
                self.state[ins.lam] = np.full(self._info[ins.lam].shape, ins.init_lam, np.int64)
                self.state[ins.prec] = np.full(self._info[ins.prec].shape, (1 << (fp + fl)) // ins.init_lam, np.int64)
        layers = list(model.layers)
        for li, layer in enumerate(layers):
            order = program.orders[li]
            for name, core in zip(program.cores[li], layer.cores):
                mat = core_matrix(core.detach().double(), order).numpy()  # type: ignore[arg-type]
                stored = program.stored_name(name)
                self.state[stored] = quantize(mat, FixedFormat(self._info[stored].fmt.width, self._info[stored].fmt.frac))[0]
            bias = program.biases[li]
            if bias is not None:
                self.state[bias] = quantize(layer.bias.detach().double().numpy(), self._info[bias].fmt)[0]

    # ---- formats -----------------------------------------------------------------------------
    def frac(self, name: str) -> int:
        """Current fractional bits of a buffer (the state's for dynamic buffers)."""
        info = self._info[name]
        return int(self.state[f"scale.{name}.frac"]) if info.dynamic else info.fmt.frac

    def value(self, name: str) -> np.ndarray:
        """A buffer (working or state) as float64 real values, for inspection and tests."""
        codes = self.state[name] if name in self.state else self.buffers[name]
        return np.ldexp(codes.astype(np.float64), -self.frac(name))

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Float inputs (B, N) to codes of the program's input format (nearest)."""
        return quantize(np.asarray(x, np.float64), self._info[self.program.input].fmt)[0]

    # ---- running -------------------------------------------------------------------------------
    def step(self, x_codes: np.ndarray, labels: np.ndarray, trace: list[dict[str, np.ndarray]] | None = None) -> None:
        """One training step on a batch: (B, N) input codes and (B,) labels; advances ``step``.

        With ``trace`` a list, a copy of the codes each instruction wrote is appended per
        instruction (``{buffer: codes}``), the per-instruction record a hardware run is compared to.
        """
        self._load_batch(x_codes, labels)
        for i, ins in enumerate(self.program.instructions):
            self._execute(i, ins, self.buffers, record=True)
            if trace is not None:
                trace.append({name: self._get(name, self.buffers).copy() for name in ins.writes})
        self.state["step"] = self.state["step"] + 1

    def calibrate(self, x_codes: np.ndarray, labels: np.ndarray, rounds: int = 16) -> None:
        """Set each dynamic frac so the batch's max |code| lies in [2**(W-3), 2**(W-2)).

        Runs forward, loss and backward (no update, no step advance) up to ``rounds`` times,
        moving each frac by (W - 2) - bit_length(max |code|) (by max_step if all codes are zero).
        """
        body = [(i, ins) for i, ins in enumerate(self.program.instructions) if ins.phase in ("forward", "loss", "backward")]
        for _ in range(rounds):
            self._load_batch(x_codes, labels)
            for i, ins in body:
                self._execute(i, ins, self.buffers, record=False)
            changed = False
            for ins in self.program.phase("scale"):
                assert isinstance(ins, ScaleControl)
                width, rule = self._info[ins.buffer].fmt.width, ins.rule
                m = int(np.abs(self.buffers[ins.buffer]).max(initial=0))
                move = rule.max_step if m == 0 else (width - 2) - m.bit_length()
                key = f"scale.{ins.buffer}.frac"
                new = min(max(int(self.state[key]) + move, rule.frac_min), rule.frac_max)
                changed |= new != int(self.state[key])
                self.state[key] = np.array(new, np.int64)
            if not changed:
                return

    def predict(self, x_codes: np.ndarray) -> np.ndarray:
        """Class scores (N, num_classes) as logit codes, forward only, in batches of B (the last
        padded with zeros); the state is not changed."""
        x = np.asarray(x_codes, np.int64)
        batch, out = self.program.batch, []
        forward = [(i, ins) for i, ins in enumerate(self.program.instructions) if ins.phase == "forward"]
        for start in range(0, x.shape[0], batch):
            chunk = x[start : start + batch]
            buffers = {self.program.input: np.pad(chunk, ((0, batch - chunk.shape[0]), (0, 0)))}
            for i, ins in forward:
                self._execute(i, ins, buffers, record=False)
            out.append(buffers[self.program.logits][: chunk.shape[0], : self.program.num_classes])
        return np.concatenate(out)

    def _load_batch(self, x_codes: np.ndarray, labels: np.ndarray) -> None:
        x, y = np.asarray(x_codes), np.asarray(labels)
        want = self._info[self.program.input].shape
        if x.shape != want or y.shape != want[:1] or x.dtype.kind not in "iu":
            raise ShapeError(f"step needs integer input codes of shape {want} and {want[:1]} labels, got {x.shape} and {y.shape}.")
        self.buffers = {self.program.input: x.astype(np.int64), self.program.labels: y.astype(np.int64)}

    def _get(self, name: str, buffers: dict[str, np.ndarray]) -> np.ndarray:
        return self.state[name] if self._info[name].kind in _STATE_KINDS else buffers[name]

    def _round(self, i: int, codes: np.ndarray, from_frac: int, name: str, rounding: Rounding,
               buffers: dict[str, np.ndarray], record: bool) -> None:
        """Narrow exact ``codes`` into buffer ``name`` at its width and current frac."""
        info = self._info[name]
        fmt = FixedFormat(info.fmt.width, self.frac(name), rounding=rounding)
        words = self._words(i, codes.shape) if rounding == "stochastic" else None
        out, sat = requantize(codes, from_frac, fmt, words)
        if record:
            self.state[f"sat.{name}"] = self.state[f"sat.{name}"] + sat.total
        if info.kind in _STATE_KINDS:
            self.state[name] = out.reshape(info.shape)
        else:
            buffers[name] = out.reshape(info.shape)

    def _words(self, stream: int, shape: tuple[int, ...]) -> np.ndarray:
        size = int(np.prod(shape))
        return random_bits(self.program.seed, stream, int(self.state["step"]), np.arange(size).reshape(shape))

    # ---- instructions --------------------------------------------------------------------------
    def _execute(self, i: int, ins: Instruction, buffers: dict[str, np.ndarray], record: bool) -> None:
        if isinstance(ins, Contract):
            a = self._get(ins.a.buffer, buffers).reshape(ins.a.view)
            b = self._get(ins.b.buffer, buffers).reshape(ins.b.view)
            if ins.mode == "forward":  # (out, contract) @ (rows, contract, cols)
                acc = matmul_exact(b, a)
            elif ins.mode == "input_error":  # (contract, out) @ (rows, out, cols)
                acc = matmul_exact(b.T, a)
            else:  # (out, rows cols) @ (rows cols, contract)
                e = a.transpose(1, 0, 2).reshape(ins.out_len, ins.rows * ins.cols)
                s = b.transpose(0, 2, 1).reshape(ins.rows * ins.cols, ins.contract)
                acc = matmul_exact(e, s)
            from_frac = self.frac(ins.a.buffer) + self.frac(ins.b.buffer)
            self._round(i, acc, from_frac, ins.out.buffer, ins.rounding, buffers, record)
        elif isinstance(ins, BiasAdd):
            fy, fb = self.frac(ins.y), self.frac(ins.bias)
            f = max(fy, fb)
            total = (buffers[ins.y] << (f - fy)) + (self.state[ins.bias] << (f - fb))
            self._round(i, total, f, ins.y, "nearest", buffers, record)
        elif isinstance(ins, BiasGrad):
            self._round(i, buffers[ins.error].sum(axis=0), self.frac(ins.error), ins.grad, "nearest", buffers, record)
        elif isinstance(ins, Relu):
            buffers[ins.x] = np.maximum(buffers[ins.x], 0)
        elif isinstance(ins, ReluGrad):
            buffers[ins.error] = np.where(buffers[ins.activation] > 0, buffers[ins.error], 0)
        elif isinstance(ins, SoftmaxXentGrad):
            logits = buffers[ins.logits][:, : ins.num_classes]
            fmt_in = FixedFormat(self._info[ins.logits].fmt.width, self.frac(ins.logits))
            grad, sat = softmax_xent_grad(logits, buffers[ins.labels], fmt_in, self._info[ins.error].fmt)
            out = np.zeros(self._info[ins.error].shape, np.int64)
            out[:, : ins.num_classes] = grad
            buffers[ins.error] = out
            if record:
                self.state[f"sat.{ins.error}"] = self.state[f"sat.{ins.error}"] + sat.total
        elif isinstance(ins, Narrow):
            fmt = self._info[ins.compute].fmt
            self._round(i, self.state[ins.master], self.frac(ins.master), ins.compute, fmt.rounding, buffers, record)
        elif isinstance(ins, SgdUpdate):
            self._sgd(i, ins, buffers, record)
        elif isinstance(ins, AdamUpdate):
            self._adam(i, ins, buffers, record)
        elif isinstance(ins, PriorGrad):
            if int(self.state["prior.on"]):
                self._prior_grad(i, ins, buffers, record)
        elif isinstance(ins, LambdaUpdate):
            if int(self.state["prior.on"]):
                self._lambda_update(ins, record)
        elif isinstance(ins, ScaleControl):
            self._scale(ins, buffers)
        else:  # pragma: no cover - the Instruction union is closed
            raise TypeError(f"unknown instruction {ins!r}")

    def _sgd(self, i: int, ins: SgdUpdate, buffers: dict[str, np.ndarray], record: bool) -> None:
        d, fd = buffers[ins.grad], self.frac(ins.grad)
        if ins.velocity is not None:
            vfmt = self._info[ins.velocity].fmt
            g, _ = requantize(d, fd, vfmt)
            v = self.state[ins.velocity]
            self._round(i, v - (v >> ins.momentum_shift) + g, vfmt.frac, ins.velocity, "nearest", buffers, record)
            d, fd = self.state[ins.velocity], vfmt.frac
        lr_shift = ins.lr_shift + int(self.state["lr.decay"])
        fw, fd = self.frac(ins.param), fd + lr_shift  # d * 2**-lr_shift has fd + lr_shift frac bits
        if fd - fw > 32:  # keep 32 bits below the parameter's LSB (one random word's worth)
            d, fd = d >> (fd - fw - 32), fw + 32
        f = max(fw, fd)
        exact = (self.state[ins.param] << (f - fw)) - (d << (f - fd))
        self._round(i, exact, f, ins.param, "stochastic", buffers, record)

    def _adam(self, i: int, ins: AdamUpdate, buffers: dict[str, np.ndarray], record: bool) -> None:
        """The bit-level recipe of :class:`AdamUpdate`, line by line."""
        mfmt, vfmt = self._info[ins.m].fmt, self._info[ins.v].fmt
        fm, fv, fp = mfmt.frac, vfmt.frac, self.frac(ins.param)
        m_fmt, v_fmt = FixedFormat(mfmt.width, fm), FixedFormat(vfmt.width, fv, signed=False)
        big, sat_g = requantize(buffers[ins.grad], self.frac(ins.grad), m_fmt)  # G: g at m's frac, nearest
        m, v = self.state[ins.m], self.state[ins.v]
        step_m, _ = requantize(big - m, fm + ins.beta1_shift, FixedFormat(64, fm))  # rnd(G - M, b1); no overflow
        m, sat_m = requantize(m + step_m, fm, m_fmt)
        q, sat_q = requantize(big * big, 2 * fm, v_fmt)  # g**2 at v's frac
        step_v, _ = requantize(q - v, fv + ins.beta2_shift, FixedFormat(64, fv))
        v, sat_v = requantize(v + step_v, fv, v_fmt)
        denom = isqrt(v << fv) + (1 << (fv - ins.eps_shift))  # sqrt(v) + eps at frac fv, >= 1
        e = fv - fm - (ins.lr_shift + int(self.state["lr.decay"])) + fp + ADAM_DITHER_BITS
        u = (m << max(e, 0)) // (denom << max(-e, 0))  # floor division: lr m / (sqrt(v) + eps)
        if record:  # G and M saturations count on the first moment, g**2 and V on the second
            self.state[f"sat.{ins.m}"] = self.state[f"sat.{ins.m}"] + (sat_g + sat_m).total
            self.state[f"sat.{ins.v}"] = self.state[f"sat.{ins.v}"] + (sat_q + sat_v).total
        self.state[ins.m], self.state[ins.v] = m, v
        exact = (self.state[ins.param] << ADAM_DITHER_BITS) - u
        self._round(i, exact, fp + ADAM_DITHER_BITS, ins.param, "stochastic", buffers, record)

    def _core(self, name: str, shape: tuple[int, int, int, int], order: str) -> np.ndarray:
        """A stored core's codes in core layout (r0, m, n, r1)."""
        return core_from_matrix(torch.from_numpy(self.state[name]), torch.Size(shape), order).numpy()  # type: ignore[arg-type]

    def _prior_grad(self, i: int, ins: PriorGrad, buffers: dict[str, np.ndarray], record: bool) -> None:
        """The recipe of :class:`PriorGrad`."""
        r0, _, _, r1 = ins.shape
        left = self.state[ins.left].reshape(r0, 1, 1, 1) if ins.left else np.zeros((1, 1, 1, 1), np.int64)
        right = self.state[ins.right].reshape(1, 1, 1, r1) if ins.right else np.zeros((1, 1, 1, 1), np.int64)
        t4 = ins.coef * self._core(ins.core, ins.shape, ins.order) * (left + right)  # (r0, m, n, r1)
        t = core_matrix(torch.from_numpy(t4), ins.order).numpy()  # type: ignore[arg-type]
        fp = self._info[ins.left or ins.right].fmt.frac  # type: ignore[index]
        f, fg = ins.coef_frac + self._info[ins.core].fmt.frac + fp, self.frac(ins.grad)
        u, _ = requantize(t, f, FixedFormat(48, fg)) if f >= fg else requantize(t, 0, FixedFormat(48, fg - f))
        self._round(i, buffers[ins.grad] + u, fg, ins.grad, "nearest", buffers, record)

    def _lambda_update(self, ins: LambdaUpdate, record: bool) -> None:
        """The recipe of :class:`LambdaUpdate`."""
        left = self._core(ins.left, ins.left_shape, ins.left_order)
        right = self._core(ins.right, ins.right_shape, ins.right_order)
        m = (left * left).sum(axis=(0, 1, 2)) + (right * right).sum(axis=(1, 2, 3))  # (r,), frac 2 fG
        lam_fmt, prec_fmt = self._info[ins.lam].fmt, self._info[ins.prec].fmt
        s = lam_fmt.frac + ins.den_frac - 2 * self._info[ins.left].fmt.frac
        num = m + ins.two_beta
        target = (num << s) // ins.den if s >= 0 else num // (ins.den << -s)
        lam = self.state[ins.lam]
        k = ins.damping_shift
        step = target - lam if k == 0 else (target - lam + (1 << (k - 1))) >> k
        new = lam + step
        lam = np.clip(new, 1, lam_fmt.max_int)
        inverse = (1 << (prec_fmt.frac + lam_fmt.frac)) // lam
        prec = np.minimum(inverse, prec_fmt.max_int)
        if record:
            self.state[f"sat.{ins.lam}"] = self.state[f"sat.{ins.lam}"] + int((lam != new).sum())
            self.state[f"sat.{ins.prec}"] = self.state[f"sat.{ins.prec}"] + int((inverse != prec).sum())
        self.state[ins.lam], self.state[ins.prec] = lam, prec

    def _scale(self, ins: ScaleControl, buffers: dict[str, np.ndarray]) -> None:
        key = f"scale.{ins.buffer}."
        m = int(np.abs(buffers[ins.buffer]).max(initial=0))
        old = (int(self.state[key + k]) for k in ("frac", "over", "under"))
        new = ins.rule.update(self._info[ins.buffer].fmt.width, m, *old)
        for k, v in zip(("frac", "over", "under"), new):
            self.state[key + k] = np.array(v, np.int64)

    # ---- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of the exact integer state."""
        return {k: v.copy() for k, v in self.state.items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Replace the state by ``state`` (same keys and shapes as ``state_dict()``)."""
        if set(state) != set(self.state) or any(np.shape(state[k]) != self.state[k].shape for k in state):
            raise CheckpointError("the fixed-point state does not belong to this program; load one saved from it.")
        self.state = {k: np.asarray(v, np.int64).copy() for k, v in state.items()}

    def compute_cores(self) -> dict[str, np.ndarray]:
        """Codes of every compute copy as the next forward pass will read them (derived from the
        masters by the program's Narrow instructions; empty without master copies)."""
        buffers: dict[str, np.ndarray] = {}
        for i, ins in enumerate(self.program.instructions):
            if isinstance(ins, Narrow):
                self._execute(i, ins, buffers, record=False)
        return buffers

    def to_model(self, model: MLP) -> None:
        """Write the dequantized cores (as the contractions read them: the compute copies where
        there are masters) and biases into ``model`` (same structure), exactly."""
        derived = self.compute_cores()
        with torch.no_grad():
            for li, layer in enumerate(model.layers):
                for name, core, shape in zip(self.program.cores[li], layer.cores, self.program.core_shapes[li]):
                    codes = derived[name] if name in derived else self.state[name]
                    mat = torch.from_numpy(np.ldexp(codes.astype(np.float64), -self.frac(name)))
                    core.copy_(core_from_matrix(mat, torch.Size(shape), self.program.orders[li]))  # type: ignore[arg-type]
                bias = self.program.biases[li]
                if bias is not None:
                    layer.bias.copy_(torch.from_numpy(self.value(bias)))
