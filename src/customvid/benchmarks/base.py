"""`customvid bench base`: the embedded model's quality, measured with the world probe.

A fixed prompt set covers every base colour, shape, texture, background and motion (and the held-out
composition pairs); each prompt is generated with several seeds, each video is probed, and accuracy is reported
per attribute. Held-out pairs are scored separately so the gap to seen pairs shows compositional generalisation.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from customvid.world import vocab
from customvid.world.captions import make_caption
from customvid.world.spec import Subject
from customvid.world.splits import HELD_OUT_PAIRS

DIRECTIONAL = set(vocab.DIRECTIONS)


@dataclass(frozen=True)
class BenchPrompt:
    prompt: str
    subject: Subject
    background: str
    motion: str
    held_out: bool


def prompt_set() -> list[BenchPrompt]:
    """70 seen prompts (index i cycles colours, shapes, textures, backgrounds and motions with co-prime periods,
    so every value of each appears, in varied company) plus two per held-out composition pair."""
    out = []
    i = 0
    while len(out) < 70:
        colour = list(vocab.COLOURS)[i % 7]
        shape = vocab.SHAPES[(i // 7 + i) % 5]
        i += 1
        if (colour, shape) in HELD_OUT_PAIRS:
            continue
        k = len(out)
        motion = vocab.MOTIONS[k % len(vocab.MOTIONS)]
        if motion == "spin" and shape in vocab.ROTATION_INVARIANT_SHAPES:
            motion = "right"
        subject = Subject(shape, colour, vocab.TEXTURES[k % 3])
        background = vocab.BACKGROUNDS[k % len(vocab.BACKGROUNDS)]
        out.append(BenchPrompt(make_caption(subject, motion, background), subject, background, motion, False))
    for j, (colour, shape) in enumerate(sorted(HELD_OUT_PAIRS)):
        for m in range(2):
            motion = ["left", "right", "up", "down", "still"][(j + m) % 5]
            subject = Subject(shape, colour, vocab.TEXTURES[(j + m) % 3])
            background = vocab.BACKGROUNDS[(2 * j + m) % len(vocab.BACKGROUNDS)]
            out.append(BenchPrompt(make_caption(subject, motion, background), subject, background, motion, True))
    return out


def score_video(frames: np.ndarray, p) -> dict:
    """Probe scores of a video against what it should show (`p` has .subject, .background, .motion: a
    BenchPrompt or a ClipSpec)."""
    from customvid.world.probe import probe_video

    probe = probe_video(frames)
    return {
        "present_single": float(probe.single.mean()),
        "colour": float(probe.colour == p.subject.colour),
        "shape": float(probe.shape == p.subject.shape),
        "texture": float(probe.texture == p.subject.texture),
        "background": float(probe.background == p.background),
        "motion": float(probe.motion == p.motion),
        "probe": {
            "colour": probe.colour,
            "shape": probe.shape,
            "texture": probe.texture,
            "background": probe.background,
            "motion": probe.motion,
        },
    }


def _seen(r: dict) -> bool:
    return not r["held_out"]


# (summary row, per-video key, which videos): what `summarise` averages (tools/paired_compare.py pairs the same)
SUMMARY_ROWS = [
    *((k, k, _seen) for k in ("present_single", "colour", "shape", "texture", "background")),
    ("motion (directional)", "motion", lambda r: _seen(r) and r["motion_name"] in DIRECTIONAL),
    ("motion (all)", "motion", _seen),
    ("held-out pairs: colour", "colour", lambda r: r["held_out"]),
    ("held-out pairs: shape", "shape", lambda r: r["held_out"]),
]


def summarise(rows: list[dict]) -> dict:
    def mean(key, select):
        vals = [r[key] for r in rows if select(r)]
        return (float(np.mean(vals)), len(vals)) if vals else (float("nan"), 0)

    return {name: mean(key, select) for name, key, select in SUMMARY_ROWS}


@torch.no_grad()
def through_vae(vae, frames: np.ndarray) -> np.ndarray:
    """uint8 frames [N, H, W, 3] encoded (posterior mean) and decoded by `vae`: what the VAE can reproduce."""
    x = torch.from_numpy(frames).float().div(127.5).sub(1).movedim(-1, 1).to(vae.device, vae.dtype)
    rec = vae.decode(vae.encode(x).latent_dist.mean).sample
    return rec.float().clamp(-1, 1).add(1).mul(127.5).round().byte().movedim(1, -1).cpu().numpy()


@torch.no_grad()
def vae_roundtrip(components, n: int = 40, seed: int = 0) -> dict:
    """Probe accuracy on ground-truth clips passed through the model's VAE: the ceiling for generated videos."""
    from customvid.world import render_clip, sample_spec

    frames_n = components.default_frames
    h, w = components.default_size
    rows = []
    for i in range(n):
        split = "composition" if i % 4 == 3 else "train"
        spec = sample_spec(split, 10**6 + i, seed, frames=frames_n, width=w, height=h)
        clip = render_clip(spec)
        rec = through_vae(components.vae, clip.frames)
        rows.append({"held_out": split == "composition", "motion_name": spec.motion, **score_video(rec, spec)})
    return summarise(rows)


def run_base_bench(
    components,
    seeds=(0, 1),
    steps: int = 25,
    guidance: float = 7.5,
    limit: int | None = None,
    vae_clips: int = 40,
    progress: bool = True,
) -> dict:
    from customvid.sampling import generate

    prompts = prompt_set()
    if limit is not None:
        prompts = prompts[:limit]
    rows = []
    t0 = time.time()
    for p in tqdm(prompts, desc="bench base", disable=not progress):
        out = generate(
            components, [p.prompt] * len(seeds), seed=list(seeds), num_inference_steps=steps, guidance_scale=guidance
        )
        for seed, frames in zip(seeds, out.frames, strict=True):
            rows.append(
                {
                    "prompt": p.prompt,
                    "seed": seed,
                    "held_out": p.held_out,
                    "motion_name": p.motion,
                    **score_video(frames, p),
                }
            )
    return {
        "summary": summarise(rows),
        "vae_ceiling": vae_roundtrip(components, n=vae_clips),
        "rows": rows,
        "seconds": time.time() - t0,
        "settings": {"seeds": list(seeds), "steps": steps, "guidance": guidance, "prompts": len(prompts)},
    }


def format_markdown(result: dict) -> str:
    """Generated-video accuracy beside the VAE round-trip ceiling, one row per attribute."""
    lines = [
        "| attribute | generated | videos | VAE round-trip of ground truth (ceiling) | clips |",
        "|---|---|---|---|---|",
    ]
    for name, (value, n) in result["summary"].items():
        ceiling, m = result["vae_ceiling"][name]
        lines.append(f"| {name} | {value:.1%} | {n} | {ceiling:.1%} | {m} |")
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    from customvid.cli.generate import add_model_args

    p = subparsers.add_parser(
        "base",
        help="embedded model quality per attribute, measured with the world probe",
        description="Generate a fixed prompt set covering every colour, shape, texture, background and motion "
        "(plus the held-out composition pairs) with several seeds, probe each video and report accuracy.",
    )
    add_model_args(p)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--guidance", type=float, default=7.5)
    p.add_argument("--limit", type=int, default=None, help="only the first N prompts (quick look)")
    p.add_argument("--vae-clips", type=int, default=40, help="ground-truth clips for the VAE ceiling")
    p.add_argument("--json", default=None, help="also write all rows to this JSON file")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from customvid.cli.generate import load_from_args
    from customvid.errors import CustomvidError
    from customvid.io import write_json_atomic

    if args.steps < 1 or (args.limit is not None and args.limit < 1):
        raise CustomvidError("bench base needs --steps >= 1 and --limit >= 1")
    result = run_base_bench(
        load_from_args(args),
        seeds=args.seeds,
        steps=args.steps,
        guidance=args.guidance,
        limit=args.limit,
        vae_clips=args.vae_clips,
    )
    print(format_markdown(result))
    print(f"\n{result['settings']['prompts']} prompts x {len(args.seeds)} seeds in {result['seconds']:.0f} s")
    if args.json:
        write_json_atomic(args.json, result)
    return 0
