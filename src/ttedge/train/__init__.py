"""Training runs: configuration, the training loop, checkpoints and plots."""

from .config import (BayesConfig, DataConfig, FixedConfig, HwConfig, MemoryConfig, ModelConfig, ReportConfig, RunConfig,
                     TrainConfig)

__all__ = [
    "BayesConfig", "DataConfig", "FixedConfig", "HwConfig", "MemoryConfig", "ModelConfig", "ReportConfig", "RunConfig",
    "TrainConfig"]
