"""`customvid bench refine`: Magic-Me's two V2V stages, measured with the world probe.

Region (Face VCD): world clips whose subject is drawn small (a 14 px sprite, boxes <= 16 px, on motions that keep
its scale) pass through the model's VAE (`render`: the best a generated clip of them can be) or are generated from
the prompt (`generate`), then have their subject region refined. Scored: identity (shape, colour, colour2
and texture all right, as in `bench subject`) before vs after, PSNR outside the feathered crop (the background
must be untouched: 100 dB = identical) and inside the crop around the subject box. Tiled (Tiled VCD): the same
64 px clips upscaled x2 by plain bicubic vs tiled refinement; identity (the probe reads any size, no downscale
needed), sharpness (variance of the Laplacian) and PSNR of the result shrunk back against its input.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import cv2
import numpy as np
from tqdm.auto import tqdm

from customvid.refine import region as region_mod
from customvid.refine import tiled as tiled_mod
from customvid.world import vocab

SMALL_SIZE = 14.0  # px: the sprite's bounding disc; its pixel boxes are <= 16 px
MOTIONS = ["left", "right", "up", "down", "still", "bounce", "circle", "down_right"]  # scale stays 1
DEFAULT_PROMPT = "a {subject} {motion} on a {background} background"
SOURCES = ("render", "generate")
PSNR_CAP = 100.0
IDENTITY_KEYS = ("identity", "shape", "colour", "texture", "background")
# condition -> (the row's probe scores, {summary column: row field})
CONDITIONS = {
    "region: before": ("before", {}),
    "region: after": ("after", {"psnr_outside": "psnr_outside", "psnr_crop_background": "psnr_crop_background"}),
    "tiled: bicubic x2": ("bicubic", {"sharpness": "sharpness_bicubic"}),
    "tiled: refined x2": ("tiled", {"sharpness": "sharpness_tiled", "psnr_down": "psnr_down_tiled"}),
}


def bench_specs(components, n: int, subject_name: str | None = None, seed: int = 0) -> list:
    """n clip specs in the model's format: the held-out subject `subject_name`, or base-vocabulary subjects of
    the train split; subject drawn small."""
    from customvid.world.splits import CUSTOM_SUBJECTS, build_spec, sample_spec

    (h, w), frames = components.default_size, components.default_frames
    specs = []
    for i in range(n):
        base = sample_spec("train", i, seed, frames, w, h)
        subject = CUSTOM_SUBJECTS[subject_name] if subject_name else base.subject
        spec = build_spec(subject, MOTIONS[i % len(MOTIONS)], base.background, np.random.default_rng([seed, 313, i]),
                          frames, w, h)
        specs.append(dataclasses.replace(spec, size=min(spec.size, SMALL_SIZE)))  # smaller still fits the frame
    return specs


def prompt_for(template: str, spec) -> str:
    return template.format(subject=spec.subject.phrase(), motion=vocab.MOTION_PHRASES[spec.motion][0],
                           background=spec.background)


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    """PSNR (dB, capped at PSNR_CAP) of uint8 frames over the pixels `where` [F, H, W] is True (NaN: none)."""
    if not where.any():
        return float("nan")
    mse = float(((a.astype(np.float64) - b) ** 2)[where].mean())
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, 10 * np.log10(255.0**2 / mse))


def sharpness(frames: np.ndarray) -> float:
    """Mean over frames of the variance of the grey image's Laplacian."""
    return float(np.mean([cv2.Laplacian(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var() for f in frames]))


def identity(frames: np.ndarray, spec) -> dict:
    from customvid.benchmarks.subject import score

    s = score(frames, spec.subject, spec.background, spec.motion)
    return {k: s[k] for k in IDENTITY_KEYS}


def _box_mask(boxes: np.ndarray, shape: tuple[int, int], grow: int = 2) -> np.ndarray:
    """bool [F, H, W]: each frame's box grown by `grow` px."""
    out = np.zeros((len(boxes), *shape), bool)
    for f, (x1, y1, x2, y2) in enumerate(boxes):
        out[f, max(0, int(y1) - grow) : int(np.ceil(y2)) + grow, max(0, int(x1) - grow) : int(np.ceil(x2)) + grow] = 1
    return out


def run_refine_bench(
    components,
    n_clips: int = 8,
    subject: str | None = None,
    prompt: str = DEFAULT_PROMPT,
    adapters=(),
    source: str = "render",
    steps: int = 20,
    region_strength: float = region_mod.DEFAULT_STRENGTH,
    tiled_strength: float = tiled_mod.DEFAULT_STRENGTH,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    import torch

    from customvid.errors import CustomvidError
    from customvid.refine import region_refine, resize_frames, tiled_upscale
    from customvid.sampling import decode_latents, generate, to_uint8
    from customvid.training.subject import encode_clips
    from customvid.world import render_clip

    rows = []
    for i, spec in enumerate(tqdm(bench_specs(components, n_clips, subject, seed), disable=not progress)):
        text = prompt_for(prompt, spec)
        common = {"num_inference_steps": steps, "seed": seed + i, "adapters": adapters}
        if source == "render":
            clip = render_clip(spec)
            with torch.no_grad():
                before = to_uint8(decode_latents(components.vae, encode_clips(components.vae, clip.frames[None])))[0]
            boxes = clip.boxes  # the truth: measures the refinement, not a detector
        else:
            before = generate(components, text, **common).frames[0]
            boxes = None  # the probe finds them
        row = {"clip": i, "prompt": text, "subject": spec.subject.phrase(), "motion": spec.motion,
               "background": spec.background, "before": identity(before, spec)}
        t0 = time.perf_counter()
        try:
            region = region_refine(components, before, text, boxes=boxes, strength=region_strength, **common)
        except CustomvidError as err:  # a generated clip the probe finds no subject in
            row["region_skipped"] = str(err)
        else:
            outside, crop = region.mask == 0, region.mask > 0
            subject_area = _box_mask(region.boxes, before.shape[1:3])
            row.update(after=identity(region.frames, spec), region_seconds=time.perf_counter() - t0,
                       box_side=float(np.max(region.boxes[:, 2:] - region.boxes[:, :2])),
                       crop_side=int(region.crops[0, 2]), psnr_outside=psnr(region.frames, before, outside),
                       psnr_crop_background=psnr(region.frames, before, crop & ~subject_area))
        f, h, w, _ = before.shape
        t0 = time.perf_counter()
        bicubic = resize_frames(before, 2 * h, 2 * w)
        tiled = tiled_upscale(components, before, text, strength=tiled_strength, **common)
        row.update(tiled_seconds=time.perf_counter() - t0, bicubic=identity(bicubic, spec),
                   tiled=identity(tiled, spec), sharpness_input=sharpness(before),
                   sharpness_bicubic=sharpness(bicubic), sharpness_tiled=sharpness(tiled),
                   psnr_down_tiled=psnr(resize_frames(tiled, h, w), before, np.ones((f, h, w), bool)))
        rows.append(row)
    return {"summary": summarise(rows), "rows": rows,
            "settings": {"n_clips": n_clips, "subject": subject, "prompt": prompt, "source": source, "steps": steps,
                         "region_strength": region_strength, "tiled_strength": tiled_strength, "seed": seed,
                         "adapters": [a.name for a in adapters], "small_size": SMALL_SIZE}}


def summarise(rows: list[dict]) -> dict:
    def mean(values) -> float:
        values = [v for v in values if v is not None and not np.isnan(v)]
        return float(np.mean(values)) if values else float("nan")

    out = {}
    for label, (key, extras) in CONDITIONS.items():
        sel = [r for r in rows if key in r]
        out[label] = {k: mean([r[key][k] for r in sel]) for k in IDENTITY_KEYS}
        out[label].update({name: mean([r.get(field) for r in sel]) for name, field in extras.items()})
        out[label]["clips"] = len(sel)
    return out


def format_markdown(result: dict) -> str:
    keys = [*IDENTITY_KEYS, "psnr_outside", "psnr_crop_background", "sharpness", "psnr_down"]
    lines = ["| condition | " + " | ".join(keys) + " | clips |", "|---" * (len(keys) + 2) + "|"]
    for label, row in result["summary"].items():
        cells = [f"{row[k]:.1%}" if k in IDENTITY_KEYS else f"{row[k]:.1f}" if k in row else "" for k in keys]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {row['clips']} |")
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    from customvid.cli.generate import add_model_args

    p = subparsers.add_parser("refine", help="region refinement and tiled upscaling, measured with the probe",
                              description=__doc__.split("\n\n")[1])
    add_model_args(p)
    p.add_argument("--adapter", action="append", default=[], metavar="DIR", help="adapter folder (repeatable)")
    p.add_argument("--subject", default=None, help="held-out subject of the adapter, e.g. checkered_diamond "
                   "(default: base-vocabulary subjects)")
    p.add_argument("--prompt", default=DEFAULT_PROMPT, help="prompt template; {subject}, {motion} and {background} "
                   "are filled in per clip, e.g. 'a <sks> diamond {motion} on a {background} background' "
                   f"(default: '{DEFAULT_PROMPT}')")
    p.add_argument("--source", default="render", help="render (world clips through the VAE) or generate")
    p.add_argument("--clips", type=int, default=8, help="clips (default 8)")
    p.add_argument("--steps", type=int, default=20, help="denoising steps of the full schedule (default 20)")
    p.add_argument("--region-strength", type=float, default=region_mod.DEFAULT_STRENGTH,
                   help=f"region refinement's strength (default {region_mod.DEFAULT_STRENGTH})")
    p.add_argument("--tiled-strength", type=float, default=tiled_mod.DEFAULT_STRENGTH,
                   help=f"tiled upscaling's strength (default {tiled_mod.DEFAULT_STRENGTH})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the summary and all rows to this JSON file")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from customvid.adapters import read_adapter
    from customvid.cli.generate import attach_adapters, load_from_args
    from customvid.errors import CustomvidError
    from customvid.io import write_json_atomic
    from customvid.world.splits import CUSTOM_SUBJECTS

    if args.subject is not None and args.subject not in CUSTOM_SUBJECTS:
        raise CustomvidError(f"unknown subject {args.subject!r}; known: {', '.join(CUSTOM_SUBJECTS)}")
    if args.source not in SOURCES:
        raise CustomvidError(f"unknown --source {args.source!r}; expected {' or '.join(SOURCES)}")
    if args.clips < 1 or args.steps < 1:
        raise CustomvidError("bench refine needs --clips >= 1 and --steps >= 1")
    for s in (args.region_strength, args.tiled_strength):
        if not 0 < s <= 1:
            raise CustomvidError(f"strengths must be in (0, 1], got {s}")
    try:
        args.prompt.format(subject="", motion="", background="")
    except (KeyError, IndexError, ValueError) as err:
        raise CustomvidError(f"--prompt: bad template {args.prompt!r} ({err})") from err
    files = [read_adapter(path) for path in args.adapter]
    components = load_from_args(args)
    adapters = attach_adapters(components, files, [])
    result = run_refine_bench(components, args.clips, args.subject, args.prompt, adapters, args.source, args.steps,
                              args.region_strength, args.tiled_strength, args.seed)
    print(format_markdown(result))
    if args.json:
        write_json_atomic(args.json, result)
    return 0

