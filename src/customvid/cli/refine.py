"""`customvid refine`: video-to-video refinement of a clip, its subject's region (Face VCD) or a x2 tiled upscale
(Tiled VCD). Every input is checked, and the subject boxes found, before the model loads."""

from __future__ import annotations

import argparse
from pathlib import Path

from customvid.errors import CustomvidError

MODES = ("region", "tiled")


def register(subparsers: argparse._SubParsersAction) -> None:
    from customvid.cli.generate import add_model_args

    p = subparsers.add_parser(
        "refine",
        help="refine a video: its subject's region, or a x2 tiled upscale",
        description="Re-denoise part of a video with a prompt (and adapters). region: find the subject's box per "
        "frame, crop a square around it, re-render it at the model's size (default strength 0.6) and paste it "
        "back with a feathered edge; pixels outside the crop stay exactly as they were. tiled: upscale x2 "
        "(bicubic) and re-denoise overlapping model-size tiles lightly (default strength 0.2).",
    )
    p.add_argument("--video", required=True, metavar="PATH", help="input video (.mp4, .gif or a PNG folder)")
    p.add_argument("--prompt", required=True, metavar="TEXT", help="the prompt (the adapter's token, if any)")
    p.add_argument("--out", required=True, metavar="PATH", help="output video (.mp4, .gif, or a folder)")
    p.add_argument("--mode", required=True, metavar="MODE", help="region or tiled")
    p.add_argument("--adapter", action="append", default=[], metavar="DIR", help="adapter folder (repeatable)")
    p.add_argument("--adapter-weight", action="append", default=[], metavar="SPEC",
                   help="weight or schedule of the adapter at the same position (see `generate`)")
    p.add_argument("--strength", type=float, help="share of the denoising schedule re-run, in (0, 1] (default: "
                   "0.6 region, 0.2 tiled)")
    p.add_argument("--detector", default="probe", metavar="NAME",
                   help="region mode: probe (the world probe, default), haar (OpenCV frontal faces) or a boxes "
                   '.json file ({"boxes": [[x1, y1, x2, y2], ...], "units": "pixels"} or {"keyframes": {"0": '
                   '[...]}, "units": "normalized"})')
    p.add_argument("--margin", type=float,
                   help="region mode: crop margin on each side, as a share of the box (default: 1.0)")
    p.add_argument("--steps", type=int, default=20, help="denoising steps of the full schedule (default: 20)")
    p.add_argument("--guidance", type=float, default=7.5, help="classifier-free guidance scale (default: 7.5)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--noise", default="iid", help="noise: iid, ar1:GAMMA, mixed:ALPHA (default: iid)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    add_model_args(p)
    p.set_defaults(func=run)


def _check_args(args: argparse.Namespace) -> None:
    from customvid.cli.generate import VIDEO_SUFFIXES, _check_outputs
    from customvid.refine import DETECTORS
    from customvid.sampling.noise import noise_sampler
    from customvid.sampling.schedules import weight_schedule

    if args.mode not in MODES:
        raise CustomvidError(f"unknown --mode {args.mode!r}; expected {' or '.join(MODES)}")
    if args.strength is not None and not 0 < args.strength <= 1:
        raise CustomvidError(f"--strength must be in (0, 1], got {args.strength}")
    if args.steps < 1:
        raise CustomvidError(f"--steps must be >= 1, got {args.steps}")
    if args.margin is not None and args.margin < 0:
        raise CustomvidError(f"--margin must be >= 0, got {args.margin}")
    if not args.prompt.strip():
        raise CustomvidError("--prompt is empty")
    if args.detector not in DETECTORS and not args.detector.lower().endswith(".json"):
        raise CustomvidError(f"unknown --detector {args.detector!r}; expected probe, haar or a boxes .json file")
    suffix = Path(args.out).suffix.lower()
    if suffix and suffix not in VIDEO_SUFFIXES:
        raise CustomvidError(f"--out {args.out}: unsupported video format {suffix!r} (use .mp4, .gif or a folder)")
    _check_outputs([Path(args.out)], args.overwrite)
    noise_sampler(args.noise)
    if len(args.adapter_weight) > len(args.adapter):
        raise CustomvidError(f"{len(args.adapter_weight)} --adapter-weight for {len(args.adapter)} --adapter")
    for spec in args.adapter_weight:
        weight_schedule(spec)


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    from customvid import io
    from customvid.adapters import read_adapter
    from customvid.cli.generate import attach_adapters, load_from_args
    from customvid.refine import detect_boxes, region_refine, smooth_boxes, tiled_upscale

    video = io.read_video(args.video)
    # found (and smoothed) now: a video without a subject fails before the model loads
    boxes = smooth_boxes(detect_boxes(video.frames, args.detector)) if args.mode == "region" else None
    adapter_files = [read_adapter(path) for path in args.adapter]
    components = load_from_args(args)
    adapters = attach_adapters(components, adapter_files, args.adapter_weight)
    common = {"num_inference_steps": args.steps, "guidance_scale": args.guidance, "seed": args.seed,
              "noise": args.noise, "adapters": adapters}
    if args.strength is not None:  # else each mode's own default
        common["strength"] = args.strength
    if args.mode == "region":
        if args.margin is not None:
            common["margin"] = args.margin
        frames = region_refine(components, video.frames, args.prompt, boxes=boxes, smooth=0, **common).frames
    else:
        frames = tiled_upscale(components, video.frames, args.prompt, **common)
    io.write_video(args.out, frames, fps=video.fps)  # atomic: temp file, then rename
    print(args.out)
    return 0
