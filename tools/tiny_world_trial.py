"""Diagnostic trial of the base recipe on a tiny world (not part of the package): one subject (a solid red circle)
on black, 9 motions (8 directions + still). Trains the same UNet3D / VAE / schedule as `customvid train-base`,
from scratch, at constant lr after warm-up, and every EVERY steps probes 9 prompts x 2 seeds.

    python tools/tiny_world_trial.py OUT TOTAL EVERY {min_snr,min_snr_v} VAE_RUN

VAE_RUN: a finished `customvid train-base` run folder whose VAE is reused (e.g. runs/base).
Prints one JSON line per evaluation: present-and-single, shape and motion accuracy, and the motions read.
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

import customvid.training.base as base
from customvid.benchmarks.base import score_video
from customvid.models.components import embedded_components
from customvid.sampling import generate
from customvid.training.data import frames_to_tensor
from customvid.world import make_caption, render_clip, vocab
from customvid.world.spec import Subject
from customvid.world.splits import build_spec

MOTIONS = [*vocab.DIRECTIONS, "still"]
SUBJECT = Subject("circle", "red", "solid")


def clip_batch(step, batch_size, seed, frames, size):
    videos, captions, masks = [], [], []
    for j in range(batch_size):
        rng = np.random.default_rng([seed, 123, step * batch_size + j])
        motion = MOTIONS[int(rng.integers(len(MOTIONS)))]
        spec = build_spec(SUBJECT, motion, "black", rng, frames, size, size)
        clip = render_clip(spec)
        videos.append(frames_to_tensor(clip.frames).movedim(0, 1))
        masks.append(torch.from_numpy(clip.masks))
        captions.append(make_caption(SUBJECT, motion, "black", rng))
    return torch.stack(videos), captions, torch.stack(masks)


def main(out: Path, total: int, every: int, weighting: str, vae_run: Path) -> None:
    base.clip_batch = clip_batch  # the trial's world replaces the train split
    base._lr_at = lambda step, lr, warmup, _total: lr * min(1.0, (step + 1) / warmup)
    vae_cfg = json.loads((vae_run / "config.json").read_text())
    vae_cfg["unet_channels"] = tuple(vae_cfg["unet_channels"])
    for key, value in base.ADDED_KEYS.items():  # keys newer than the run: the values it was made with
        vae_cfg.setdefault(key, value)
    vae = base.train_vae(vae_run, base.BaseTrainConfig(**vae_cfg), progress=False)  # finished: loads only
    cfg = base.BaseTrainConfig(snr_weighting=weighting, checkpoint_every=25, sample_every=0)
    for stop in range(every, total + 1, every):
        cfg.unet_steps = stop
        ema, scheduler, step = base.train_unet(out, cfg, vae, progress=False)
        components = embedded_components(ema, vae, scheduler, frames=8, height=64, width=64)
        rows = []
        for motion in MOTIONS:
            target = type("Target", (), {"subject": SUBJECT, "background": "black", "motion": motion})
            prompt = make_caption(SUBJECT, motion, "black")
            video = generate(components, [prompt] * 2, seed=[0, 1], num_inference_steps=25, guidance_scale=4.0)
            rows += [score_video(v, target) for v in video.frames]
        summary = {k: float(np.mean([r[k] for r in rows])) for k in ("present_single", "shape", "motion")}
        print(json.dumps({"step": step, **summary, "read": [r["probe"]["motion"] for r in rows]}), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], Path(sys.argv[5]))
