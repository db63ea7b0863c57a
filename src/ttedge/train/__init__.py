"""Training runs: configuration, the training loop, checkpoints and plots."""

from .config import DataConfig, MemoryConfig, ModelConfig, RunConfig, TrainConfig

__all__ = ["DataConfig", "MemoryConfig", "ModelConfig", "RunConfig", "TrainConfig"]
