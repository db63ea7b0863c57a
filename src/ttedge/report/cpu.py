"""The CPU side of the headline comparison: PyTorch training measured on this machine.

Per-sample training time of a model in float32 PyTorch (forward, cross-entropy, backward, an SGD
step) at a given batch and thread count, timed after a warm-up on random inputs of the model's
width. Energy on the CPU is that time times a stated power figure: this VM exposes no energy
counters (no RAPL), so the figure is an assumption, printed with every result that uses it.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["CPU_WATTS_PER_CORE", "CPU_POWER_SOURCE", "CpuTiming", "time_training"]

# A busy server core: Intel Xeon Platinum 8280, 205 W TDP over 28 cores = 7.3 W (Intel ARK); the
# processor this VM reports is an unnamed Xeon, so the figure is an assumption, not a measurement.
CPU_WATTS_PER_CORE = 7.3
CPU_POWER_SOURCE = ("assumed 7.3 W per busy core: Intel Xeon Platinum 8280 TDP 205 W / 28 cores (Intel ARK); "
                    "this VM has no energy counters, so it is not measured")


@dataclass(frozen=True)
class CpuTiming:
    """Measured float32 PyTorch training time of one model at one batch size."""

    name: str
    batch: int
    threads: int
    steps: int
    seconds_per_step: float
    watts: float  # the assumed power of the busy cores (threads x CPU_WATTS_PER_CORE)

    @property
    def seconds_per_sample(self) -> float:
        return self.seconds_per_step / self.batch

    @property
    def joules_per_sample(self) -> float:
        return self.seconds_per_sample * self.watts

    def to_dict(self) -> dict[str, float | int | str]:
        return {**asdict(self), "seconds_per_sample": self.seconds_per_sample, "joules_per_sample": self.joules_per_sample}


def time_training(model: nn.Module, in_features: int, num_classes: int, batch: int, name: str,
                  steps: int = 50, warmup: int = 5, threads: int = 1, seed: int = 0) -> CpuTiming:
    """Median time of ``steps`` SGD training steps of ``model`` on random float32 data, after ``warmup``
    steps: each step is timed alone, so that a step slowed by another job on the machine moves the
    figure little (a mean of 30 steps moved 3x between two runs of the default job)."""
    for key, value, low in (("batch", batch, 1), ("steps", steps, 1), ("warmup", warmup, 0), ("threads", threads, 1)):
        if not isinstance(value, int) or value < low:
            raise ConfigError(f"{key} must be an integer >= {low}, got {value!r}.")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(seed)
        x = torch.rand(batch, in_features, generator=gen)
        y = torch.randint(0, num_classes, (batch,), generator=gen)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)

        def step() -> None:
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        for _ in range(warmup):
            step()
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        seconds = statistics.median(times)
    finally:
        torch.set_num_threads(previous)
    return CpuTiming(name, batch, threads, steps, seconds, threads * CPU_WATTS_PER_CORE)
