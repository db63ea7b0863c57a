"""The configuration of a training run: one dataclass per TOML table, a comment per field."""

from __future__ import annotations

import math

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config import at_least, choice
from ..errors import ConfigError

if TYPE_CHECKING:
    from ..fixed import PrecisionConfig

__all__ = ["BayesConfig", "DataConfig", "FixedConfig", "HwConfig", "ModelConfig", "TrainConfig", "MemoryConfig",
           "ReportConfig", "RunConfig"]


@dataclass
class DataConfig:
    name: str = choice("digits", "mnist")  # digits: 8x8 set bundled with scikit-learn; mnist: IDX files
    data_dir: str = ""  # folder holding the four MNIST IDX files (gzipped or raw); mnist only
    download: bool = False  # fetch missing MNIST files from the usual mirrors (needs a network)
    pad_width: int = at_least(0, 0)  # zero-pad image rows to this many columns (0: none; 32 gives 28x32 = 896)
    split_seed: int = 0  # seed of the digits train/test split


@dataclass
class ModelConfig:
    layer: str = choice("tt", "dense")  # tt: TTLinear layers; dense: nn.Linear layers
    hidden: list[int] = field(default_factory=lambda: [512])  # hidden widths, each followed by ReLU
    in_modes: list[list[int]] = field(default_factory=list)  # per TT layer; [] factorizes the width into `cores` modes
    out_modes: list[list[int]] = field(default_factory=list)  # per TT layer; the last may exceed the class count (extra logits dropped)
    ranks: list[list[int]] = field(default_factory=list)  # per TT layer inner ranks; [] uses `rank` on every bond
    rank: int = at_least(16, 1)  # uniform TT rank when `ranks` is empty (capped at what a bond can use)
    cores: int = at_least(2, 1)  # cores per TT layer when modes are factorized automatically
    order: str = choice("auto", "rtl", "ltr")  # contraction order of every TT layer


@dataclass
class TrainConfig:
    epochs: int = at_least(10, 1)  # passes over the training set
    batch_size: int = at_least(64, 1)  # samples per optimizer step
    optimizer: str = choice("adam", "adamw", "sgd")  # torch.optim.Adam, AdamW (decoupled decay) or SGD
    lr: float = at_least(1e-3, 0.0)  # peak learning rate
    lr_schedule: str = choice("cosine", "constant")  # cosine decays to 0 over all steps
    momentum: float = at_least(0.9, 0.0)  # SGD momentum (ignored by Adam)
    weight_decay: float = at_least(0.0, 0.0)  # L2 penalty (adam, sgd) or decoupled decay (adamw)
    label_smoothing: float = at_least(0.0, 0.0)  # cross-entropy label smoothing, 0 to 1
    seed: int = 0  # seeds initialization and the per-epoch shuffles
    threads: int = at_least(0, 0)  # torch CPU threads; 0 keeps torch's default
    checkpoint_every: int = at_least(0, 0)  # steps between mid-epoch checkpoints; 0: at epoch ends only

    def __post_init__(self) -> None:
        if self.label_smoothing > 1:
            raise ConfigError(f"train.label_smoothing must be at most 1, got {self.label_smoothing!r}.")


@dataclass
class BayesConfig:
    enabled: bool = False  # rank-adaptive training (METHOD.md section 2); off keeps the ranks fixed
    prior: str = choice("gamma", "log_uniform", "half_cauchy")  # hyperprior on each rank variance lambda
    alpha: float = 1.0  # gamma: shape of the inverse-gamma hyperprior (> 0)
    beta: float = 0.1  # gamma: scale (> 0); larger beta -> lower ranks
    eta: float = 1.0  # half_cauchy: scale on sqrt(lambda) (> 0)
    init_lambda: float = at_least(1.0, 0.0)  # starting value of every lambda
    damping: float = 0.5  # EM step s in (0, 1]: lambda <- (1 - s) lambda + s lambda*
    weight: float = at_least(1.0, 0.0)  # penalty multiplier; the penalty is also divided by the training-set size
    warmup_epochs: int = at_least(1, 0)  # epochs of plain training before the penalty and EM updates start
    em_every: int = at_least(1, 1)  # optimizer steps between EM updates of lambda
    threshold: float = at_least(0.0, 0.0)  # prune lambdas below this; 0 uses threshold_factor x the prior's own (gamma)
    threshold_factor: float = at_least(2.0, 1.0)  # with threshold 0: prunes slices whose energy M < 2 beta (factor - 1)
    prune_epochs: list[int] = field(default_factory=list)  # epochs after which to prune; [] every epoch after warm-up
    end_epoch: int = at_least(0, 0)  # last epoch with penalty, EM and pruning (fine-tuning after); 0: to the end

    def __post_init__(self) -> None:
        from ..bayes import make_prior

        make_prior(self.prior, **self.prior_params())  # refuses bad hyperparameters at load time
        if not 0.0 < self.damping <= 1.0:
            raise ConfigError(f"bayes.damping must lie in (0, 1], got {self.damping!r}.")
        if self.enabled and self.threshold == 0.0 and self.prior != "gamma":
            raise ConfigError(
                f"the {self.prior} prior has no built-in pruning threshold; set bayes.threshold to a positive value."
            )

    def prior_params(self) -> dict[str, float]:
        """The hyperparameters the chosen prior takes."""
        return {"gamma": {"alpha": self.alpha, "beta": self.beta}, "log_uniform": {},
                "half_cauchy": {"eta": self.eta}}[self.prior]


@dataclass
class MemoryConfig:
    batch_size: int = at_least(1, 1)  # batch size the memory account assumes
    param_bits: int = at_least(32, 1)  # bits per stored parameter
    grad_bits: int = at_least(32, 1)  # bits per gradient entry
    optimizer_bits: int = at_least(32, 1)  # bits per optimizer-state entry
    activation_bits: int = at_least(32, 1)  # bits per activation kept for backward


def _precision_default(name: str, **metadata: Any) -> Any:
    """A field whose default is ``PrecisionConfig``'s (formats as their canonical strings).

    Looked up when a config is made, not at import: ``ttedge.fixed`` imports the models, which
    import this module.
    """
    def default() -> Any:
        from ..fixed import PrecisionConfig

        value = getattr(PrecisionConfig(), name)
        if name == "momentum_shift":
            return 0 if value is None else value
        if name == "master":
            return "" if value is None else str(value)
        return value if isinstance(value, (int, str)) else str(value)

    return field(default_factory=default, metadata=metadata)


_FORMATS = ("core", "bias", "input", "activation", "error", "gradient", "loss_grad", "velocity", "adam_m", "adam_v",
            "lam", "prec")


@dataclass
class FixedConfig:
    """Training wholly in fixed point through the reference interpreter (METHOD.md section 3).

    Formats are ``fx<W,I>`` strings (W bits, I integer bits including the sign). Dynamic buffers
    (activations, errors, gradients) use their format's width, and its frac only as a start: a
    power-of-two scale controller moves it. With ``enabled`` the optimizer is ``optimizer``: SGD
    with stochastic rounding into the cores and biases, at learning rate 2**-lr_shift per sample
    (the loss sums over the batch), or Adam in fixed point (``ttedge.fixed.AdamUpdate``: step size
    2**-lr_shift, beta = 1 - 2**-shift, no bias correction); train.optimizer, lr, lr_schedule,
    momentum, weight_decay and label_smoothing then play no part. With ``master`` set, the cores
    are stored and updated in that wider format and the contractions read ``core``, derived from
    the master at each read by rounding (``core``'s rounding mode: nearest, or stochastic with its
    own random stream). Defaults are those of ``ttedge.fixed.PrecisionConfig``.
    """

    enabled: bool = False  # train through the fixed-point interpreter instead of float32 PyTorch
    core: str = _precision_default("core")  # TT cores as the contractions read them (updated in place unless `master`)
    master: str = _precision_default("master")  # "": no master copy; else cores stored and updated in this wider format
    bias: str = _precision_default("bias")  # biases, updated in place
    input: str = _precision_default("input")  # input samples, quantized once (nearest)
    activation: str = _precision_default("activation")  # forward states (width; initial frac)
    error: str = _precision_default("error")  # back-propagated errors (width; initial frac)
    gradient: str = _precision_default("gradient")  # core and bias gradients (width; initial frac)
    loss_grad: str = _precision_default("loss_grad")  # softmax - onehot, in [-1, 1]
    velocity: str = _precision_default("velocity")  # momentum buffers (momentum_shift > 0 only)
    acc_width: int = _precision_default("acc_width", min=2)  # bits of forward and input-error accumulators
    grad_acc_width: int = _precision_default("grad_acc_width", min=2)  # bits of core-gradient accumulators (sum over the batch)
    rounding: str = _precision_default("rounding", choices=("nearest", "truncate", "stochastic"))  # of contraction outputs
    lr_shift: int = _precision_default("lr_shift", min=0)  # learning rate 2**-lr_shift per sample (adam: its step size)
    momentum_shift: int = _precision_default("momentum_shift", min=0)  # 0: plain SGD; k: momentum mu = 1 - 2**-k
    seed: int = _precision_default("seed")  # of the stochastic-rounding generator
    optimizer: str = _precision_default("optimizer", choices=("sgd", "adam"))  # sgd (momentum optional) or adam
    adam_m: str = _precision_default("adam_m")  # Adam first moments (optimizer = "adam" only)
    adam_v: str = _precision_default("adam_v")  # Adam second moments, unsigned (optimizer = "adam" only)
    beta1_shift: int = _precision_default("beta1_shift", min=1)  # Adam beta1 = 1 - 2**-beta1_shift
    beta2_shift: int = _precision_default("beta2_shift", min=1)  # Adam beta2 = 1 - 2**-beta2_shift
    eps_shift: int = _precision_default("eps_shift", min=0)  # Adam eps = 2**-eps_shift, added to sqrt(v)
    lam: str = _precision_default("lam")  # rank variances lambda, unsigned (with [bayes] enabled)
    prec: str = _precision_default("prec")  # their inverses 1 / lambda, unsigned (with [bayes] enabled)
    calibrate_rounds: int = at_least(16, 0)  # passes setting the dynamic scales on the first batch; 0: none
    # The dynamic scales' controller (ttedge.fixed.ScaleRule); the defaults are its own. At batch 1
    # a slower rise (scale_down_after, scale_max_step) keeps range for the rare large errors.
    scale_up_after: int = at_least(2, 1)  # steps in a row near the top of the range before it doubles
    scale_down_after: int = at_least(8, 1)  # steps in a row in the bottom of the range before it shrinks
    scale_max_step: int = at_least(8, 1)  # most fractional bits the range gains at once
    lr_decay_epochs: list[int] = field(default_factory=list)  # after each listed epoch the learning rate halves
    order_search: str = choice("", "macs", "peak")  # "": model.order's sweeps; else each layer's best sweep by this objective

    def __post_init__(self) -> None:
        from ..fixed import FixedFormat

        for name in _FORMATS:
            try:
                FixedFormat.parse(getattr(self, name))
            except ConfigError as exc:
                raise ConfigError(f"fixed.{name}: {exc}") from None
        if self.master:
            try:
                FixedFormat.parse(self.master)
            except ConfigError as exc:
                raise ConfigError(f"fixed.master: {exc}") from None
        try:
            self.precision()  # the combination checks (master vs core, optimizer) live in PrecisionConfig
        except ConfigError as exc:
            raise ConfigError(f"fixed: {exc}") from None

    def precision(self) -> PrecisionConfig:
        """The interpreter's PrecisionConfig: the one place this section maps onto it."""
        from ..fixed import FixedFormat, PrecisionConfig, ScaleRule

        formats = {name: FixedFormat.parse(getattr(self, name)) for name in _FORMATS}
        return PrecisionConfig(
            **formats, acc_width=self.acc_width, grad_acc_width=self.grad_acc_width,
            rounding=self.rounding, lr_shift=self.lr_shift,  # type: ignore[arg-type]
            momentum_shift=self.momentum_shift or None, seed=self.seed,
            master=FixedFormat.parse(self.master) if self.master else None,
            optimizer=self.optimizer,  # type: ignore[arg-type]
            beta1_shift=self.beta1_shift, beta2_shift=self.beta2_shift, eps_shift=self.eps_shift,
            scale=ScaleRule(up_after=self.scale_up_after, down_after=self.scale_down_after, max_step=self.scale_max_step),
        )

    def precision_strings(self) -> dict[str, str]:
        """The formats as canonical strings (for reports)."""
        p = self.precision()
        out = {name: str(getattr(p, name)) for name in _FORMATS}
        out["master"] = "" if p.master is None else str(p.master)
        return out


@dataclass
class HwConfig:
    """The accelerator a fixed-point program runs on (``ttedge.hw.AcceleratorConfig``)."""

    p: int = at_least(16, 1)  # MAC-array rows (lanes over a contraction's output index)
    q: int = at_least(8, 1)  # MAC-array columns (lanes over its rows x cols)

    def accelerator(self) -> Any:
        from ..hw import AcceleratorConfig

        return AcceleratorConfig(p=self.p, q=self.q)


@dataclass
class ReportConfig:
    """What ``ttedge report`` (the whole pipeline) measures besides training."""

    sim_steps: int = at_least(2, 1)  # training steps simulated and checked bit for bit
    targets: list[str] = field(default_factory=lambda: ["ecp5", "xcup"])  # synthesis targets; "up5k": the fit of the whole step first
    clock_mhz: float = 125.0  # clock requested from place and route
    ecp5_device: str = choice("85k", "25k", "45k")  # the ECP5 part placed and routed (LFE5U-<size>F): its Fmax and static power enter the headline
    cpu_steps: int = at_least(30, 1)  # timed PyTorch steps per CPU measurement

    def __post_init__(self) -> None:
        from ..synth.devices import TARGETS

        unknown = [t for t in self.targets if t not in TARGETS]
        if unknown:
            raise ConfigError(f"report.targets: unknown synthesis target(s) {unknown}; use {', '.join(TARGETS[:-1])} and/or {TARGETS[-1]}.")
        if not self.clock_mhz > 0:
            raise ConfigError(f"report.clock_mhz must be positive, got {self.clock_mhz!r}.")


@dataclass
class RunConfig:
    name: str = "run"  # run folder prefix under out_dir
    out_dir: str = "runs"  # where run folders are made
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    bayes: BayesConfig = field(default_factory=BayesConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    fixed: FixedConfig = field(default_factory=FixedConfig)
    hw: HwConfig = field(default_factory=HwConfig)
    report: ReportConfig = field(default_factory=ReportConfig)

    def __post_init__(self) -> None:
        if self.fixed.enabled and self.model.layer != "tt":
            raise ConfigError('fixed-point training compiles TT layers only; set model.layer = "tt" or fixed.enabled = false.')
        if self.fixed.enabled and self.bayes.enabled:
            b = self.bayes
            if b.prior != "gamma":
                raise ConfigError(f'fixed-point rank adaptation runs the gamma prior only, got {b.prior!r}; set bayes.prior = "gamma".')
            if b.em_every != 1:
                raise ConfigError("fixed-point rank adaptation updates lambda every step; set bayes.em_every = 1.")
            if b.threshold:
                raise ConfigError("fixed-point pruning uses bayes.threshold_factor times the prior's threshold; set bayes.threshold = 0.")
            if math.log2(b.damping) != round(math.log2(b.damping)):
                raise ConfigError(f"fixed-point EM damping is a power of two, got bayes.damping = {b.damping}; use 1, 0.5, 0.25, ...")

    def compile_fixed(self, model: Any, batch: int, n_train: int) -> Any:
        """The fixed-point training program of ``model`` under this config (precision, rank prior
        for ``n_train`` training samples, order search): the one place a config becomes a program."""
        from ..fixed import compile_program

        return compile_program(model, self.fixed.precision(), batch, self.fixed_prior(n_train),
                               self.fixed.order_search or None)  # type: ignore[arg-type]

    def build_fixed(self, batch: int) -> tuple[Any, Any]:
        """(model, program): this config's network as a fresh run builds it (its seed, the data's
        width) and its fixed-point training program for ``batch`` samples (``compile_fixed``)."""
        from ..data import NUM_CLASSES, num_features, num_train
        from ..models import build_model

        model = build_model(self.model, num_features(self.data.name, self.data.pad_width or None), NUM_CLASSES,
                            seed=self.train.seed)
        return model, self.compile_fixed(model, batch, num_train(self.data.name, self.data.split_seed))

    def fixed_prior(self, n_train: int) -> Any:
        """The ``ttedge.fixed.PriorConfig`` of this run's [bayes] section (None when it is off)."""
        if not self.bayes.enabled:
            return None
        from ..fixed import PriorConfig

        b = self.bayes
        return PriorConfig(alpha=b.alpha, beta=b.beta, weight=b.weight / n_train,
                           damping_shift=round(-math.log2(b.damping)), init_lambda=b.init_lambda)
