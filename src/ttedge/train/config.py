"""The configuration of a training run: one dataclass per TOML table, a comment per field."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import at_least, choice
from ..errors import ConfigError

__all__ = ["BayesConfig", "DataConfig", "ModelConfig", "TrainConfig", "MemoryConfig", "RunConfig"]


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


@dataclass
class RunConfig:
    name: str = "run"  # run folder prefix under out_dir
    out_dir: str = "runs"  # where run folders are made
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    bayes: BayesConfig = field(default_factory=BayesConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
