"""The accelerator's own parameters: array size and the widths its datapaths support.

Everything about the *model* (buffer shapes, widths, fracs, instructions) comes from the compiled
:class:`~ttedge.fixed.program.Program`; this object holds only what a hardware designer picks.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["AcceleratorConfig"]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class AcceleratorConfig:
    """Size and limits of one accelerator instance (validated on construction)."""

    p: int = 16  # MAC-array rows: lanes over the contraction's first output index (x)
    q: int = 8  # MAC-array columns: lanes over its second output index (y)
    max_operand_width: int = 16  # bits of the widest code a MAC lane multiplies
    max_acc_width: int = 48  # bits of the widest accumulator a lane holds
    max_memory_words: int = 1 << 20  # words of the largest on-chip memory (all buffers of one width)
    counter_width: int = 32  # bits of each saturation counter and of the step register
    host_width: int = 64  # bits of the host data bus (one element or register per word)

    def __post_init__(self) -> None:
        for name in ("p", "q"):
            value = getattr(self, name)
            if not _is_int(value) or not 1 <= value <= 64:
                raise ConfigError(f"AcceleratorConfig.{name} must be an integer from 1 to 64 lanes, got {value!r}; pick an array size in that range.")
        if not _is_int(self.max_operand_width) or not 2 <= self.max_operand_width <= 32:
            raise ConfigError(f"AcceleratorConfig.max_operand_width must be 2 to 32 bits, got {self.max_operand_width!r}; pick a width in that range.")
        if not _is_int(self.max_acc_width) or not 2 * self.max_operand_width <= self.max_acc_width <= 64:
            raise ConfigError(
                f"AcceleratorConfig.max_acc_width must be from 2 * max_operand_width ({2 * self.max_operand_width}) "
                f"to 64 bits, got {self.max_acc_width!r}; pick a width in that range."
            )
        if not _is_int(self.max_memory_words) or self.max_memory_words < 1:
            raise ConfigError(f"AcceleratorConfig.max_memory_words must be a positive integer, got {self.max_memory_words!r}; pick a memory depth.")
        if not _is_int(self.counter_width) or not 16 <= self.counter_width <= 64:
            raise ConfigError(f"AcceleratorConfig.counter_width must be 16 to 64 bits, got {self.counter_width!r}; pick a width in that range.")
        if self.host_width != 64:
            raise ConfigError(f"AcceleratorConfig.host_width must be 64 bits (one int64 code per word), got {self.host_width!r}.")

    @property
    def lanes(self) -> int:
        """MAC lanes: p * q multiply-accumulates per cycle at full use."""
        return self.p * self.q
