"""The one adapter training loop every method reuses; the method brings its loss, data and parameters.

Built on `accelerate`: device placement, mixed precision on GPUs, gradient accumulation, and data parallel over
processes (`accelerate launch --multi_gpu --num_processes N -m customvid train-subject ...`; gloo on a CPU).
A step's global batch is split by sample index: process r of W, micro-step m takes the step's samples
[(m*W + r)*b, (m*W + r + 1)*b), and every random draw of a sample is seeded by (seed, step, sample index).
So the same global batch gives the same update on 1 or N processes (DDP averages the per-process means), and
a resumed run continues exactly: the loop itself holds no RNG state.
"""

from __future__ import annotations

import json
import math
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from customvid.errors import CustomvidError
from customvid.training.checkpoint import load_checkpoint, save_checkpoint

# loss_fn(step, sample_indices) -> mean loss over those samples of the step's global batch
LossFn = Callable[[int, Sequence[int]], torch.Tensor]
# the trainable tensors: a list (all at cfg.lr), or optimizer groups [{"params": [...], "lr_scale": s}, ...]
Params = list[torch.nn.Parameter] | list[dict]


@dataclass
class LoopConfig:
    steps: int = 400
    batch_size: int = 4  # global: samples per optimizer step, over all processes and micro-steps
    grad_accum: int = 1
    lr: float = 1e-4
    weight_decay: float = 1e-2
    warmup: int = 0
    mixed_precision: str = "no"  # "fp16" / "bf16" on GPUs
    seed: int = 0
    checkpoint_every: int = 50
    sample_every: int = 100  # 0: no sample sheets
    log_every: int = 10
    # "constant" after warm-up, or "cosine": down to 10 % of lr at `steps` (then --steps on a resume moves the curve)
    lr_schedule: str = "constant"

    def to_json(self) -> dict:
        return asdict(self)


def sample_generator(seed: int, step: int, index: int, stream: int = 0) -> torch.Generator:
    """The generator of one sample's random draws (noise, timestep, ...): independent of how the batch is split."""
    state = np.random.SeedSequence([seed, step, index, stream]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & (2**63 - 1))


class _Trainable(torch.nn.Module):
    """What DDP wraps: the modules holding trainable tensors. Its forward runs the method's loss, so gradients of
    every parameter used inside are synchronised."""

    def __init__(self, unet: torch.nn.Module, text_encoder: torch.nn.Module, modules: Sequence[torch.nn.Module] = ()):
        super().__init__()
        self.unet, self.text_encoder = unet, text_encoder
        self.extra = torch.nn.ModuleList(modules)  # a method's own modules outside the base model

    def forward(self, loss_fn: LossFn, step: int, indices: Sequence[int]) -> torch.Tensor:
        return loss_fn(step, indices)


def make_accelerator(cfg: LoopConfig):
    """accelerate's Accelerator for this run. Without a GPU it runs on the CPU; launched as
    `accelerate launch --multi_gpu --num_processes N` (accelerate's name for multi-process, CPUs included) the
    processes train data-parallel over gloo."""
    from accelerate import Accelerator

    return Accelerator(
        gradient_accumulation_steps=cfg.grad_accum,
        mixed_precision=cfg.mixed_precision,
        cpu=not torch.cuda.is_available(),
    )


LR_SCHEDULES = ("constant", "cosine")
# keys added to LoopConfig after runs were made, with the value those runs had (check_run_config's defaults)
LOOP_ADDED_KEYS = {"loop.lr_schedule": "constant"}


def _lr_factor(step: int, cfg: LoopConfig) -> float:
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    if cfg.lr_schedule == "constant":  # the default: adapter runs are short, and resumes stay exact at any length
        return 1.0
    # cosine: long runs (zero-shot's modules) settle instead of wandering between checkpoints at a constant rate
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def train_loop(
    run_dir: Path,
    components,
    params: Params,
    loss_fn: LossFn,
    cfg: LoopConfig,
    sample_fn: Callable[[Path], None] | None = None,
    progress: bool = True,
    accelerator=None,
    modules: Sequence[torch.nn.Module] = (),
) -> int:
    """Train `params` (already requires_grad) for cfg.steps; resumes from run_dir/checkpoint. Returns the step.
    Groups may scale the rate (a token row learns at a textual-inversion rate beside fully tuned layers).
    `modules`: a method's layers that live outside the UNet and text encoder (moved, and wrapped for DDP)."""
    if cfg.lr_schedule not in LR_SCHEDULES:
        raise CustomvidError(f"unknown lr schedule {cfg.lr_schedule!r}; expected one of {', '.join(LR_SCHEDULES)}")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    accelerator = accelerator or make_accelerator(cfg)
    world, rank = accelerator.num_processes, accelerator.process_index
    if cfg.batch_size % (world * cfg.grad_accum):
        raise CustomvidError(
            f"batch size {cfg.batch_size} does not split into {world} processes x {cfg.grad_accum} accumulation steps"
        )
    local = cfg.batch_size // (world * cfg.grad_accum)
    groups = [dict(g) for g in params] if params and isinstance(params[0], dict) else [{"params": params}]
    params = [p for g in groups for p in g["params"]]
    if not params:
        raise CustomvidError("the adapter has no trainable parameters")
    components.to(accelerator.device)
    # the frozen base runs as at inference (no dropout): its behaviour is what the adapter must fit, and the
    # update does not depend on how many processes share the batch
    components.unet.eval()
    components.text_encoder.eval()
    for m in modules:
        m.to(accelerator.device)
    model = _Trainable(components.unet, components.text_encoder, modules)
    for g in groups:
        g["lr_scale"] = g.get("lr_scale", 1.0)
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    model, opt = accelerator.prepare(model, opt)
    state = {"adapter": torch.nn.ParameterList(params)}

    step = 0
    if (resumed := load_checkpoint(run_dir / "adapter_run", state, opt)) is not None:
        step = resumed[0]
    log = open(run_dir / "loss_log.jsonl", "a") if accelerator.is_main_process else None
    bar = tqdm(total=cfg.steps, initial=step, desc="adapter", disable=not (progress and accelerator.is_main_process))
    t0 = time.time()
    window: list[float] = []  # losses since the last log line: one batch's loss is too noisy to read progress from
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # kill = Ctrl-C: checkpoint, then stop

    def checkpoint() -> None:
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            save_checkpoint(run_dir / "adapter_run", step, state, opt, {})

    try:
        while step < cfg.steps:
            for g in opt.param_groups:
                g["lr"] = cfg.lr * g["lr_scale"] * _lr_factor(step, cfg)
            total = torch.zeros((), device=accelerator.device)
            for micro in range(cfg.grad_accum):
                first = (micro * world + rank) * local
                with accelerator.accumulate(model), accelerator.autocast():
                    loss = model(loss_fn, step, range(first, first + local))
                    accelerator.backward(loss)
                    if accelerator.sync_gradients:
                        accelerator.clip_grad_norm_(params, 1.0)
                    opt.step()
                    opt.zero_grad(set_to_none=True)
                total += loss.detach() / cfg.grad_accum
            step += 1
            bar.update(1)
            mean = accelerator.reduce(total, "mean").item()
            if not math.isfinite(mean):
                raise CustomvidError(f"the loss became {mean} at step {step}; lower the learning rate")
            window.append(mean)
            if step % cfg.log_every == 0:
                # loss: the mean over the steps since the last line; loss_step: this step's alone
                line = {"step": step, "loss": sum(window) / len(window), "loss_step": mean, "steps": len(window),
                        "lr": opt.param_groups[0]["lr"], "sec": round(time.time() - t0, 2)}
                window.clear()
                if log is not None:
                    log.write(json.dumps(line) + "\n")
                    log.flush()
                    bar.set_postfix(loss=f"{line['loss']:.4f}")
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                checkpoint()
            if sample_fn and cfg.sample_every and step % cfg.sample_every == 0 and accelerator.is_main_process:
                with torch.random.fork_rng(devices=[]):
                    sample_fn(run_dir / "samples" / f"step_{step:05d}.png")
    except KeyboardInterrupt:
        checkpoint()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        bar.close()
        if log is not None:
            log.close()
    accelerator.wait_for_everyone()
    return step
