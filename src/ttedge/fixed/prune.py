"""Rank pruning of a fixed-point training run: the host's step between two training steps.

The program of a training step has fixed buffer sizes, so cutting rank indices means compiling a
smaller program. :func:`prune_program` decides from the lambda codes which rank indices go (those
whose variance fell below ``factor`` times the gamma hyperprior's threshold, never a bond's last
index), truncates the float model's cores to the new ranks, compiles the new program and carries
the whole integer state over: every core-shaped buffer (cores, masters, momentum, Adam moments) is
sliced in core layout (r0, m, n, r1) on the bond's axis, lambdas and precisions are sliced, and
biases, their optimizer state, the scale controllers, saturation counters and host registers are
copied unchanged. Nothing is rounded again: the kept codes are exactly the old ones.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ..bayes import GammaPrior, truncate
from ..models import MLP
from ..tt.apply import core_from_matrix, core_matrix
from .compile import PrecisionConfig, PriorConfig, compile_program
from .interpreter import Interpreter
from .program import LambdaUpdate, Program

__all__ = ["PruneResult", "prune_program", "bond_lambdas"]


@dataclass(frozen=True)
class PruneResult:
    """The pruned run: its interpreter (state carried over), float model (structure only) and ranks."""

    interpreter: Interpreter
    model: MLP
    ranks_before: tuple[tuple[int, ...], ...]  # per layer, its inner ranks
    ranks_after: tuple[tuple[int, ...], ...]

    @property
    def num_removed(self) -> int:
        return sum(a - b for before, after in zip(self.ranks_before, self.ranks_after) for a, b in zip(before, after))


def bond_lambdas(interp: Interpreter) -> list[list[np.ndarray]]:
    """Per layer, per inner bond, its lambdas as float64 values (for reports and pruning)."""
    return [[interp.value(lam) for lam, _ in bonds] for bonds in interp.program.priors]


def _bond_sizes(program: Program) -> dict[str, int]:
    """D of each bond, by its lambda buffer's name (from the program's LambdaUpdate instructions)."""
    return {ins.lam: ins.size for ins in program.instructions if isinstance(ins, LambdaUpdate)}


def _slice_core(codes: np.ndarray, shape: tuple[int, ...], order: str, keep_left: np.ndarray | None,
                keep_right: np.ndarray | None) -> np.ndarray:
    """Codes in a core's matrix layout, cut to the kept first (r0) and last (r1) indices."""
    core = core_from_matrix(torch.from_numpy(codes), torch.Size(shape), order)  # type: ignore[arg-type]
    if keep_left is not None:
        core = core[torch.from_numpy(keep_left)]
    if keep_right is not None:
        core = core[..., torch.from_numpy(keep_right)]
    return core_matrix(core.contiguous(), order).numpy().copy()  # type: ignore[arg-type]


def prune_program(interp: Interpreter, model: MLP, precision: PrecisionConfig, prior: PriorConfig,
                  factor: float = 2.0, order_objective: Literal["macs", "peak"] | None = None) -> PruneResult:
    """Cut every rank index whose lambda is below ``factor`` times beta / (D / 2 + alpha + 1).

    Returns the old interpreter and model unchanged (ranks_before == ranks_after) when nothing goes.
    """
    program = interp.program
    gamma = GammaPrior(alpha=prior.alpha, beta=prior.beta)
    sizes = _bond_sizes(program)
    keeps: list[list[np.ndarray]] = []
    for bonds in program.priors:
        layer_keeps = []
        for lam, _ in bonds:
            values = interp.value(lam)
            keep = values >= factor * gamma.threshold(sizes[lam])
            if not keep.any():
                keep[np.argmax(values)] = True  # a bond never loses its last index
            layer_keeps.append(np.flatnonzero(keep))
        keeps.append(layer_keeps)
    before = tuple(tuple(len(b) for b in (interp.state[lam] for lam, _ in bonds)) for bonds in program.priors)
    after = tuple(tuple(len(k) for k in layer) for layer in keeps)
    if before == after:
        return PruneResult(interp, model, before, after)

    new_model = copy.deepcopy(model)
    for layer, layer_keeps in zip(new_model.layers, keeps):
        for bond, keep in enumerate(layer_keeps):
            truncate(layer, bond, torch.from_numpy(keep))  # type: ignore[arg-type]
    new_program = compile_program(new_model, precision, program.batch, prior, order_objective)
    new = Interpreter(new_program, new_model)
    state = new.state
    shaped: dict[str, tuple[int, int]] = {}  # state name -> (layer, core) for every core-shaped array
    for li, names in enumerate(program.cores):
        for k, name in enumerate(names):
            stored = program.stored_name(name)
            for key in interp.state:
                if key == stored or key.startswith(stored + "."):
                    shaped[key] = (li, k)
    for key in state:
        old = interp.state[key]
        if key in shaped:
            li, k = shaped[key]
            layer_keeps = keeps[li]
            state[key] = _slice_core(old, program.core_shapes[li][k], program.orders[li],
                                     layer_keeps[k - 1] if k > 0 else None,
                                     layer_keeps[k] if k < len(layer_keeps) else None)
        elif any(key in (lam, prec) for bonds in program.priors for lam, prec in bonds):
            li, k = next((li, k) for li, bonds in enumerate(program.priors) for k, pair in enumerate(bonds) if key in pair)
            state[key] = old[keeps[li][k]].copy()
        else:
            state[key] = old.copy()  # biases and their optimizer state, registers, scales, counters
    return PruneResult(new, new_model, before, after)
