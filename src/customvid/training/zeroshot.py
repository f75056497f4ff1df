"""`customvid train-zeroshot`: DreamVideo-2's reference attention and mask-guided motion module, trained once on
the world's training split with the base model frozen. Read top to bottom.

Each sample is a world clip rendered on the fly: its caption, its frames, the subject's box in every frame, and
the subject image -- a random frame (not the first, as the paper says) with the background blanked by the
subject's mask, so the reference carries appearance only. The loss is the paper's reweighted diffusion loss,
|| (lambda * M + (1 - M)) * (target - prediction) ||^2 with M the box mask on the latent grid: the few pixels of
the subject weigh lambda times more. Each condition is dropped at random so either also works alone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from customvid.adapters.zeroshot import ZeroShotAdapter, ZeroShotConfig
from customvid.adapters.zeroshot.config import INFERENCE_ONLY
from customvid.errors import CustomvidError
from customvid.io.boxes import box_masks
from customvid.training.adapter_loop import (
    LOOP_ADDED_KEYS,
    LoopConfig,
    make_accelerator,
    sample_generator,
    train_loop,
)
from customvid.training.checkpoint import check_run_config
from customvid.training.losses import diffusion_target
from customvid.training.subject import encode_clips
from customvid.training.timesteps import sample_timesteps


@dataclass
class ZeroShotTrainConfig:
    adapter: ZeroShotConfig = field(default_factory=ZeroShotConfig)
    box_weight: float = 2.0  # lambda of the reweighted loss (the paper's ablation: 1, 1.5, 2, 4; 2 is best)
    ref_dropout: float = 0.1  # per sample: no subject image (the boxes-only case)
    box_dropout: float = 0.1  # per sample: no boxes (the subject-only case)
    # the ControlNet copy learns at this fraction of the rate: it starts as a trained encoder whose zero convolutions
    # open onto a frozen UNet, and at the full 1e-4 the first trial's loss rose 4x within 60 steps (ControlNet's own
    # recipe uses 1e-5); the new reference layers and the box encoder start from scratch at the full rate
    controlnet_lr_scale: float = 0.1
    clip_offset: int = 0  # world clips start at this index of the training split (a second run can take others)
    # How the caption names the subject. The world's captions describe it completely, so with full captions the
    # reference has nothing to add and its attention learns little (seen at step 300 of the first run: boxes
    # followed, the image's colours not). Users write the class word ("a diamond"), or a word the model does not
    # know: share of captions with the shape word alone, and with GENERIC_SUBJECT; the rest keep the full phrase.
    class_caption: float = 0.5
    generic_caption: float = 0.25
    init_from: str | None = None  # a zero-shot adapter folder to start from (a second stage), same config
    # the paper: AdamW, 30k iterations at batch 8 on 448x256 x16 frames. On the 64 px embedded model at 2 CPU cores
    # ~1.4 s/step at batch 4 (BENCHMARKS.md, zero-shot); the ControlNet starts from the UNet's own weights
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(steps=3000, batch_size=4, lr=1e-4, warmup=100,
                                                                checkpoint_every=100, sample_every=500))

    def to_json(self) -> dict:
        return json.loads(json.dumps(asdict(self)))  # tuples as lists: what a resumed run reads back


# may differ when a run resumes: the length, its bookkeeping, and the adapter's inference-only settings (a run made
# before box_guidance existed resumes too)
OPERATIONAL = ("loop.steps", "loop.checkpoint_every", "loop.sample_every", "loop.log_every",
               *(f"adapter.{f}" for f in INFERENCE_ONLY))
GENERIC_SUBJECT = "object"


def check_zeroshot_config(cfg: ZeroShotTrainConfig) -> None:
    if cfg.box_weight <= 0:
        raise CustomvidError(f"--box-weight must be > 0, got {cfg.box_weight}")
    if cfg.controlnet_lr_scale <= 0:
        raise CustomvidError(f"--controlnet-lr-scale must be > 0, got {cfg.controlnet_lr_scale}")
    for name in ("ref_dropout", "box_dropout"):
        if not 0 <= getattr(cfg, name) < 1:
            raise CustomvidError(f"--{name.replace('_', '-')} must be in [0, 1), got {getattr(cfg, name)}")
    if min(cfg.class_caption, cfg.generic_caption) < 0 or cfg.class_caption + cfg.generic_caption > 1:
        raise CustomvidError(f"--class-caption and --generic-caption must be >= 0 and add up to <= 1, got "
                             f"{cfg.class_caption} and {cfg.generic_caption}")
    if cfg.init_from is not None and not (Path(cfg.init_from) / "adapter.json").is_file():
        raise CustomvidError(f"--init-from {cfg.init_from}: not an adapter folder (no adapter.json)")


def world_sample(index: int, frames: int, height: int, width: int, fps: float, rng: np.random.Generator,
                 class_caption: float = 0.0, generic_caption: float = 0.0) -> dict:
    """Training clip `index` of the world: frames, caption, per-frame boxes and a masked-out random frame. The
    caption names the subject by its shape alone (share `class_caption`), as GENERIC_SUBJECT (`generic_caption`),
    or in full."""
    from customvid.world import make_caption, render_clip
    from customvid.world.splits import sample_spec

    spec = sample_spec("train", index, frames=frames, width=width, height=height, fps=fps)
    clip = render_clip(spec)
    j = int(rng.integers(frames))
    subject = clip.frames[j] * clip.masks[j][..., None]
    u = rng.random()
    words = spec.subject.shape if u < class_caption else GENERIC_SUBJECT if u < class_caption + generic_caption \
        else None
    caption = clip.spec.caption if words is None else make_caption(spec.subject, spec.motion, spec.background, rng,
                                                                   words=words)
    return {"frames": clip.frames, "caption": caption, "boxes": clip.boxes, "subject": subject,
            "mask": clip.masks[j].astype(np.float32)}


def validation_cases(frames: int, height: int, width: int, fps: float, n: int = 4) -> list[dict]:
    """Held-out subjects (the `subjects` split's references) on held-out box paths (the `trajectories` split)."""
    from customvid.world import render_clip
    from customvid.world.splits import CUSTOM_SUBJECTS, reference_specs, sample_spec

    cases = []
    for i, name in enumerate(list(CUSTOM_SUBJECTS)[:n]):
        ref = render_clip(reference_specs(name, n=1, width=width, height=height)[0])
        path = render_clip(sample_spec("trajectories", i, frames=frames, width=width, height=height, fps=fps))
        shape = CUSTOM_SUBJECTS[name].shape
        cases.append({"prompt": f"a {shape} on a {path.spec.background} background", "subject": ref.frames[0],
                      "mask": ref.masks[0].astype(np.float32), "boxes": path.boxes})
    return cases


def default_run_dir(out: Path) -> Path:
    return Path(out).with_name(Path(out).name + ".run")


INIT_RECORD = "init_training.json"  # in the run folder: the start's training record, as it was when the run began


def keep_init_record(run_dir: Path, init_from: str | None) -> None:
    """Copy the start adapter's training record into the run folder once, at the run's start: the start folder may
    be replaced later (a stage is often shipped into the folder the next one started from)."""
    path = Path(run_dir) / INIT_RECORD
    if init_from is None or path.exists():
        return
    from customvid.io import write_json_atomic

    write_json_atomic(path, json.loads((Path(init_from) / "adapter.json").read_text()).get("training"))


def training_record(run_config: dict, step: int, run_dir: Path) -> dict:
    """What adapter.json says of its training: this run's settings and steps, and the record of the adapter it
    started from (so a chain of stages stays readable from the last one), with the steps of all stages summed."""
    record = {**run_config, "steps_done": step, "data": "world train split"}
    path = Path(run_dir) / INIT_RECORD
    previous = json.loads(path.read_text()) if path.is_file() else None
    earlier = 0
    if previous is not None:
        record["init_training"] = previous
        earlier = previous.get("total_steps", previous.get("steps_done", 0))
    record["total_steps"] = step + earlier
    return record


def export_zeroshot(components, out: Path, run_dir: Path, overwrite: bool = False) -> ZeroShotAdapter:
    """Write the adapter folder `out` from the run's latest checkpoint (also while it trains: the checkpoint is
    replaced by renames, and only read here)."""
    from safetensors.torch import load_file

    from customvid.training.checkpoint import LATEST

    run_dir = Path(run_dir)
    config, ckpt = run_dir / "config.json", run_dir / "adapter_run" / LATEST
    if not config.is_file() or not (ckpt / "adapter.safetensors").is_file():
        raise CustomvidError(f"{run_dir} holds no zero-shot checkpoint to export")
    saved = json.loads(config.read_text())
    adapter_cfg = ZeroShotConfig(**saved["adapter"])
    adapter = ZeroShotAdapter(adapter_cfg, name="zeroshot").attach(components)
    # the checkpoint holds train_loop's flat parameter list, in the order of the optimizer groups
    params = [p for g in adapter.parameter_groups(saved["controlnet_lr_scale"]) for p in g["params"]]
    tensors = load_file(ckpt / "adapter.safetensors")
    if len(tensors) != len(params):
        raise CustomvidError(f"{ckpt} holds {len(tensors)} tensors, the adapter {len(params)}")
    with torch.no_grad():
        for i, p in enumerate(params):
            p.copy_(tensors[str(i)])
    step = json.loads((ckpt / "step.json").read_text())["step"]
    adapter.save(out, extra={"training": training_record(saved, step, run_dir)}, overwrite=overwrite)
    return adapter


def train_zeroshot(components, out: Path, cfg: ZeroShotTrainConfig, run_dir: Path | None = None,
                   overwrite: bool = False, progress: bool = True) -> ZeroShotAdapter:
    """Train and write the zero-shot adapter folder `out` (atomically); run_dir keeps logs, samples, checkpoints."""
    out = Path(out)
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(out)
    if out.exists() and not overwrite:
        raise CustomvidError(f"{out} exists; pass --overwrite to replace it")
    check_zeroshot_config(cfg)
    accelerator = make_accelerator(cfg.loop)
    components.to(accelerator.device)
    run_dir.mkdir(parents=True, exist_ok=True)
    if accelerator.is_main_process:
        check_run_config(run_dir, cfg.to_json(), OPERATIONAL, LOOP_ADDED_KEYS, hint="use another --run-dir")
        keep_init_record(run_dir, cfg.init_from)
    seed = cfg.loop.seed
    if cfg.init_from is not None:
        from customvid.adapters import load_adapter

        adapter = load_adapter(cfg.init_from, components, name="zeroshot")
        if not adapter.config.same_modules(cfg.adapter):
            raise CustomvidError(f"--init-from {cfg.init_from} was trained with {adapter.config}, this run asks for "
                                 f"{cfg.adapter}")
        adapter.config = cfg.adapter  # the run's inference-only settings are what its export carries
    else:
        with torch.random.fork_rng(devices=[]):  # the new projections start random: seeded
            torch.manual_seed(seed)
            adapter = ZeroShotAdapter(cfg.adapter, name="zeroshot").attach(components)
    adapter.train()
    (height, width), frames, fps = components.default_size, components.default_frames, components.fps
    scheduler, num_t = components.scheduler, components.scheduler.config.num_train_timesteps

    def loss_fn(step: int, indices) -> torch.Tensor:
        samples, noise, t, ref_keep, box_keep = [], [], [], [], []
        for i in indices:
            g = sample_generator(seed, step, i)
            rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=g)))
            # every sample a new clip: the world is unbounded, so no epochs and no overfitting to a clip set
            index = cfg.clip_offset + step * cfg.loop.batch_size + i
            samples.append(world_sample(index, frames, height, width, fps, rng, cfg.class_caption,
                                        cfg.generic_caption))
            ref_keep.append(float(rng.random() >= cfg.ref_dropout))
            box_keep.append(float(rng.random() >= cfg.box_dropout))
            noise.append(torch.randn((components.latent_channels, frames, height // components.vae_scale_factor,
                                      width // components.vae_scale_factor), generator=g))
            t.append(sample_timesteps(1, num_t, g))
        device = components.device
        latents = encode_clips(components.vae, np.stack([s["frames"] for s in samples])).to(device)
        boxes = np.stack([s["boxes"] for s in samples])
        adapter.set_condition(
            subject=np.stack([s["subject"] for s in samples]) if cfg.adapter.reference else None,
            subject_mask=np.stack([s["mask"] for s in samples]) if cfg.adapter.reference else None,
            boxes=boxes, ref_keep=ref_keep, box_keep=box_keep)
        text = components.encode_prompt([s["caption"] for s in samples])
        eps, tt = torch.stack(noise).to(device), torch.cat(t).to(device)
        noisy = scheduler.add_noise(latents, eps, tt)
        from customvid.models.backbones import unet_forward

        pred = unet_forward(components.unet, noisy, tt, text).float()
        target = diffusion_target(scheduler, latents, eps, tt).float()
        m = torch.from_numpy(np.stack([box_masks(b, (height, width), latents.shape[-2:]) for b in boxes]))
        weight = (cfg.box_weight * m + (1 - m))[:, None].to(device)  # [B, 1, F, h, w]
        adapter.clear_condition()
        return ((weight * (pred - target)) ** 2).mean()

    cases = validation_cases(frames, height, width, fps)

    def sample_fn(path: Path) -> None:
        adapter.train(False)
        write_sample_sheet(path, components, adapter, cases)
        adapter.train(True)

    groups = adapter.parameter_groups(cfg.controlnet_lr_scale)
    step = train_loop(run_dir, components, groups, loss_fn, cfg.loop, sample_fn,
                      progress=progress, accelerator=accelerator, modules=[adapter.net])
    adapter.train(False)
    if accelerator.is_main_process:
        adapter.save(out, extra={"training": training_record(cfg.to_json(), step, run_dir)}, overwrite=overwrite)
    return adapter


def write_sample_sheet(path: Path, components, adapter: ZeroShotAdapter, cases: list[dict], steps: int = 20) -> None:
    """One row per case: the generated clip with its boxes drawn, after the subject image."""
    from customvid.io import contact_sheet, write_image
    from customvid.sampling import generate

    rows = []
    for k, case in enumerate(cases):
        adapter.set_condition(subject=case["subject"], subject_mask=case["mask"], boxes=case["boxes"])
        video = generate(components, case["prompt"], seed=k, adapters=[adapter], num_inference_steps=steps).frames[0]
        adapter.clear_condition()
        rows.append(np.concatenate([case["subject"][None], draw_boxes(video, case["boxes"])]))
    sheet = np.stack(rows)
    write_image(path, contact_sheet(sheet.reshape(-1, *sheet.shape[2:]), cols=sheet.shape[1], scale=2))


def draw_boxes(video: np.ndarray, boxes: np.ndarray, colour=(255, 255, 255)) -> np.ndarray:
    """A copy of uint8 frames [F, H, W, 3] with each frame's box outlined (one pixel)."""
    out = video.copy()
    h, w = out.shape[1:3]
    for f, (x1, y1, x2, y2) in enumerate(np.nan_to_num(boxes).round().astype(int)):
        x1, x2 = np.clip([x1, x2 - 1], 0, w - 1)
        y1, y2 = np.clip([y1, y2 - 1], 0, h - 1)
        out[f, y1, x1:x2 + 1] = out[f, y2, x1:x2 + 1] = colour
        out[f, y1:y2 + 1, x1] = out[f, y1:y2 + 1, x2] = colour
    return out


