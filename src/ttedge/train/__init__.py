"""Training runs: configuration, the training loop, checkpoints and plots."""

from .config import BayesConfig, DataConfig, FixedConfig, MemoryConfig, ModelConfig, RunConfig, TrainConfig

__all__ = [
    "BayesConfig", "DataConfig", "FixedConfig", "MemoryConfig", "ModelConfig", "RunConfig", "TrainConfig"]
