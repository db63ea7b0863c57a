"""The fixed-point training loop: every step runs through the reference interpreter.

The float model is built exactly as for float training (same seed, same initialization), compiled
into a training program for ``train.batch_size`` samples, and its cores and biases are rounded into
the program's formats once. From then on the training state is integers only: each step is
``Interpreter.step`` on input codes, and test accuracy comes from ``Interpreter.predict`` (integer
forward pass). Floats appear only in reporting (the cross-entropy shown as loss is computed from the
logit codes in float64; it never feeds back into training).

Batches: the program has a fixed batch B, so an epoch takes floor(N / B) full batches of its
(seed, epoch) shuffle and **drops the last partial batch**; the dropped samples differ from epoch
to epoch. Padding instead would put zero inputs with made-up labels into the summed loss.

Checkpoints hold the interpreter's exact integer state (cores or their master copies, biases,
optimizer buffers such as Adam's moments, scale controllers, saturation counters, the global step) and the position in the run, so a resumed run
is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import save_config, to_toml
from ..data import NUM_CLASSES
from ..errors import ConfigError
from ..bayes import truncate
from ..fixed import Interpreter
from ..fixed.prune import bond_lambdas, prune_program
from ..models import MLP, build_model
from .checkpoint import save_checkpoint
from .config import RunConfig
from .loop import (CHECKPOINT, CONFIG, RANKS_PLOT, Callback, RunResult, close_epoch, load_split, new_run_state,
                   record_step, resume_checkpoint, shuffle, write_results)
from .plots import plot_ranks
from .rank_adapt import prior_active, prune_scheduled

__all__ = ["MODE", "train_fixed", "quantize_inputs"]

MODE = "fixed point (reference interpreter)"


def quantize_inputs(interp: Interpreter, x: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Float inputs (N, D) as codes of the program's input format, in the narrowest int dtype.

    MNIST at 16 bits is 60,000 x 896 x 2 bytes = 108 MB instead of 430 MB as int64.
    """
    width = interp.program.buffer(interp.program.input).fmt.width
    dtype = np.int16 if width <= 16 else np.int32 if width <= 32 else np.int64
    out = np.empty(x.shape, dtype)
    for i in range(0, len(x), chunk):
        out[i : i + chunk] = interp.quantize_input(x[i : i + chunk])
    return out


def _xent(logit_codes: np.ndarray, frac: int, labels: np.ndarray) -> tuple[float, int]:
    """Summed cross-entropy (float64, for reporting only) and correct count of (B, C) logit codes."""
    z = np.ldexp(logit_codes.astype(np.float64), -frac)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(labels)), labels].sum()), int((logit_codes.argmax(axis=1) == labels).sum())


def evaluate_fixed(interp: Interpreter, codes: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of the integer forward pass on (codes, labels)."""
    logits = interp.predict(codes)  # (N, C) codes at the logits' current frac
    loss, correct = _xent(logits, interp.frac(interp.program.logits), labels)
    return loss / len(labels), correct / len(labels)


def _shrink_to(model: MLP, ranks: list[list[int]]) -> None:
    """Cut the model's TT layers to ``ranks`` (first indices kept; a checkpoint's state follows)."""
    for layer, layer_ranks in zip(model.layers, ranks):
        for bond, r in enumerate(layer_ranks):
            if r < layer.ranks[bond]:
                truncate(layer, bond, list(range(r)))  # type: ignore[arg-type]


def _ranks_log(interp: Interpreter, pruned: int) -> dict[str, Any]:
    """The epoch's rank log, keyed by layer name as the float loop's (``ttedge ranks`` reads it)."""
    lambdas = bond_lambdas(interp)
    return {
        "ranks": {f"layers.{li}": [len(lam) for lam in layer] for li, layer in enumerate(lambdas)},
        "pruned": pruned,
        "lambdas": {f"layers.{li}": [sorted(lam.tolist(), reverse=True) for lam in layer] for li, layer in enumerate(lambdas)},
    }


def _state_tensors(interp: Interpreter) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.asarray(v, np.int64)) for k, v in interp.state_dict().items()}


def train_fixed(cfg: RunConfig, run_dir: str | os.PathLike[str], resume: bool = False,
                callback: Callback | None = None) -> RunResult:
    """Train the TT model of ``cfg`` wholly in fixed point in ``run_dir`` (see the module docstring)."""
    emit = callback or (lambda event, info: None)
    run_dir = Path(run_dir)
    tc, fc = cfg.train, cfg.fixed
    if tc.threads:
        torch.set_num_threads(tc.threads)
    x_train, y_train = load_split(cfg.data, "train")
    x_test, y_test = load_split(cfg.data, "test")
    batch = tc.batch_size
    steps_per_epoch = len(x_train) // batch
    if steps_per_epoch == 0:
        raise ConfigError(
            f"train.batch_size = {batch} exceeds the {len(x_train)} training samples; fixed-point training "
            "drops partial batches, so choose a smaller batch."
        )
    total = tc.epochs * steps_per_epoch
    model = build_model(cfg.model, x_train.shape[1], NUM_CLASSES, seed=tc.seed)
    precision, prior = fc.precision(), cfg.fixed_prior(len(x_train))
    config_text = to_toml(cfg)
    ckpt = resume_checkpoint(run_dir, config_text) if resume else None
    if ckpt is not None and ckpt.get("ranks"):
        _shrink_to(model, ckpt["ranks"])  # ranks pruned before the checkpoint; its state fills the cores
    program = cfg.compile_fixed(model, batch, len(x_train))
    interp = Interpreter(program, model)
    # The integer matmuls run in float64 BLAS (exact), whose threads torch.set_num_threads does not
    # reach; threadpoolctl (a scikit-learn dependency) limits them.
    limits: Any = nullcontext()
    if tc.threads:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(tc.threads)
    with limits:
        codes = quantize_inputs(interp, x_train.numpy())
        test_codes = quantize_inputs(interp, x_test.numpy())
        labels, test_labels = y_train.numpy(), y_test.numpy()

        state = new_run_state()
        if ckpt is not None:
            interp.load_state_dict({k: v.numpy() for k, v in ckpt["fixed_state"].items()})
            state = {k: ckpt[k] for k in state}
        else:
            run_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, run_dir / CONFIG)
            if fc.calibrate_rounds:
                first = shuffle(len(codes), tc.seed, 0)[:batch].numpy()
                interp.calibrate(codes[first], labels[first], rounds=fc.calibrate_rounds)

        def checkpoint() -> None:
            save_checkpoint(run_dir / CHECKPOINT, {"config": config_text, "fixed_state": _state_tensors(interp),
                                                   "ranks": [list(layer.ranks) for layer in model.layers], **state})

        extra = {"precision": fc.precision_strings(), "optimizer": fc.optimizer, "lr": 2.0 ** -fc.lr_shift,
                 "momentum_shift": fc.momentum_shift,
                 "rounding": fc.rounding, "acc_width": fc.acc_width, "grad_acc_width": fc.grad_acc_width,
                 "dropped_per_epoch": len(codes) - steps_per_epoch * batch, "step_macs": program.macs}
        emit("start", {"total_steps": total, "steps_per_epoch": steps_per_epoch,
                       "start_step": state["epoch"] * steps_per_epoch + state["step_in_epoch"]})
        while state["epoch"] < tc.epochs:
            epoch = state["epoch"]
            order = shuffle(len(codes), tc.seed, epoch).numpy()
            # The host's learning-rate schedule: one more right shift after each listed epoch.
            interp.state["lr.decay"] = np.array(sum(e <= epoch for e in fc.lr_decay_epochs), np.int64)
            if prior is not None:  # the host's prior schedule: on from the warm-up to end_epoch
                interp.state["prior.on"] = np.array(int(prior_active(cfg.bayes, epoch * steps_per_epoch, steps_per_epoch)), np.int64)
            t0 = time.perf_counter()
            for i in range(state["step_in_epoch"], steps_per_epoch):
                step = epoch * steps_per_epoch + i
                idx = order[i * batch : (i + 1) * batch]
                frac = interp.frac(program.logits)  # the step's own; its scale phase may move it
                interp.step(codes[idx], labels[idx])
                loss, correct = _xent(interp.buffers[program.logits][:, : program.num_classes], frac, labels[idx])
                record_step(state, i, loss, correct, batch, time.perf_counter() - t0)
                t0 = time.perf_counter()
                if tc.checkpoint_every and (step + 1) % tc.checkpoint_every == 0 and i + 1 < steps_per_epoch:
                    checkpoint()
                emit("step", {"step": step + 1, "loss": loss / batch})
            ranks_log: dict[str, Any] = {}
            if prior is not None:
                pruned = 0
                if prune_scheduled(cfg.bayes, epoch + 1):
                    result = prune_program(interp, model, precision, prior, cfg.bayes.threshold_factor,
                                           fc.order_search or None)  # type: ignore[arg-type]
                    interp, model, program, pruned = result.interpreter, result.model, result.interpreter.program, result.num_removed
                ranks_log = _ranks_log(interp, pruned)
            test_loss, test_acc = evaluate_fixed(interp, test_codes, test_labels)
            saturated = sum(int(v) for k, v in interp.state.items() if k.startswith("sat."))
            metrics = close_epoch(state, steps_per_epoch, test_loss, test_acc,
                                  lr=2.0 ** -(fc.lr_shift + int(interp.state["lr.decay"])),
                                  saturated_codes=saturated,  # codes clamped at a format's rail so far, all buffers
                                  parameters=sum(p.numel() for p in model.parameters()), **ranks_log)
            checkpoint()
            interp.to_model(model)
            write_results(run_dir, cfg, model, state["epochs"], plot=False, mode=MODE, extra=extra)
            emit("epoch", metrics)
    interp.to_model(model)
    summary = write_results(run_dir, cfg, model, state["epochs"], plot=True, mode=MODE, extra=extra)
    if prior is not None:
        plot_ranks(state["epochs"], run_dir / RANKS_PLOT, title=f"{cfg.name}: gamma prior, fixed point")
    return RunResult(run_dir, model, state["epochs"], summary, interp)
