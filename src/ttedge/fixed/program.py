"""The training program: typed, immutable instructions over a table of named integer buffers.

One :class:`Program` is one whole training step of a TT MLP on a mini-batch of B samples: forward,
loss gradient, backward (input errors and core gradients, never a dense dW), SGD updates with
stochastic rounding straight into the low-precision cores and biases, and finally the dynamic
power-of-two scale controllers. ``compile.py`` builds it from a model; ``interpreter.py`` executes it
on int64 codes, and is the bit-exact specification a hardware accelerator is tested against.

Numbers: a buffer holds integer codes of a width (bits); the real value is code * 2**-frac. Static
buffers (cores, biases, inputs, the loss gradient, optimizer state) keep the frac of their format.
Dynamic buffers (every contraction output, the layer outputs, gradients) have a frac held in the
training state (``scale.<buffer>.frac``) and adjusted by :class:`ScaleControl` between steps; their
format's frac is only the initial value. Within one step every frac is constant.

Stochastic rounding: the instruction at position i of ``Program.instructions`` draws its words as
``random_bits(seed, stream=i, step=<global step>, index=<flat output element>)``.

Master copies: with a master format, each core is stored once, in the wide master format (a buffer
of kind "core" named ``<core>.master``), and the optimizer updates it. The contractions read the
narrow compute copy (kind "compute", named ``<core>``), which a :class:`Narrow` at the start of the
forward phase derives from the master. The compute copy is *not stored*: hardware derives it on the
fly at every read of a master code (one shift and one round per read), which gives the same codes at
every read of a step because the master only changes in the update phase and the rounding word
depends on (seed, stream, step, index) alone. So its ``Buffer.bits`` is 0 and the memory account
counts the master only.

Rank prior (METHOD.md section 2, gamma hyperprior): with a prior, each inner bond k of a layer
has two buffers of kind "lambda", its variances ``l<i>.lam<k>`` and their inverses ``l<i>.prec<k>``
(one code per rank index). A :class:`PriorGrad` after each core gradient adds the MAP penalty's
gradient, and a :class:`LambdaUpdate` per bond after the weight updates takes the damped EM step.
Both act only while the host-written register ``prior.on`` is 1 (the host's schedule: warm-up,
then the prior, then fine-tuning without it); pruning rank indices is a host action between steps
that compiles a smaller program (``ttedge.fixed.prune``).

Phases, in program order: "forward", "loss", "backward", "update", "scale". Evaluation runs the
forward phase alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Union

from ..errors import ConfigError
from .format import FixedFormat, Rounding

__all__ = [
    "BufferKind",
    "Buffer",
    "Operand",
    "Contract",
    "BiasAdd",
    "BiasGrad",
    "Relu",
    "ReluGrad",
    "SoftmaxXentGrad",
    "SgdUpdate",
    "AdamUpdate",
    "Narrow",
    "PriorGrad",
    "LambdaUpdate",
    "ScaleRule",
    "ScaleControl",
    "Instruction",
    "Program",
]

BufferKind = Literal[
    "core", "bias", "lambda", "optimizer", "activation", "error", "gradient", "accumulator", "input", "label",
    "compute",  # a core's compute copy, derived on the fly from its master at each read: not stored
]
Phase = Literal["forward", "loss", "backward", "update", "scale"]
ADAM_DITHER_BITS = 24  # bits below the parameter's LSB that an AdamUpdate keeps and dithers away


@dataclass(frozen=True)
class Buffer:
    """A named array of integer codes: ``shape`` elements of ``fmt.width`` bits each."""

    name: str
    shape: tuple[int, ...]
    fmt: FixedFormat  # width in bits; frac = the fixed (or, if dynamic, initial) fractional bits
    kind: BufferKind
    dynamic: bool = False  # frac lives in the state and is set by a ScaleControl

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    @property
    def stored(self) -> bool:
        """False for a compute copy, which hardware derives from the master at every read."""
        return self.kind != "compute"

    @property
    def bits(self) -> int:
        """Storage in bits: numel * width, or 0 if the buffer is not stored (a compute copy)."""
        return self.numel * self.fmt.width if self.stored else 0


@dataclass(frozen=True)
class Operand:
    """A buffer read or written through a (rows, mid, cols) view of its elements in C order."""

    buffer: str
    view: tuple[int, ...]


@dataclass(frozen=True)
class Contract:
    """A batched integer matrix product, exact into an ``acc_width``-bit accumulator, then rounded.

    With the core matrix G (out, contract) and the three modes (index maps)::

        forward:      Y[r, o, c] = sum_k G[o, k] * A[r, k, c]        a = state (rows, contract, cols)
        input_error:  Y[r, k, c] = sum_o G[o, k] * A[r, o, c]        a = error (rows, out, cols)
        core_grad:    Y[o, k]    = sum_{r, c} A[r, o, c] * S[r, k, c] a = error, b = kept state

    The accumulator has frac_a + frac_b fractional bits; the compiler checks that the worst case
    2**(w_a - 1) * 2**(w_b - 1) * K stays below 2**(acc_width - 1), so the sum is exact and order-free.
    The output is rounded (``rounding``) into ``out``'s width at its current frac and saturated.
    """

    mode: Literal["forward", "input_error", "core_grad"]
    a: Operand
    b: Operand  # the core matrix (forward, input_error) or the kept state (core_grad)
    out: Operand
    rows: int
    contract: int  # the core's contracted length (n_k r_k for rtl, r_{k-1} n_k for ltr)
    out_len: int  # the core's produced length
    cols: int
    acc_width: int  # bits of the accumulator
    rounding: Rounding = "nearest"
    phase: Phase = "forward"

    @property
    def macs(self) -> int:
        return self.rows * self.contract * self.out_len * self.cols

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.a.buffer, self.b.buffer)

    @property
    def writes(self) -> tuple[str, ...]:
        return (self.out.buffer,)


@dataclass(frozen=True)
class BiasAdd:
    """y[b, j] += bias[j] in place: the bias is aligned to y's frac (exact if finer, else nearest)."""

    y: str  # (B, M), dynamic frac
    bias: str  # (M,)
    phase: Phase = "forward"
    macs: int = 0
    reads: tuple[str, ...] = field(init=False)
    writes: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reads", (self.y, self.bias))
        object.__setattr__(self, "writes", (self.y,))


@dataclass(frozen=True)
class BiasGrad:
    """g[j] = sum_b e[b, j], exact, rounded (nearest) into ``grad``'s width at its current frac."""

    error: str  # (B, M)
    grad: str  # (M,)
    phase: Phase = "backward"
    macs: int = 0
    reads: tuple[str, ...] = field(init=False)
    writes: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reads", (self.error,))
        object.__setattr__(self, "writes", (self.grad,))


@dataclass(frozen=True)
class Relu:
    """x = max(x, 0) in place (codes; the frac is unchanged)."""

    x: str
    phase: Phase = "forward"
    macs: int = 0
    reads: tuple[str, ...] = field(init=False)
    writes: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reads", (self.x,))
        object.__setattr__(self, "writes", (self.x,))


@dataclass(frozen=True)
class ReluGrad:
    """e = e * (a > 0) in place, with a the kept ReLU output (positive exactly where its input was)."""

    error: str
    activation: str
    phase: Phase = "backward"
    macs: int = 0
    reads: tuple[str, ...] = field(init=False)
    writes: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reads", (self.error, self.activation))
        object.__setattr__(self, "writes", (self.error,))


@dataclass(frozen=True)
class SoftmaxXentGrad:
    """e[:, :C] = softmax(logits[:, :C]) - onehot(labels), e[:, C:] = 0 (``ttedge.fixed.softmax_xent_grad``).

    The loss is the *sum* over the batch (no 1/B), so the learning rate is per sample.
    """

    logits: str  # (B, M), M >= C
    labels: str  # (B,)
    error: str  # (B, M), static format
    num_classes: int
    phase: Phase = "loss"
    macs: int = 0
    reads: tuple[str, ...] = field(init=False)
    writes: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reads", (self.logits, self.labels))
        object.__setattr__(self, "writes", (self.error,))


@dataclass(frozen=True)
class SgdUpdate:
    """p <- p - 2**-(lr_shift + lr.decay) * d, stochastically rounded into p's format (no float master
    copy); lr.decay is an interpreter state register the host sets for a learning-rate schedule.

    Without momentum d = g. With momentum (``velocity`` set) v <- v - (v >> momentum_shift) + g,
    i.e. mu = 1 - 2**-momentum_shift, with g rounded (nearest) to v's frac and the shift a floor;
    then d = v. The exact new value has F = max(frac_p, frac_d + lr_shift) fractional bits; if
    F - frac_p > 32 the d term is first floored to frac_p + 32 bits (one 32-bit word dithers at most
    32 bits). Random word: ``random_bits(seed, stream, step, flat index into p)``.
    """

    param: str
    grad: str
    lr_shift: int
    velocity: str | None = None
    momentum_shift: int = 0
    phase: Phase = "update"

    @property
    def macs(self) -> int:
        return 0  # a shift and an add per element

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.param, self.grad) + ((self.velocity,) if self.velocity else ())

    @property
    def writes(self) -> tuple[str, ...]:
        return (self.param,) + ((self.velocity,) if self.velocity else ())


@dataclass(frozen=True)
class AdamUpdate:
    """Adam in fixed point, without bias correction; every step exact integer arithmetic.

    Per element, with codes P (param, frac fp), g (grad, frac fg, dynamic), M (first moment, signed,
    frac fm), V (second moment, unsigned, frac fv); ``rnd(x, k)`` rounds an integer x to nearest at
    k bits lower, half up: (x + 2**(k-1)) >> k (x for k <= 0 after a left shift by -k)::

        G  = sat_M(rnd(g, fg - fm))                   # g at M's frac, saturated to M's width
        M  = sat_M(M + rnd(G - M, beta1_shift))       # M + (G - M) * 2**-b1, i.e. beta1 = 1 - 2**-b1
        Q  = sat_V(rnd(G * G, 2 fm - fv))             # g**2 at V's frac
        V  = sat_V(V + rnd(Q - V, beta2_shift))       # beta2 = 1 - 2**-b2
        S  = isqrt(V << fv)                           # floor(sqrt(V * 2**fv)): sqrt(v) at frac fv
        D  = S + (1 << (fv - eps_shift))              # sqrt(v) + eps at frac fv, eps = 2**-eps_shift
        e  = fv - fm - lr_shift + fp + 24                    # 24 = ADAM_DITHER_BITS
        U  = floor(M * 2**max(e, 0) / (D * 2**max(-e, 0)))   # lr * m / (sqrt(v) + eps) at frac fp + 24
        P  = sat_P(stochastic((P << 24) - U, 24 bits))       # word: random_bits(seed, stream, step, index)

    ``isqrt`` is the integer square root floor(sqrt(N)) (the restoring bit-by-bit algorithm, one bit
    per cycle, gives exactly it); the division is an exact floor division (a restoring divider).
    The compiler keeps V << fv below 2**53 and |M| * 2**e below 2**63. Hyperparameters are the
    shifts b1, b2, eps_shift and lr_shift (each a few bits, well inside 16). Every saturation is counted
    (``sat.<buffer>``); the stochastic test is ``requantize``'s (one LSB up iff R < D << 8, D the 24
    dropped bits). Bias correction is omitted: after t steps m and v are shrunk by (1 - beta1**t)
    and (1 - beta2**t), so the very first step is 2**(b2/2 - b1) times the unit Adam step for a
    steady gradient (sqrt(2) with the defaults b1 = 3, b2 = 7), tending to 1 within ~2**b2 steps.
    """

    param: str
    grad: str
    m: str
    v: str
    lr_shift: int
    beta1_shift: int
    beta2_shift: int
    eps_shift: int
    phase: Phase = "update"

    @property
    def macs(self) -> int:
        return 0  # one square (g*g), a square root and a division per element; no MAC-array work

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.param, self.grad, self.m, self.v)

    @property
    def writes(self) -> tuple[str, ...]:
        return (self.param, self.m, self.v)


@dataclass(frozen=True)
class Narrow:
    """The compute copy of a core from its master: drop fm - fc low bits of each code, then saturate.

    With k = frac(master) - frac(compute) >= 0 and the compute format's rounding: nearest adds bit
    k-1 to the floor (round half up, ``requantize``'s rule); stochastic adds one LSB iff R < D << (32 - k),
    D the dropped bits and R = random_bits(seed, stream, step, index) with ``stream`` this
    instruction's position (its own stream; every read in one step sees the same word, hence the
    same code). The result saturates to the compute width (counted in ``sat.<compute>`` once per
    training step, e.g. a master code of 127/128 rounds to 1 and clamps to 7/8 in fx<4,1>).
    """

    master: str
    compute: str
    phase: Phase = "forward"
    macs: int = 0
    reads: tuple[str, ...] = field(init=False)
    writes: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reads", (self.master,))
        object.__setattr__(self, "writes", (self.compute,))


@dataclass(frozen=True)
class PriorGrad:
    """g += c * G * (prec_left[a] + prec_right[b]), the gradient of the rank prior's penalty.

    For core G of shape (r0, m, n, r1) (stored in the (out, contract) matrix of ``order``, see
    ``ttedge.tt.apply.core_matrix``), the entry G[a, i, j, b] belongs to bond k-1 through its first
    index a and to bond k through its last index b; ``left`` / ``right`` are those bonds' precision
    buffers (1 / lambda; None at the layer's first / last core). With codes G (frac fG, the stored
    core: the master where there is one), P (frac fP, the precisions), g (frac fg, dynamic) and the
    16-bit constant c (frac ``coef_frac``; c = weight * B / N_train, the penalty's share of one
    step's summed loss)::

        T = coef * G * (P_left[a] + P_right[b])    # exact, frac F = coef_frac + fG + fP; |T| < 2**62
        U = clamp_48(rnd(T, F - fg))               # at g's frac: nearest, round half up (an exact left
                                                   # shift if fg > F), clamped to signed 48 bits
        g = sat_g(g + U)

    A missing bond contributes 0. Skipped while ``prior.on`` is 0.
    """

    core: str
    grad: str
    shape: tuple[int, int, int, int]  # (r0, m, n, r1) of the core
    order: Literal["rtl", "ltr"]  # the layout of the core's and the gradient's matrices
    left: str | None
    right: str | None
    coef: int  # code of c, < 2**16
    coef_frac: int
    phase: Phase = "backward"

    @property
    def macs(self) -> int:
        return 0  # two multiplies per element in the update path, outside the MAC array

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.core, self.grad) + tuple(b for b in (self.left, self.right) if b is not None)

    @property
    def writes(self) -> tuple[str, ...]:
        return (self.grad,)


def bond_size(left: tuple[int, int, int, int], right: tuple[int, int, int, int]) -> int:
    """D of the bond between cores of shapes ``left`` (r0, m, n, r) and ``right`` (r, m', n', r1):
    r0 m n + m' n' r1, the entries of L[..., t] and R[t, ...] for one rank index t."""
    return left[0] * left[1] * left[2] + right[1] * right[2] * right[3]


@dataclass(frozen=True)
class LambdaUpdate:
    """The damped EM step of one bond's variances under the gamma hyperprior, and their inverses.

    The bond joins cores L (r0, m, n, r) and R (r, m', n', r1) (stored codes at frac fG, in their
    matrix layouts ``left_order`` / ``right_order``). Per rank index t, with lambda codes at frac fL
    and precision codes at frac fP::

        M[t]  = sum L[..., t]**2 + sum R[t, ...]**2                # exact, frac 2 fG
        X[t]  = floor((M[t] + two_beta) * 2**s / den)               # lambda* = (M + 2 beta) / (D + 2 + 2 alpha)
        lam   = clamp(lam + rnd(X - lam, damping_shift), 1, MAX)    # lambda <- (1 - s) lambda + s lambda*
        prec  = min(floor(2**(fP + fL) / lam), MAX_P)               # 1 / lambda

    with ``two_beta`` = 2 beta at frac 2 fG, ``den`` = D + 2 + 2 alpha at frac ``den_frac``, s = fL +
    den_frac - 2 fG (for s < 0 the floor is of (M + two_beta) / (den << -s)), ``rnd`` round half up
    ((x + 2**(k-1)) >> k, x itself for k = 0) and damping s = 2**-damping_shift. Clamping and
    saturation count in ``sat.<lam>`` / ``sat.<prec>``. Skipped while ``prior.on`` is 0.
    """

    left: str
    right: str
    left_shape: tuple[int, int, int, int]
    right_shape: tuple[int, int, int, int]
    left_order: Literal["rtl", "ltr"]
    right_order: Literal["rtl", "ltr"]
    lam: str
    prec: str
    two_beta: int
    den: int
    den_frac: int
    damping_shift: int
    init_lam: int  # the lambda code a fresh state starts from (prec starts at 2**(fP + fL) // init_lam)
    phase: Phase = "update"

    @property
    def size(self) -> int:
        """D of the bond: the entries of one rank index's two slices."""
        return bond_size(self.left_shape, self.right_shape)

    @property
    def macs(self) -> int:
        return 0  # sums of squares and two divisions per rank index, outside the MAC array

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.left, self.right, self.lam)

    @property
    def writes(self) -> tuple[str, ...]:
        return (self.lam, self.prec)


@dataclass(frozen=True)
class ScaleRule:
    """The hysteresis controller of a dynamic buffer's frac; all thresholds are integers.

    With W the width, MAX = 2**(W-1) - 1, HI = (hi_num * MAX) // den, LO = (lo_num * MAX) // den and
    m = max |code| of the buffer after this step (a code at -2**(W-1) counts as MAX)::

        if m >= MAX:    frac -= 1; over = under = 0               # at the rail: saturated, act now
        elif m > HI:    over += 1; under = 0;  if over >= up_after:   frac -= 1; over = 0
        elif m < LO:    under += 1; over = 0;  if under >= down_after:
                            frac += min(max_step, max(1, (W - 2) - bit_length(m))); under = 0
        else:           over = under = 0
        frac = clamp(frac, frac_min, frac_max)

    Lowering frac (raising the shift) doubles the range; the jump when raising frac brings m into
    [2**(W-3), 2**(W-2)), i.e. a quarter to a half of the range, in one move.
    """

    hi_num: int = 9
    lo_num: int = 3
    den: int = 10
    up_after: int = 2  # steps in a row above HI before the range doubles
    down_after: int = 8  # steps in a row below LO before the range shrinks
    max_step: int = 8  # most bits frac rises at once
    frac_min: int = 0
    frac_max: int = 31

    def update(self, width: int, m: int, frac: int, over: int, under: int) -> tuple[int, int, int]:
        """(frac, over, under) after a step whose buffer of ``width`` bits had max |code| ``m``."""
        top = (1 << (width - 1)) - 1
        hi, lo = (self.hi_num * top) // self.den, (self.lo_num * top) // self.den
        m = min(m, top)
        if m >= top:
            frac, over, under = frac - 1, 0, 0
        elif m > hi:
            over, under = over + 1, 0
            if over >= self.up_after:
                frac, over = frac - 1, 0
        elif m < lo:
            under, over = under + 1, 0
            if under >= self.down_after:
                frac, under = frac + min(self.max_step, max(1, (width - 2) - m.bit_length())), 0
        else:
            over = under = 0
        return min(max(frac, self.frac_min), self.frac_max), over, under


@dataclass(frozen=True)
class ScaleControl:
    """Adjust ``buffer``'s frac (state ``scale.<buffer>.frac``) by ``rule`` from its contents."""

    buffer: str
    rule: ScaleRule
    phase: Phase = "scale"
    macs: int = 0
    reads: tuple[str, ...] = field(init=False)
    writes: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reads", (self.buffer,))
        object.__setattr__(self, "writes", ())


Instruction = Union[
    Contract, BiasAdd, BiasGrad, Relu, ReluGrad, SoftmaxXentGrad, SgdUpdate, AdamUpdate, Narrow, PriorGrad,
    LambdaUpdate, ScaleControl,
]


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


@dataclass(frozen=True)
class Program:
    """A training step: ``instructions`` in order over ``buffers``, for ``batch`` samples."""

    buffers: tuple[Buffer, ...]
    instructions: tuple[Instruction, ...]
    batch: int
    num_classes: int
    input: str  # (B, N) input buffer
    labels: str  # (B,) label buffer
    logits: str  # (B, M) network output
    seed: int
    cores: tuple[tuple[str, ...], ...]  # per layer, its core buffers in core order
    orders: tuple[str, ...]  # per layer, the sweep direction ("rtl"/"ltr") of its core matrices
    core_shapes: tuple[tuple[tuple[int, int, int, int], ...], ...]  # per layer, (r0, m, n, r1) of each core
    biases: tuple[str | None, ...]  # per layer
    masters: tuple[tuple[str, str], ...] = ()  # (compute copy, its master) per core with a master copy
    priors: tuple[tuple[tuple[str, str], ...], ...] = ()  # per layer, per inner bond: (lambda, precision) buffers; () without a prior

    def stored_name(self, core: str) -> str:
        """The buffer that holds ``core``'s state: its master if it has one, else itself."""
        return dict(self.masters).get(core, core)

    def __post_init__(self) -> None:
        names = [b.name for b in self.buffers]
        if len(set(names)) != len(names):
            raise ConfigError("a program's buffer names must be unique; rename the duplicates.")
        known = set(names)
        for ins in self.instructions:
            for name in (*ins.reads, *ins.writes):
                if name not in known:
                    raise ConfigError(f"instruction {type(ins).__name__} uses unknown buffer {name!r}; declare it.")

    def buffer(self, name: str) -> Buffer:
        for b in self.buffers:
            if b.name == name:
                return b
        raise KeyError(name)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one training step."""
        return sum(i.macs for i in self.instructions)

    def phase(self, phase: Phase) -> tuple[Instruction, ...]:
        return tuple(i for i in self.instructions if i.phase == phase)

    @property
    def accumulator_bits(self) -> int:
        """Bits of the largest contraction's exact sums before rounding: its output elements at its
        accumulator width (one contraction runs at a time)."""
        sizes = [_numel(i.out.view) * i.acc_width for i in self.instructions if isinstance(i, Contract)]
        return max(sizes, default=0)

    def listing(self) -> list[dict[str, object]]:
        """One row per instruction: position, kind, phase, MACs, and the buffers read and written."""
        return [{"index": i, "kind": type(ins).__name__, "phase": ins.phase, "macs": ins.macs,
                 "reads": list(ins.reads), "writes": list(ins.writes)} for i, ins in enumerate(self.instructions)]

    def lifetimes(self) -> dict[str, tuple[int, int]]:
        """(first, last) instruction positions between which each working buffer must be held.

        Working buffers are the per-step ones (activations, errors, gradients, the input and labels,
        which are loaded before instruction 0, hence first = -1); state (cores, biases, optimizer
        buffers, lambdas) lives across steps and is not listed. ``last`` is the last instruction that
        reads or writes the buffer, ScaleControl excepted: its max |code| can be taken by the
        buffer's last writer as it writes (a register per buffer), so the controller needs no copy.
        """
        state = ("core", "bias", "optimizer", "lambda", "compute")
        spans: dict[str, tuple[int, int]] = {}
        for b in self.buffers:
            if b.kind in ("input", "label"):
                spans[b.name] = (-1, -1)
        for i, ins in enumerate(self.instructions):
            if isinstance(ins, ScaleControl):
                continue
            for name in (*ins.reads, *ins.writes):
                if self.buffer(name).kind in state:
                    continue
                first, _ = spans.get(name, (i, i))
                spans[name] = (first, i)
        return spans

    def peak_working_bits(self) -> int:
        """The most bits of working buffers alive at once (see :meth:`lifetimes`): what the step
        needs for them when storage is reused between buffers whose lifetimes do not overlap."""
        spans = self.lifetimes()
        events = sorted({first for first, _ in spans.values()})
        return max((sum(self.buffer(n).bits for n, (a, b) in spans.items() if a <= t <= b) for t in events), default=0)

    def bits_by_kind(self) -> dict[str, int]:
        """Stored bits of every buffer, summed per kind, and the total (no buffer sharing yet;
        compute copies count 0 bits, as they are derived on the fly)."""
        out: dict[str, int] = {}
        for b in self.buffers:
            out[b.kind] = out.get(b.kind, 0) + b.bits
        out["total"] = sum(out.values())
        return out
