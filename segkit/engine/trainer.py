"""The trainer base both pipelines run on: iteration-based training on CPU, one GPU, or DDP under torchrun.

`TrainerBase(cfg, resume, overwrite)` starts the process, lets the subclass build data, model and loss,
builds optimizer, LR schedule and AMP from the shared SOLVER keys, resumes, and `train()` runs iterations
`start_iter .. max_iter`. What it owns, so that both trainers do it the same way:

- The step: autocast, ONE all-reduce per iteration that carries the non-finite-loss check and the stop
  request (every process stops at the same iteration, none hangs in a collective the others left),
  GradScaler, gradient clipping (SOLVER.CLIP_GRAD_NORM), optimizer and scheduler steps, the EMA update.
- Checkpoints (`model_<iteration>.pth` every `checkpoint_period`, `model_final.pth`), written atomically by
  the main process after every rank took rank 0's BatchNorm statistics; weights that are not finite are
  never written. Resume from the newest readable checkpoint, with the config reconciled (RESTORED_BY_CHECKPOINT).
- One seeding rule: before iteration k every process reseeds python, numpy and torch from (SEED, rank, k)
  (`utils.seed.iteration_seed`), and the loaders seed each item from its stream position, so iteration k
  draws the same batch and randomness whether or not the run was interrupted before it.
- Events, the progress line with ETA every LOG_PERIOD, the evaluation hook every `eval_period`.
- Preemption (SIGTERM, SIGUSR1, Ctrl-C): the current iteration is saved and the process exits with
  EXIT_PREEMPTED (75) after one line saying how to continue. Under `torchrun --max-restarts N` a restarted
  worker group resumes by itself (TORCHELASTIC_RESTART_COUNT). A signal during an evaluation ends it early
  (a launcher kills workers that take too long to stop): the weights are saved with that evaluation pending,
  and the resumed run does it first.

A subclass implements:

- `build()`: data, `self.model` (the module trained and saved), `self.max_iter`, `self.warmup_iters`, loss,
  `self.eval_period` and `self.checkpoint_period` (0: never), optionally `self.ema` (a solver.ModelEma,
  updated after every step and saved as "ema").
- `next_batch(iteration)`: the batch of that iteration (the loaders are rebuilt from `start_iter`).
- `close_data()`: drop the loaders `next_batch` built (called when `train()` ends, however it ends).
- `compute_losses(batch) -> dict[str, Tensor]`: run under autocast; "loss" is back-propagated, every other
  "loss*" entry is logged. Override it to add terms (distillation) without touching the step. Entries that
  are not losses (a teacher's ms per iteration, a pseudo-label accuracy) are logged too when `build` names
  them in `self.logged_metrics`; one may be missing from an iteration or a process (averaged where present).
- optionally `self.extra_trainable` (set in `build`): modules trained beside the model (a distillation
  projection): optimised with it, but neither saved with it nor DDP-wrapped with it (`extra_state` and
  `wrap_for_training` do that for them).
- `evaluate(iteration) -> dict`: the periodic and final evaluation; its loops ask `stop_requested` between
  batches and raise `segkit.utils.comm.StoppedEarly` (`stopped_on_any`) when a stop signal came.
- optionally `extra_state(iteration)` / `load_extra_state(ckpt, path)` for its own checkpoint entries.

Frozen modules (a distillation teacher): `register_frozen(name, module)` moves the module to the device in
eval mode without gradients and keeps it in `self.frozen[name]`. It is not part of `self.model`, so it is
in neither the optimizer nor the checkpoints; each start rebuilds it from its own weights file, and the
checkpoint records a fingerprint of its weights, so a resume with other teacher weights is an error
instead of a silent change of the objective.
"""
from __future__ import annotations

import hashlib
import math
import os
import time
from typing import Any

import torch
from torch import nn

from ..config import save_cfg
from ..solver import build_lr_scheduler, build_optimizer, clip_gradients
from ..utils.amp import autocast
from ..utils.checkpoint import (CheckpointError, checkpoint_candidates, extract_model_state, find_last_checkpoint,
                                load_newest_readable, model_entries, prune_checkpoints, save_checkpoint, save_state)
from ..utils.comm import (StoppedEarly, all_reduce_sum, barrier, broadcast_buffers, broadcast_state,
                          is_main_process, reduce_mean_dict)
from ..utils.events import EventWriter, draw_curves
from ..utils.meters import WindowMeters, format_eta
from ..utils.seed import iteration_seed, seed_everything
from .preemption import EXIT_PREEMPTED, Preempted, StopRequest, elastic_restart_count, resume_flags
from .run import claim_output_dir, reconcile_resumed_config, setup_amp, start_run

FINAL_CHECKPOINT = "model_final.pth"
TRAINING_KEYS = ("model", "optimizer", "scheduler", "scaler", "iteration", "config", "kind", "model_name", "ema",
                 "frozen", "pending_evaluation")


class NonFiniteError(FloatingPointError):
    """The loss or the weights stopped being finite; training stops without writing a checkpoint."""


def periodic_checkpoint_name(iteration: int) -> str:
    return f"model_{iteration:07d}.pth"


def weights_fingerprint(module: nn.Module) -> str:
    """A short digest of a module's state: equal weights, equal fingerprint."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


class TrainerBase:
    """The engine both trainers subclass (see the module docstring for the hooks)."""

    CHECKPOINT_KIND = "model"  # a subclass names what it trains ("segmentor", "classifier")

    def __init__(self, cfg: Any, resume: bool = False, overwrite: bool = False) -> None:
        resume, overwrite = resume_flags(resume, overwrite)
        claim_output_dir(cfg.OUTPUT_DIR, resume, overwrite)  # refuses a run over a run before writing
        self.cfg = cfg
        self.run = run = start_run(cfg.OUTPUT_DIR, cfg.SEED, cfg.DETERMINISTIC)
        self.rank, self.world_size, self.device, self.logger = run.rank, run.world_size, run.device, run.logger
        if elastic_restart_count():
            self.logger.info("torchrun restart %d: resuming from the newest readable checkpoint in %s",
                             elastic_restart_count(), cfg.OUTPUT_DIR)
        self.frozen: dict[str, nn.Module] = {}
        self.ema: nn.Module | None = None
        self.eval_period = self.checkpoint_period = 0  # iterations between evaluations / checkpoints (build sets them)
        self.extra_trainable: list[nn.Module] = []  # optimised beside self.model (see the module docstring)
        self.logged_metrics: tuple[str, ...] = ()  # compute_losses entries that are logged but are not losses
        self.model: nn.Module
        self.max_iter: int
        self.warmup_iters: int
        self.build()

        self.optimizer = build_optimizer(cfg, self.model, extra_modules=self.extra_trainable)
        self.scheduler = build_lr_scheduler(cfg, self.optimizer, self.max_iter, self.warmup_iters)
        self.amp_dtype, self.scaler = setup_amp(cfg.SOLVER.AMP.ENABLED, cfg.SOLVER.AMP.DTYPE, run)
        self.train_model = self.wrap_for_training(self.model)
        self.stop = StopRequest()
        self.stop_agreed = False
        # The iteration whose evaluation a stop signal cut short: saved, and run first when the run resumes.
        self.pending_evaluation: int | None = None
        self.start_iter = 0
        if resume:
            self.resume()
        path = os.path.join(cfg.OUTPUT_DIR, "config.yaml")
        if self.rank == 0:  # written once the run is built: a start that failed leaves no config.yaml
            save_cfg(self.cfg, path)
        self.logger.info("rank %d of %d on %s; config saved to %s", self.rank, self.world_size, self.device, path)
        self.events = EventWriter(cfg.OUTPUT_DIR, cfg.LOG.TENSORBOARD, self.start_iter, enabled=is_main_process())

    # ------------------------------------------------------------------ hooks
    def build(self) -> None:
        """Data, model, loss (see the module docstring)."""
        raise TypeError(f"{type(self).__name__} must define build()")

    def next_batch(self, iteration: int) -> Any:
        raise TypeError(f"{type(self).__name__} must define next_batch()")

    def close_data(self) -> None:
        """Drop the training loaders, which shuts their worker processes down; `train()` calls it however
        it ends. The workers ignore SIGTERM (`segkit.data.worker_init_fn`: a scheduler's signal to the process
        group must leave them to the trainer's last save), so a loader still held when the interpreter exits
        (a trainer kept by a reference cycle) hangs the exit: multiprocessing's exit handler terminates its
        workers with SIGTERM and then joins them, forever."""

    def compute_losses(self, batch: Any) -> dict[str, torch.Tensor]:
        raise TypeError(f"{type(self).__name__} must define compute_losses()")

    def evaluate(self, iteration: int) -> dict[str, Any]:
        raise TypeError(f"{type(self).__name__} must define evaluate()")

    def extra_state(self, iteration: int) -> dict[str, Any]:
        """Entries a subclass adds to the checkpoint of `iteration`."""
        return {}

    def load_extra_state(self, ckpt: dict[str, Any], path: str) -> None:
        """Restore what `extra_state` wrote."""

    def after_final_checkpoint(self, state: dict[str, Any]) -> None:
        """Called on the main process after model_final.pth is written (pretraining exports its backbone)."""

    def wrap_for_training(self, model: nn.Module) -> nn.Module:
        """The module the step calls: DDP over several processes."""
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            wrapped = nn.parallel.DistributedDataParallel(model, device_ids=ids)  # gives every rank rank 0's weights
            if self.ema is not None:  # copied from this rank's initial weights: it starts from rank 0's too
                broadcast_state(getattr(self.ema, "module", self.ema))
            return wrapped
        return model

    def register_frozen(self, name: str, module: nn.Module) -> nn.Module:
        """Keep `module` (a teacher) on the device, in eval mode, without gradients; see the module docstring."""
        trained = {id(p) for p in self.model.parameters()} if hasattr(self, "model") else set()
        if any(id(p) in trained for p in module.parameters()):
            raise ValueError(f"frozen module '{name}' shares parameters with the trained model")
        self.frozen[name] = module.to(self.device).eval().requires_grad_(False)
        return self.frozen[name]

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_state(self, iteration: int) -> dict[str, Any]:
        return {
            **model_entries(self.model.state_dict(), self.cfg, self.CHECKPOINT_KIND),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "iteration": int(iteration),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "frozen": {name: weights_fingerprint(m) for name, m in self.frozen.items()},
            "pending_evaluation": self.pending_evaluation,
            **self.extra_state(iteration),
        }

    def save(self, name: str, iteration: int, marker: bool = True) -> dict[str, Any]:
        """Write a full checkpoint (main process), refusing weights that are not finite (the last good one
        stays); `marker=False` leaves the resume marker alone (model_best.pth). Returns the state."""
        # Every rank holds the same weights, so every rank reaches the same verdict without talking.
        modules = {"": self.model, **({"ema.": getattr(self.ema, "module", self.ema)} if self.ema is not None else {})}
        for module in (*modules.values(), *self.extra_trainable):
            broadcast_buffers(module)  # every rank holds (and later evaluates, and resumes from) what is written
        bad = [p + k for p, m in modules.items() for k, v in m.state_dict().items()
               if v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            raise NonFiniteError(
                f"weights {bad[:3]} are not finite after iteration {iteration}; not writing {name}. "
                f"Last good checkpoint: {find_last_checkpoint(self.cfg.OUTPUT_DIR) or 'none'}"
            )
        state = self.checkpoint_state(iteration)
        if is_main_process():
            path = os.path.join(self.cfg.OUTPUT_DIR, name)
            (save_checkpoint if marker else save_state)(path, state)
            self.logger.info("saved %s", path)
        barrier()
        return state

    def save_periodic(self, iteration: int) -> None:
        self.save(periodic_checkpoint_name(iteration), iteration)
        if is_main_process():
            prune_checkpoints(self.cfg.OUTPUT_DIR, self.cfg.SOLVER.CHECKPOINT_KEEP)
        self._saved_iter = iteration

    def resume(self) -> None:
        """Continue from the newest readable checkpoint in OUTPUT_DIR (a fresh start when there is none).

        A checkpoint of another kind or model is an error naming both; config keys that differ from the
        checkpoint's are listed with the value the run uses, and the config (config.yaml) takes it.
        """
        found = load_newest_readable(self.cfg.OUTPUT_DIR, self.logger.warning)
        if found is None:
            unreadable = [os.path.basename(p) for p in checkpoint_candidates(self.cfg.OUTPUT_DIR)]
            if unreadable:  # a start from scratch would write over the run those files belong to
                raise CheckpointError(f"--resume: no checkpoint in {self.cfg.OUTPUT_DIR} loads ({', '.join(unreadable)}"
                                      "; the reasons are logged above): restore one, or start afresh with --overwrite")
            self.logger.info("--resume: no checkpoint in %s, starting from scratch", self.cfg.OUTPUT_DIR)
            return
        path, ckpt = found
        missing = [k for k in TRAINING_KEYS if k not in ckpt and k not in ("ema", "frozen", "pending_evaluation")]
        if missing:
            raise CheckpointError(f"{path} is not a training checkpoint: it has no {missing} entries")
        if (ckpt["kind"], ckpt["model_name"]) != (self.CHECKPOINT_KIND, self.cfg.MODEL.NAME):
            raise CheckpointError(f"{path} is a checkpoint of {ckpt['kind']} '{ckpt['model_name']}', "
                                  f"this run trains {self.CHECKPOINT_KIND} '{self.cfg.MODEL.NAME}'")
        self.cfg, changes = reconcile_resumed_config(ckpt["config"], self.cfg)
        if changes:
            self.logger.warning("the config differs from the one %s was trained with:\n  %s", path,
                                "\n  ".join(changes))
        for name, fingerprint in (ckpt.get("frozen") or {}).items():
            if name in self.frozen and weights_fingerprint(self.frozen[name]) != fingerprint:
                raise CheckpointError(f"{path} was trained with other '{name}' weights than this run loads; "
                                      f"resume with the same {name} or start a new run")
        self.model.load_state_dict(extract_model_state(ckpt))
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt["scaler"]:  # empty when the saving run had no active GradScaler
            self.scaler.load_state_dict(ckpt["scaler"])
        if self.ema is not None:
            if ckpt.get("ema") is None:
                raise CheckpointError(f"{path} has no EMA state but this run keeps an EMA")
            self.ema.load_state_dict(ckpt["ema"])
        self.load_extra_state(ckpt, path)
        self.start_iter = int(ckpt["iteration"])
        self.pending_evaluation = ckpt.get("pending_evaluation")
        self.logger.info("resumed from %s at iteration %d", path, self.start_iter)

    # ------------------------------------------------------------------ the step
    def run_step(self, batch: Any, iteration: int) -> dict[str, float]:
        """One optimisation step on `batch`; returns the losses of this rank as floats.

        The one all-reduce of the step sums, over processes, whether the losses are finite, whether a stop
        was requested and the losses: a NaN on one process stops all of them with the same message (the losses
        averaged over processes, a NaN on one process making its term NaN), and a signal
        that reached one process stops all of them after this same iteration (`stop_agreed`).
        """
        with autocast(self.device, self.amp_dtype):
            losses = self.compute_losses(batch)
        if "loss" not in losses:
            raise KeyError(f"compute_losses() must return the total as 'loss', got {sorted(losses)}")
        loss = losses["loss"]
        names = list(losses)
        values = torch.stack([v.detach().float().reshape(()) for v in losses.values()])
        flags = torch.cat([torch.stack([(~torch.isfinite(values)).any().float(),
                                        torch.tensor(float(self.stop.requested), device=values.device)]), values])
        all_reduce_sum(flags)
        bad, stops = flags[:2].tolist()
        if bad > 0:
            # The losses summed over processes, so every process names the same values: a NaN on any is NaN here.
            mean = (flags[2:] / self.world_size).tolist()
            raise NonFiniteError(
                f"non-finite loss at iteration {iteration + 1}: "
                + ", ".join(f"{n}={v:.4g}" for n, v in zip(names, mean))
                + f" (on {int(bad)} of {self.world_size} processes). Stopping; last good checkpoint: "
                + f"{find_last_checkpoint(self.cfg.OUTPUT_DIR) or 'none'}. Lower SOLVER.BASE_LR, lengthen "
                + "the warmup or set SOLVER.CLIP_GRAD_NORM."
            )
        self.stop_agreed = stops > 0
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        clip_gradients([p for g in self.optimizer.param_groups for p in g["params"]], self.cfg.SOLVER.CLIP_GRAD_NORM,
                       scaler=self.scaler, optimizer=self.optimizer)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return dict(zip(names, values.tolist()))

    # ------------------------------------------------------------------ the loop
    def train(self) -> dict[str, Any]:
        """Run from `start_iter` to `max_iter`; returns the final evaluation metrics.

        Raises `Preempted` (a SystemExit with EXIT_PREEMPTED) after saving when a stop signal arrived.
        """
        log_period = max(1, self.cfg.LOG_PERIOD)
        meters = WindowMeters(log_period)
        self._saved_iter = self.start_iter
        self.train_model.train()
        self.logger.info("training from iteration %d to %d", self.start_iter, self.max_iter)
        try:
            metrics = self._train_loop(meters, log_period)
        finally:
            self.close_data()
        self.events.close()
        if is_main_process():
            draw_curves(self.cfg.OUTPUT_DIR)
        return metrics

    def _train_loop(self, meters: WindowMeters, log_period: int) -> dict[str, Any]:
        with self.stop:
            if self.pending_evaluation is not None and self.pending_evaluation < self.max_iter:
                self._evaluate_or_stop(self.pending_evaluation)  # the evaluation a signal cut short, redone
            for it in range(self.start_iter, self.max_iter):
                start = time.perf_counter()
                seed_everything(iteration_seed(self.cfg.SEED, self.rank, it))
                batch = self.next_batch(it)
                data_time = time.perf_counter() - start
                losses = self.run_step(batch, it)
                meters.update(time=time.perf_counter() - start, data_time=data_time, **losses)
                done = it + 1
                if done % log_period == 0 or done == self.max_iter:
                    self.log_progress(done, meters)
                if done < self.max_iter:
                    self.after_iteration(done)
                    if self.stop_agreed:
                        self._stop_here(done)
            if self.start_iter >= self.max_iter and self.pending_evaluation != self.max_iter:
                self.logger.info("already at iteration %d of %d: nothing to train", self.start_iter, self.max_iter)
                metrics = self.final_metrics()
            else:
                metrics = self._evaluate_or_stop(self.max_iter)
                state = self.save(FINAL_CHECKPOINT, self.max_iter)
                if is_main_process():
                    self.after_final_checkpoint(state)
        return metrics

    def after_iteration(self, done: int) -> None:
        """The periodic work after iteration `done` (< max_iter): evaluation, then the checkpoint (which then
        holds what the evaluation recorded)."""
        if self.eval_period > 0 and done % self.eval_period == 0:
            self._evaluate_or_stop(done)
        if self.checkpoint_period > 0 and done % self.checkpoint_period == 0:
            self.save_periodic(done)

    def _evaluate_or_stop(self, iteration: int) -> dict[str, Any]:
        """`evaluate(iteration)`; when a stop signal cuts it short (on any process), save the weights with the
        evaluation marked pending, so a resumed run redoes it first, and stop (Preempted)."""
        try:
            metrics = self.evaluate(iteration)
        except StoppedEarly:
            self.pending_evaluation = iteration
            self._saved_iter = None  # the checkpoint must be written again, now with the pending evaluation
            self._stop_here(iteration)  # raises Preempted
            raise
        self.pending_evaluation = None
        return metrics

    def stop_requested(self) -> bool:
        """Whether this process received a stop signal, or all processes agreed to stop after this iteration
        (the signal reached another one): long evaluations ask it between images, so none starts then."""
        return self.stop.requested or self.stop_agreed

    def final_metrics(self) -> dict[str, Any]:
        """What `train()` returns when a resumed run has nothing left to train."""
        return self.evaluate(self.max_iter)

    def _stop_here(self, done: int) -> None:
        if self._saved_iter != done:
            self.save_periodic(done)
        self.events.close()
        message = (f"stopped by {self.stop.signal_name or 'a signal on another process'} after iteration {done} of "
                   f"{self.max_iter}, saved in {os.path.join(self.cfg.OUTPUT_DIR, periodic_checkpoint_name(done))}; "
                   f"continue with the same command and --resume (exit code {EXIT_PREEMPTED})")
        self.logger.warning(message)
        raise Preempted(message)

    def log_progress(self, done: int, meters: WindowMeters) -> None:
        """The LOG_PERIOD line (losses averaged over processes, LR, time, data time, ETA) and its events."""
        losses = reduce_mean_dict(meters.averages("loss"), self.device)
        sec = meters.avg("time")
        eta = format_eta(sec * (self.max_iter - done))
        mem = ""
        if self.device.type == "cuda":
            mem = f"  max_mem: {torch.cuda.max_memory_allocated(self.device) / 2**20:.0f}M"
        metrics = self.reduce_metrics(meters)
        lr = self.optimizer.param_groups[0]["lr"]
        self.logger.info(
            "%siter: %d/%d  %s%s  lr: %.4g  time: %.3fs/it  data: %.3fs  eta: %s%s",
            self.progress_prefix(done), done, self.max_iter,
            "  ".join(f"{k}: {v:.4f}" for k, v in sorted(losses.items(), key=_loss_order)),
            "".join(f"  {k}: {v:.4g}" for k, v in metrics.items()),
            lr, sec, meters.avg("data_time"), eta, mem,
        )
        self.events.scalars(done, {**losses, **metrics, "lr": lr, "time": sec, "data_time": meters.avg("data_time")})

    def reduce_metrics(self, meters: WindowMeters) -> dict[str, float]:
        """The window averages of `logged_metrics`, averaged over the processes that measured each; one that no
        process measured in the window is left out. Every process reduces the same fixed list, so none waits."""
        if not self.logged_metrics:
            return {}
        avgs = [meters.avg(name) for name in self.logged_metrics]
        sums = torch.tensor([[0.0, 0.0] if math.isnan(v) else [v, 1.0] for v in avgs], device=self.device)
        all_reduce_sum(sums)
        return {name: total / count for name, (total, count) in zip(self.logged_metrics, sums.tolist()) if count}

    def progress_prefix(self, done: int) -> str:
        """Text before "iter:" in the progress line (pretraining names the epoch)."""
        return ""


def _loss_order(item: tuple[str, float]) -> tuple[bool, bool, str]:
    # The total first, then the main head, then the auxiliary heads by name.
    return item[0] != "loss", item[0] != "loss_main", item[0]
