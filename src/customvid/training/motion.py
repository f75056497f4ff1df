"""`customvid train-motion`: a motion adapter from a few clips (Customizing Motion in T2V; MotionDirector's recipe as
an option). Read top to bottom.

The paper's recipe: tune the temporal layers and the spatial cross-attention K/V (or LoRA on them) plus a new
motion token, on the motion clips mixed with a regularization set of other captioned motions, with timesteps
biased toward high noise, where a clip's layout and motion are decided. MotionDirector's: a spatial LoRA first
learns the clips' appearance from single frames; then a temporal LoRA learns the motion with the spatial LoRA in
place but frozen, under the appearance-debiased loss; only the temporal LoRA is kept.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from customvid.adapters.motion import MotionAdapter, MotionConfig
from customvid.errors import CustomvidError
from customvid.training.adapter_loop import (
    LOOP_ADDED_KEYS,
    LoopConfig,
    make_accelerator,
    sample_generator,
    train_loop,
)
from customvid.training.checkpoint import check_run_config
from customvid.training.losses import appearance_debiased, per_sample_loss, predict
from customvid.training.motion_data import MotionClips, load_motion_clips
from customvid.training.subject import encode_clips
from customvid.training.timesteps import sample_timesteps

RECIPES = ("paper", "motiondirector")


@dataclass
class MotionTrainConfig:
    token: str | None = "<pll>"
    params: str = "temporal+kv"
    lora_rank: int = 0  # 0: full tuning (the paper); MotionDirector's recipe needs a rank (its default 32)
    init_word: str = "moving"
    train_token: bool = True
    # a row of the embedding matrix learns at a textual-inversion rate; x lr of the tuned layers
    token_lr_scale: float = 10.0
    timestep_bias: float = 2.0  # t = T(1 - u^k): k = 1 uniform; k = 2 puts 36 % of draws in the top 20 % of noise
    reg_ratio: float = 0.25  # share of samples drawn from the regularization set (0: none)
    reg_clips: int = 32  # world clips of base motions when no --reg-dir is given
    # what a regularization sample is fitted to: "data" (the paper: the clip's own noise target) or "base" (the
    # frozen base model's prediction on it, adapter off). Measured (BENCHMARKS.md, motion customization): "base"
    # keeps the base motions (50 % vs 39 % with "data", base model 58 %) at equal or better trajectories
    reg_target: str = "base"
    frame_sampling: str = "even"
    recipe: str = "paper"
    spatial_rank: int = 32  # MotionDirector: its spatial LoRA's rank
    spatial_steps: int = 150  # MotionDirector: steps of the spatial stage before the temporal one
    ad_beta: float = 1.0  # MotionDirector's appearance-debiased loss
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(steps=300, batch_size=4, lr=1e-4))

    def to_json(self) -> dict:
        return asdict(self)


def validation_prompts(token: str | None) -> list[str]:
    name = token or "the motion"
    return [
        f"a red circle doing {name} on a gray background",
        f"a yellow heart doing {name} on a blue background",
        f"a white square doing {name} on a black background",
        "a green star moving right on a brown background",  # a base motion: the model still has it?
    ]


def world_regularization(n: int, frames: int, height: int, width: int, seed: int = 0) -> MotionClips:
    """Clips of the world's base motions with their captions: "real" videos of related but different motions, as
    the paper asks (it found model-generated regularization videos hurt)."""
    from customvid.world import render_clip
    from customvid.world.splits import sample_spec

    clips, captions = [], []
    for i in range(n):
        spec = sample_spec("train", 50_000 + i, seed=seed, frames=frames, width=width, height=height)
        clips.append(render_clip(spec).frames)
        captions.append(spec.caption)
    return MotionClips([f"world_{i}" for i in range(n)], np.stack(clips), captions)


# how the run is driven, not what it learns: may change when a run is resumed
OPERATIONAL = ("loop.steps", "loop.checkpoint_every", "loop.sample_every", "loop.log_every")


def check_motion_config(cfg: MotionTrainConfig) -> None:
    if cfg.recipe not in RECIPES:
        raise CustomvidError(f"unknown recipe {cfg.recipe!r}; known: {', '.join(RECIPES)}")
    if cfg.recipe == "motiondirector" and not cfg.lora_rank:
        raise CustomvidError("MotionDirector's recipe trains LoRAs: give --lora-rank (its default is 32)")
    if not 0 <= cfg.reg_ratio < 1:
        raise CustomvidError(f"--reg-ratio must be in [0, 1), got {cfg.reg_ratio}")
    if cfg.reg_target not in ("data", "base"):
        raise CustomvidError(f"--reg-target must be data or base, got {cfg.reg_target!r}")
    if cfg.timestep_bias <= 0:
        raise CustomvidError(f"--timestep-bias must be > 0, got {cfg.timestep_bias}")
    MotionConfig(params=cfg.params, lora_rank=cfg.lora_rank)  # its own checks


def train_motion(
    components,
    videos: Path | None,
    out: Path,
    cfg: MotionTrainConfig,
    run_dir: Path | None = None,
    manifest: Path | None = None,
    reg_dir: Path | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> MotionAdapter:
    """Train and write the motion adapter folder `out` (atomically); the run folder keeps logs, samples, checkpoints.
    The adapter stays attached to `components` (e.g. for a joint subject stage)."""
    from customvid.adapters.tokens import check_token

    out = Path(out)
    run_dir = Path(run_dir) if run_dir is not None else out.with_name(out.name + ".run")
    # everything a user can get wrong is checked before any long work
    if out.exists() and not overwrite:
        raise CustomvidError(f"{out} exists; pass --overwrite to replace it")
    check_motion_config(cfg)
    if cfg.token:
        check_token(cfg.token, components.tokenizer)
    (height, width), frames = components.default_size, components.default_frames
    data = load_motion_clips(videos, height, width, frames, components.fps, cfg.frame_sampling, cfg.token,
                             manifest)
    if cfg.reg_ratio > 0:
        reg = (load_motion_clips(reg_dir, height, width, frames, components.fps, cfg.frame_sampling,
                                 what="--reg-dir")
               if reg_dir is not None else world_regularization(cfg.reg_clips, frames, height, width))

    accelerator = make_accelerator(cfg.loop)
    components.to(accelerator.device)
    run_dir.mkdir(parents=True, exist_ok=True)
    if accelerator.is_main_process:
        check_run_config(run_dir, cfg.to_json(), OPERATIONAL, LOOP_ADDED_KEYS, hint="use another --run-dir")
    seed = cfg.loop.seed
    config = MotionConfig(params=cfg.params, lora_rank=cfg.lora_rank, lora_alpha=None, token=cfg.token,
                          init_word=cfg.init_word, train_token=cfg.train_token and cfg.recipe == "paper")
    with torch.random.fork_rng(devices=[]):  # LoRA A starts random: seeded, so a seeded run is reproducible
        torch.manual_seed(seed)
        adapter = MotionAdapter(config, name="motion").attach(components)
    vae, scheduler = components.vae, components.scheduler
    motion_latents = encode_clips(vae, data.frames)
    reg_latents = encode_clips(vae, reg.frames) if cfg.reg_ratio > 0 else None
    num_t = scheduler.config.num_train_timesteps

    def draw(step: int, i: int, single_frame: bool = False):
        """Sample i of the step: motion clip or regularization clip, its noise and timestep, all seeded per sample
        (so resume is exact and the batch may be split over processes)."""
        g = sample_generator(seed, step, i, 1)
        use_reg = reg_latents is not None and torch.rand(1, generator=g).item() < cfg.reg_ratio
        pool, captions = (reg_latents, reg.captions) if use_reg else (motion_latents, data.captions)
        k = int(torch.randint(len(pool), (1,), generator=g))
        z = pool[k]
        if single_frame:  # MotionDirector's spatial path: one random frame as a one-frame video
            f = int(torch.randint(z.shape[1], (1,), generator=g))
            z = z[:, f : f + 1]
        t = sample_timesteps(1, num_t, g, cfg.timestep_bias)
        anchor = int(torch.randint(z.shape[1], (1,), generator=g))
        return z, captions[k], torch.randn(z.shape, generator=g), t, anchor, use_reg

    def batch(step: int, indices, single_frame: bool = False):
        rows = [draw(step, i, single_frame) for i in indices]
        device = components.device
        z, texts, noise, t, anchor, is_reg = zip(*rows, strict=True)
        return (torch.stack(z).to(device), components.encode_prompt(list(texts)), torch.stack(noise).to(device),
                torch.cat(t).to(device), torch.tensor(anchor, device=device), torch.tensor(is_reg, device=device))

    def paper_loss(step: int, indices) -> torch.Tensor:
        z, text, noise, t, _, is_reg = batch(step, indices)
        if cfg.reg_target == "data" or not is_reg.any():
            return per_sample_loss(components.unet, scheduler, z, text, noise, t).mean()
        pred, target = predict(components.unet, scheduler, z, text, noise, t)
        with torch.no_grad():  # the base model's own prediction on the regularization clips: adapter off
            adapter.set_weight(0.0)
            base, _ = predict(components.unet, scheduler, z[is_reg], text[is_reg], noise[is_reg], t[is_reg])
            adapter.set_weight(1.0)
        target = target.clone()
        target[is_reg] = base
        return torch.nn.functional.mse_loss(pred, target)

    def spatial_loss(step: int, indices) -> torch.Tensor:
        z, text, noise, t, _, _ = batch(step, indices, single_frame=True)
        return per_sample_loss(components.unet, scheduler, z, text, noise, t).mean()

    def temporal_loss(step: int, indices) -> torch.Tensor:
        z, text, noise, t, anchor, _ = batch(step, indices)
        pred, target = predict(components.unet, scheduler, z, text, noise, t)
        plain = torch.nn.functional.mse_loss(pred, target)
        debiased = torch.nn.functional.mse_loss(appearance_debiased(pred, anchor, cfg.ad_beta),
                                                appearance_debiased(target, anchor, cfg.ad_beta))
        return plain + debiased

    def sample_fn(path: Path) -> None:
        from customvid.io import contact_sheet, write_image
        from customvid.sampling import generate

        training = [a for a in components.adapters if a.training]
        for a in training:
            a.train(False)
        video = generate(components, validation_prompts(cfg.token), seed=0, adapters=[adapter],
                         num_inference_steps=20).frames
        for a in training:
            a.train(True)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_image(path, contact_sheet(video.reshape(-1, *video.shape[2:]), cols=video.shape[1], scale=2))

    def groups(a) -> list[dict]:
        own = [p for p in a.trainable_parameters() if not _is_token(components, a, p)]
        token = [p for p in a.trainable_parameters() if _is_token(components, a, p)]
        return [{"params": own}] + ([{"params": token, "lr_scale": cfg.token_lr_scale}] if token else [])

    if cfg.recipe == "paper":
        adapter.train()
        step = train_loop(run_dir, components, groups(adapter), paper_loss, cfg.loop, sample_fn, progress=progress,
                          accelerator=accelerator)
    else:
        from customvid.adapters.subject_lora import SubjectLora, SubjectLoraConfig

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            spatial = SubjectLora(SubjectLoraConfig(rank=cfg.spatial_rank, alpha=float(cfg.spatial_rank), token=""),
                                  name="spatial").attach(components)
        spatial.train()
        spatial_cfg = dataclasses.replace(cfg.loop, steps=cfg.spatial_steps, sample_every=0)
        train_loop(run_dir / "spatial", components, spatial.trainable_parameters(), spatial_loss, spatial_cfg,
                   progress=progress, accelerator=accelerator)
        spatial.train(False)  # in place, frozen: the temporal LoRA need not learn the clips' appearance
        adapter.train()
        step = train_loop(run_dir / "temporal", components, groups(adapter), temporal_loss, cfg.loop, sample_fn,
                          progress=progress, accelerator=accelerator)
        spatial.detach()  # inference uses the temporal path only
    adapter.train(False)
    if accelerator.is_main_process:
        adapter.save(
            out,
            extra={"training": {**cfg.to_json(), "steps_done": step, "clips": data.names,
                                "captions": data.captions, "processes": accelerator.num_processes},
                   "seed": seed},
            overwrite=overwrite,
        )
    accelerator.wait_for_everyone()
    return adapter


def train_joint_subject(components, motion: MotionAdapter, images: Path, out: Path, class_word: str, token: str,
                        steps: int, cfg: MotionTrainConfig, videos: Path | None, manifest: Path | None = None,
                        overwrite: bool = False, progress: bool = True):
    """The paper's appearance stage: with the motion adapter in place and frozen, a subject LoRA + token learns the
    photos (as static videos, the way train-subject takes them) while the motion clips are mixed into every
    batch (weight 1, where train-subject mixes class-prior clips), so the subject is learned in motion."""
    from customvid.training.subject import SubjectTrainConfig, train_subject

    motion.train(False)
    motion.set_weight(1.0)
    (height, width), frames = components.default_size, components.default_frames
    data = load_motion_clips(videos, height, width, frames, components.fps, cfg.frame_sampling, cfg.token, manifest)
    subject_cfg = SubjectTrainConfig(class_word=class_word, token=token,
                                     loop=dataclasses.replace(SubjectTrainConfig(class_word).loop, steps=steps,
                                                              seed=cfg.loop.seed))
    return train_subject(components, images, out, subject_cfg, overwrite=overwrite, progress=progress,
                         prior=(data.frames, data.captions))


def _is_token(components, adapter, p) -> bool:
    from customvid.adapters.tokens import token_parameter

    return bool(adapter.config.token) and p is token_parameter(components, adapter.config.token)
