"""Reports: the CPU baseline measured here, and (to come) the Markdown/HTML report beside the paper's figures."""

from .cpu import CPU_POWER_SOURCE, CPU_WATTS_PER_CORE, CpuTiming, time_training

__all__ = ["CPU_POWER_SOURCE", "CPU_WATTS_PER_CORE", "CpuTiming", "time_training"]
