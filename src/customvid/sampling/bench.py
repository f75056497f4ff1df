"""`customvid bench speed`: our sampling loop against a plain hand-written diffusers loop, side by side.

Both loops get the same UNet, solver, steps, guidance and initial latents, and run interleaved in one process
(ours-plain, plain-ours, ... so drift in machine load hits both), after untimed warm-up runs. Reported:
seconds per clip (text encoding + denoising + decode), seconds per denoising step, overhead of ours in %, and
peak memory of each run (GPU: torch.cuda max allocated; CPU: peak resident set size above the level before the
run, sampled by a thread -- torch's CPU allocator is invisible to tracemalloc). The frames of both must agree.
"""

from __future__ import annotations

import os
import resource
import statistics
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch

from customvid.models.components import Components
from customvid.sampling.noise import iid
from customvid.sampling.pipeline import generate, latent_shape, make_solver, synced_time, to_uint8

DEFAULT_PROMPT = "a red circle moves from left to right"
OURS, PLAIN = "customvid.generate", "plain diffusers loop"


@torch.no_grad()
def reference_loop(
    components: Components,
    prompt: str,
    latents: torch.Tensor,
    num_inference_steps: int,
    guidance_scale: float,
    solver: str = "ddim",
    negative_prompt: str = "",
) -> tuple[np.ndarray, dict[str, float]]:
    """The loop as one writes it from the diffusers docs: CFG batch, solver steps, one VAE call for all
    frames.

    Written out independently of `generate` on purpose (no shared helpers beyond text encoding and the solver
    construction), so comparing the two checks our loop as well as timing it. Returns uint8 [1,F,H,W,3],
    timings.
    """
    t0 = time.perf_counter()
    unet, vae, device = components.unet, components.vae, components.device
    scheduler = make_solver(solver, components.scheduler.config)
    scheduler.set_timesteps(num_inference_steps, device=device)
    do_cfg = guidance_scale > 1.0
    embeds = components.encode_prompt([negative_prompt, prompt] if do_cfg else [prompt])
    if components.kind == "unet_motion":  # AnimateDiffPipeline repeats text states per frame
        embeds = embeds.repeat_interleave(latents.shape[2], dim=0)
    latents = latents.to(device=device, dtype=components.dtype) * scheduler.init_noise_sigma
    t1 = synced_time(device)
    for t in scheduler.timesteps:
        model_in = scheduler.scale_model_input(torch.cat([latents] * 2) if do_cfg else latents, t)
        noise_pred = unet(model_in, t, encoder_hidden_states=embeds).sample
        if do_cfg:
            noise_uncond, noise_text = noise_pred.chunk(2)
            noise_pred = noise_uncond + guidance_scale * (noise_text - noise_uncond)
        latents = scheduler.step(noise_pred, t, latents).prev_sample
    t2 = synced_time(device)
    b, c, f, h, w = latents.shape
    flat = latents.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w) / vae.config.scaling_factor
    images = vae.decode(flat.to(vae.dtype)).sample
    video = (images.float() / 2 + 0.5).clamp(0, 1).reshape(b, f, *images.shape[1:])
    frames = to_uint8(video)
    t3 = synced_time(device)
    return frames, {"encode": t1 - t0, "denoise": t2 - t1, "decode": t3 - t2, "total": t3 - t0}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak memory of a block above its starting level, in MiB: CUDA max allocated, else sampled process
    RSS."""

    def __init__(self, device: torch.device, interval_s: float = 0.002) -> None:
        self.device, self.interval_s, self.peak_mib = device, interval_s, float("nan")
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            self._base = self._peak = _rss_bytes()
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._peak = max(self._peak, _rss_bytes())

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()
            peak = max(self._peak, _rss_bytes())
        self.peak_mib = (peak - self._base) / 2**20


@dataclass
class SpeedReport:
    settings: dict[str, Any]
    runs: dict[str, list[dict[str, float]]] = field(default_factory=lambda: {OURS: [], PLAIN: []})
    max_abs_diff: int = 0  # largest uint8 difference between the two loops' frames

    def median(self, loop: str, key: str) -> float:
        return statistics.median(run[key] for run in self.runs[loop])

    def overhead_pct(self, key: str) -> float:
        return 100.0 * (self.median(OURS, key) / self.median(PLAIN, key) - 1.0)


def run_speed(
    components: Components,
    num_inference_steps: int = 25,
    repeats: int = 3,
    warmup: int = 1,
    guidance_scale: float = 7.5,
    solver: str = "ddim",
    num_frames: int | None = None,
    height: int | None = None,
    width: int | None = None,
    prompt: str = DEFAULT_PROMPT,
    seed: int = 0,
) -> SpeedReport:
    shape = latent_shape(components, 1, num_frames, height, width)
    frames, h, w = shape[2], shape[3] * components.vae_scale_factor, shape[4] * components.vae_scale_factor
    latents = iid(shape, torch.Generator("cpu").manual_seed(seed), components.dtype, components.device)
    loops = {
        OURS: partial(
            _ours, components, prompt, latents, num_inference_steps, guidance_scale, solver, (frames, h, w)
        ),
        PLAIN: partial(
            reference_loop, components, prompt, latents, num_inference_steps, guidance_scale, solver
        ),
    }
    report = SpeedReport(
        settings={
            "model": components.source,
            "kind": components.kind,
            "device": str(components.device),
            "dtype": str(components.dtype).removeprefix("torch."),
            "frames": frames,
            "height": h,
            "width": w,
            "steps": num_inference_steps,
            "guidance": guidance_scale,
            "solver": solver,
            "repeats": repeats,
            "warmup": warmup,
        }
    )
    for _ in range(warmup):
        for run in loops.values():
            run()
    for r in range(repeats):
        order = [OURS, PLAIN] if r % 2 == 0 else [PLAIN, OURS]
        outputs = {}
        for name in order:
            with PeakMemory(components.device) as mem:
                outputs[name], timings = loops[name]()
            report.runs[name].append(
                {**timings, "per_step": timings["denoise"] / num_inference_steps, "peak_mib": mem.peak_mib}
            )
        diff = np.abs(outputs[OURS].astype(np.int16) - outputs[PLAIN].astype(np.int16)).max()
        report.max_abs_diff = max(report.max_abs_diff, int(diff))
    return report


def _ours(
    components: Components,
    prompt: str,
    latents: torch.Tensor,
    steps: int,
    guidance: float,
    solver: str,
    size: tuple[int, int, int],
) -> tuple[np.ndarray, dict[str, float]]:
    frames, h, w = size
    out = generate(
        components,
        prompt,
        num_frames=frames,
        height=h,
        width=w,
        num_inference_steps=steps,
        guidance_scale=guidance,
        solver=solver,
        latents=latents,
    )
    return out.frames, out.timings


def format_markdown(report: SpeedReport) -> str:
    s = report.settings
    rows = [
        f"Speed: {s['model']} ({s['kind']}, {s['device']}, {s['dtype']}), {s['frames']} frames {s['height']}x"
        f"{s['width']}, {s['steps']} {s['solver']} steps, CFG {s['guidance']}, "
        f"median of {s['repeats']} interleaved "
        f"runs after {s['warmup']} warm-up; max |ours - plain| = {report.max_abs_diff} (uint8)",
        "",
        "| loop | s/clip | s/denoising step | encode s | decode s | peak mem MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for loop in (OURS, PLAIN):
        m = {k: report.median(loop, k) for k in ("total", "per_step", "encode", "decode", "peak_mib")}
        rows.append(
            f"| {loop} | {m['total']:.3f} | {m['per_step']:.4f} | {m['encode']:.3f} | {m['decode']:.3f} "
            f"| {m['peak_mib']:.0f} |"
        )
    mem_delta = report.median(OURS, "peak_mib") - report.median(PLAIN, "peak_mib")
    rows.append(
        f"| overhead of ours | {report.overhead_pct('total'):+.1f}% "
        f"| {report.overhead_pct('per_step'):+.1f}% "
        f"| | | {mem_delta:+.0f} |"
    )
    maxrss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    rows += ["", f"Process peak RSS (whole run, incl. model): {maxrss_mib:.0f} MiB"]
    return "\n".join(rows)
