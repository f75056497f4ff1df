"""`customvid train-subject`: a subject adapter from a few photos (CustomCrafter's plug-in spatial LoRA).

Each photo becomes a static video of the model's frame count; DreamBooth-style class-prior preservation keeps
what the model does with the class word (and its motion) by training, in the same step, on clips the base model
generated from class-word prompts (cached in the run folder once, or a user's --prior-dir). Read top to bottom.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from customvid.adapters import get_method
from customvid.errors import CustomvidError
from customvid.io import atomic_write
from customvid.training.adapter_loop import (
    LOOP_ADDED_KEYS,
    LoopConfig,
    make_accelerator,
    sample_generator,
    train_loop,
)
from customvid.training.checkpoint import check_run_config
from customvid.training.losses import per_sample_loss
from customvid.training.subject_data import augment, load_subject_images
from customvid.training.timesteps import sample_timesteps
from customvid.world import vocab

PRIOR_MOTIONS = ["still", "left", "right", "up", "down", "bounce", "circle", "grow"]


@dataclass
class SubjectTrainConfig:
    class_word: str
    token: str = "<sks>"
    method: str = "lora"  # lora | tokens | lora+tokens (defaults per method: `subject_config`)
    rank: int = 8
    alpha: float = 8.0
    num_tokens: int = 4  # tokens, lora+tokens: rows under the one prompt token (Magic-Me's extended ID tokens)
    instance_prompt: str = "a {token} {class_word} staying still"
    prior_weight: float = 1.0  # DreamBooth's default
    prior_clips: int = 16
    prior_steps: int = 25  # DDIM steps per generated prior clip
    # Magic-Me's mask-normalised loss on the photos, sum(m * err) / sum(m) with latent-size masks; this share of
    # samples keeps the full mask so the background is not left entirely untrained
    masked_loss: bool = False
    train_token: bool = False  # lora: also train the identifier's embedding row
    full_mask_share: float = 0.05
    # noise + offset * N(0, 1) per sample and channel, constant over pixels and frames: lets the model shift a
    # clip's mean brightness (Magic-Me trains its tokens with 0.1)
    noise_offset: float = 0.0
    # Magic-Me's augmentations: each photo also flipped, slightly rotated and rescaled, the caption saying
    # "close up" / "far away" when the subject was enlarged / shrunk (`subject_data.augment`)
    augment: bool = False
    augment_variants: int = 8  # versions per photo (the first is the photo itself)
    # measured on the embedded model (BENCHMARKS.md, subject LoRA): at 1e-4 / 5e-4 for 200 steps the LoRA
    # learned nothing of the subject; 2e-3 x 400 steps at batch 2 (+2 prior clips) starts to take its shape
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(steps=400, batch_size=2, lr=2e-3))

    def to_json(self) -> dict:
        return asdict(self)


# what differs per method from the dataclass defaults above (the LoRA's); the CLI's defaults come from here
METHOD_DEFAULTS = {
    "lora": {},
    # Magic-Me's published recipe (lr 1e-3, batch 4, AdamW wd 1e-2, noise offset 0.1) but 300 steps, not 400:
    # measured on the embedded model, the same colour / shape / background at 300 as at 400 (BENCHMARKS.md,
    # "Identity"), in 300 s instead of 372 s on the 2-core CPU. The model is frozen: no class prior to keep.
    "tokens": {"prior_weight": 0.0, "noise_offset": 0.1, "loop": {"lr": 1e-3, "batch_size": 4, "steps": 300}},
    "lora+tokens": {"train_token": True},
}


def subject_config(method: str, class_word: str, token: str = "<sks>", **overrides) -> SubjectTrainConfig:
    """The method's defaults, then `overrides` (a "loop" entry is a dict of LoopConfig fields)."""
    if method not in METHOD_DEFAULTS:
        raise CustomvidError(f"train-subject has no method {method!r}; known: {', '.join(METHOD_DEFAULTS)}")
    settings = {**METHOD_DEFAULTS[method], **{k: v for k, v in overrides.items() if v is not None}}
    given = {k: v for k, v in (overrides.get("loop") or {}).items() if v is not None}
    loop = {**METHOD_DEFAULTS[method].get("loop", {}), **given}
    settings["loop"] = dataclasses.replace(SubjectTrainConfig(class_word).loop, **loop)
    return SubjectTrainConfig(class_word=class_word, token=token, method=method, **settings)


def class_prompts(class_word: str, n: int) -> list[str]:
    """Varied class-word prompts (motions x backgrounds, cycling) for the prior clips."""
    backgrounds = vocab.BACKGROUNDS
    out = []
    for i in range(n):
        motion = PRIOR_MOTIONS[i % len(PRIOR_MOTIONS)]
        phrase = vocab.MOTION_PHRASES[motion][0]
        out.append(f"a {class_word} {phrase} on a {backgrounds[(i * 3) % len(backgrounds)]} background")
    return out


def validation_prompts(token: str, class_word: str) -> list[str]:
    return [
        f"a {token} {class_word} moving right on a blue background",
        f"a {token} {class_word} moving left on a green background",
        f"a {token} {class_word} bouncing on a gray background",
        f"a {class_word} moving right on a blue background",  # the class alone: prior preserved?
    ]


def _encode_frames(vae, frames: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> scaled latents [N, C, h, w] (posterior mean)."""
    x = torch.from_numpy(frames).float().div(127.5).sub(1).permute(0, 3, 1, 2).to(vae.device, vae.dtype)
    with torch.no_grad():
        z = torch.cat([vae.encode(x[i : i + 16]).latent_dist.mean for i in range(0, len(x), 16)])
    return z * vae.config.scaling_factor


def encode_clips(vae, clips: np.ndarray) -> torch.Tensor:
    """uint8 [N, F, H, W, 3] -> scaled latents [N, C, F, h, w] (the layout both backbones take)."""
    n, f = clips.shape[:2]
    z = _encode_frames(vae, clips.reshape(n * f, *clips.shape[2:]))
    return z.unflatten(0, (n, f)).movedim(1, 2)


def _prior_clips(run_dir: Path, components, cfg: SubjectTrainConfig, prior_dir: Path | None, seed: int):
    """Class clips [N, F, H, W, 3] and their captions: the user's folder, or generated once and cached."""
    if prior_dir is not None:
        from customvid.io import read_video

        clips, captions = [], []
        paths = sorted(p for p in Path(prior_dir).iterdir() if p.suffix.lower() in {".mp4", ".gif"} or p.is_dir())
        if not paths:
            raise CustomvidError(f"--prior-dir {prior_dir}: no clips (mp4, gif or frame folders) there")
        frames, (h, w) = components.default_frames, components.default_size
        for p in paths:
            video = read_video(p).frames
            idx = np.linspace(0, len(video) - 1, frames).round().astype(int)
            from PIL import Image

            clips.append(np.stack([np.asarray(Image.fromarray(f).resize((w, h))) for f in video[idx]]))
            txt = p.with_suffix(".txt")
            captions.append(txt.read_text().strip() if txt.is_file() else f"a {cfg.class_word}")
        return np.stack(clips), captions
    cache = run_dir / "prior.npz"
    if cache.is_file():
        data = np.load(cache)
        return data["frames"], json.loads(str(data["captions"]))
    from customvid.sampling import generate

    captions = class_prompts(cfg.class_word, cfg.prior_clips)
    frames = []
    for i in range(0, len(captions), 4):  # a few at a time: bounded memory
        out = generate(components, captions[i : i + 4], seed=seed + 10_000 + i, num_inference_steps=cfg.prior_steps)
        frames.append(out.frames)
    frames = np.concatenate(frames)
    with atomic_write(cache) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, frames=frames, captions=json.dumps(captions))
    return frames, captions


def check_subject_config(cfg: SubjectTrainConfig, prior_given: bool = False) -> None:
    """The settings' own errors, one line each (the CLI calls this before the model loads)."""
    if not cfg.class_word.strip():
        raise CustomvidError("--class-word must not be empty")
    if cfg.prior_weight < 0:
        raise CustomvidError(f"--prior-weight must be >= 0, got {cfg.prior_weight}")
    if cfg.method == "tokens" and cfg.prior_weight > 0 and not prior_given:
        raise CustomvidError("--prior-weight: the tokens method leaves the model unchanged, so there is no class "
                             "prior to keep; use 0")
    if cfg.noise_offset < 0 or cfg.augment_variants < 1:
        raise CustomvidError("--noise-offset must be >= 0 and the augment variants >= 1")


# how the run is driven, not what it learns: may change when a run is resumed
OPERATIONAL = ("loop.steps", "loop.checkpoint_every", "loop.sample_every", "loop.log_every")


def train_subject(
    components,
    images_dir: Path,
    out: Path,
    cfg: SubjectTrainConfig,
    run_dir: Path | None = None,
    masks_dir: Path | None = None,
    prior_dir: Path | None = None,
    overwrite: bool = False,
    progress: bool = True,
    prior: tuple[np.ndarray, list[str]] | None = None,
    mask_source: str | None = None,
    a1111: bool = False,
):
    """Train and write the adapter folder `out` (atomically); the run folder keeps logs, samples, checkpoints.
    `prior`: clips [N, F, H, W, 3] and captions to mix in instead of the class prior (the joint motion stage).
    `mask_source`: segment the photos with this `customvid.segmentation` method instead of reading mask files.
    `a1111`: also write the token rows in A1111's layout."""
    from customvid.adapters.tokens import check_token

    out = Path(out)
    run_dir = Path(run_dir) if run_dir is not None else out.with_name(out.name + ".run")
    # everything a user can get wrong is checked before any long work
    if out.exists() and not overwrite:
        raise CustomvidError(f"{out} exists; pass --overwrite to replace it")
    if cfg.token:
        check_token(cfg.token, components.tokenizer)
    check_subject_config(cfg, prior_given=prior is not None)
    method = get_method(cfg.method)
    height, width = components.default_size
    data = load_subject_images(images_dir, height, width, masks_dir)
    if mask_source is not None:
        from customvid.segmentation import segment

        data.masks = segment(data.images, mask_source, prompt=cfg.class_word)
    if cfg.augment:
        data = augment(data, cfg.augment_variants, cfg.loop.seed)
    if cfg.masked_loss and data.masks is None:
        raise CustomvidError("--masked-loss needs a mask for every photo (NAME_mask.png or --masks)")

    accelerator = make_accelerator(cfg.loop)
    components.to(accelerator.device)
    run_dir.mkdir(parents=True, exist_ok=True)
    if accelerator.is_main_process:
        check_run_config(run_dir, cfg.to_json(), OPERATIONAL, LOOP_ADDED_KEYS, hint="use another --run-dir")
    seed = cfg.loop.seed
    frames = components.default_frames
    # the class prior comes from the base model, before the adapter exists
    prior_frames, prior_captions = prior if prior is not None else (None, [])
    if cfg.prior_weight > 0 and prior is None:
        if accelerator.is_main_process:
            _prior_clips(run_dir, components, cfg, prior_dir, seed)
        accelerator.wait_for_everyone()
        prior_frames, prior_captions = _prior_clips(run_dir, components, cfg, prior_dir, seed)

    given = {"rank": cfg.rank, "alpha": cfg.alpha, "token": cfg.token, "class_word": cfg.class_word,
             "train_token": cfg.train_token, "num_tokens": cfg.num_tokens}
    fields = {f.name for f in dataclasses.fields(method.Config)}  # each method takes the settings it has
    config = method.Config(**{k: v for k, v in given.items() if k in fields})
    with torch.random.fork_rng(devices=[]):  # LoRA A starts random: seeded, so a seeded run is reproducible
        torch.manual_seed(seed)
        adapter = method(config, name="subject").attach(components)
    adapter.train()
    vae, scheduler = components.vae, components.scheduler
    inst_latents = _encode_frames(vae, data.images)[:, :, None].expand(-1, -1, frames, -1, -1)  # static videos
    inst_masks = None
    if cfg.masked_loss:
        m = torch.from_numpy(data.masks).float()[:, None]
        # a latent cell counts if the subject touches it (max-pool), so edges are trained too
        inst_masks = torch.nn.functional.adaptive_max_pool2d(m, inst_latents.shape[-2:])[:, :, None]
    if prior_frames is not None:
        prior_latents = encode_clips(vae, prior_frames)
    suffixes = data.suffixes or [""] * len(data.captions)
    prompts = [(c or cfg.instance_prompt).format(token=cfg.token, class_word=cfg.class_word) + suffix
               for c, suffix in zip(data.captions, suffixes, strict=True)]
    num_t = scheduler.config.num_train_timesteps

    def pick(step: int, i: int, n: int, stream: int) -> int:
        # sample i of the step: a fresh permutation of the n items per epoch, the same on every process
        position = step * cfg.loop.batch_size + i
        perm = torch.randperm(n, generator=sample_generator(seed, position // n, 0, 100 + stream))
        return int(perm[position % n])

    def loss_fn(step: int, indices) -> torch.Tensor:
        latents, texts, noise, t, masks = [], [], [], [], []

        def take(pool, captions, stream: int) -> list[int]:
            """Sample i of the step from `pool`: which item, its noise and timestep, all seeded per sample."""
            chosen = []
            for i in indices:
                k = pick(step, i, len(pool), stream)
                g = sample_generator(seed, step, i, stream)
                latents.append(pool[k]), texts.append(captions[k])
                eps = torch.randn(pool[k].shape, generator=g)
                if cfg.noise_offset:  # one offset per channel, the same over frames and pixels
                    eps = eps + cfg.noise_offset * torch.randn((eps.shape[0], 1, 1, 1), generator=g)
                noise.append(eps), t.append(sample_timesteps(1, num_t, g))
                chosen.append(k)
            return chosen

        for i, k in zip(indices, take(inst_latents, prompts, 1), strict=True):
            if inst_masks is not None:
                full = torch.rand(1, generator=sample_generator(seed, step, i, 3)).item() < cfg.full_mask_share
                masks.append(torch.ones_like(inst_masks[k]) if full else inst_masks[k])
        if prior_frames is not None:
            take(prior_latents, prior_captions, 2)
        device = components.device
        text = components.encode_prompt(texts)
        b = len(indices)
        mask = None
        if masks:  # prior clips keep the plain loss (all-ones masks: the same value)
            ones = [torch.ones_like(masks[0])] * (len(latents) - b)
            mask = torch.stack(masks + ones).to(device)
        losses = per_sample_loss(
            components.unet, scheduler, torch.stack(latents).to(device), text,
            torch.stack(noise).to(device), torch.cat(t).to(device), mask,
        )
        loss = losses[:b].mean()
        if prior_frames is not None:
            loss = loss + cfg.prior_weight * losses[b:].mean()
        return loss

    def sample_fn(path: Path) -> None:
        from customvid.io import contact_sheet, write_image
        from customvid.sampling import generate

        adapter.train(False)
        video = generate(components, validation_prompts(cfg.token, cfg.class_word), seed=0, adapters=[adapter],
                         num_inference_steps=20).frames
        adapter.train(True)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_image(path, contact_sheet(video.reshape(-1, *video.shape[2:]), cols=video.shape[1], scale=2))

    step = train_loop(run_dir, components, adapter.trainable_parameters(), loss_fn, cfg.loop, sample_fn,
                      progress=progress, accelerator=accelerator)
    adapter.train(False)
    if accelerator.is_main_process:
        adapter.save(
            out,
            extra={"training": {**cfg.to_json(), "steps_done": step, "images": data.names,
                                "processes": accelerator.num_processes},
                   "seed": seed},
            overwrite=overwrite,
            a1111=a1111,
        )
    accelerator.wait_for_everyone()
    return adapter
