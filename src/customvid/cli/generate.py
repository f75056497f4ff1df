"""`customvid generate`: text -> video file (+ contact sheet), one prompt or a prompt file.

Heavy imports (torch, diffusers) happen inside the handler so that `customvid --help` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from customvid.cli.zeroshot_args import add_zeroshot_args, apply_zeroshot, check_zeroshot_args
from customvid.errors import CustomvidError

VIDEO_SUFFIXES = (".mp4", ".gif")  # what customvid.io.write_video writes (or a folder of PNGs: no suffix)
DTYPES = ("float32", "float16", "bfloat16")


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """--model / --motion-adapter / --device / --dtype, shared with `bench speed`."""
    parser.add_argument("--model", metavar="PATH", help="model folder (default: the embedded model)")
    parser.add_argument(
        "--motion-adapter",
        metavar="PATH",
        help="AnimateDiff MotionAdapter folder, for an SD1.5-style --model",
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    parser.add_argument("--dtype", default="float32", choices=DTYPES, help="weights dtype (default: float32)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "generate",
        help="generate videos from text",
        description="Generate one video per prompt. With several prompts, outputs are numbered: "
        "clip.mp4 -> clip_000.mp4, clip_001.mp4, ...; prompt i uses seed N+i.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", metavar="TEXT", help="the prompt")
    source.add_argument(
        "--prompt-file",
        metavar="FILE",
        help="one prompt per line (blank lines and lines starting with # are skipped)",
    )
    p.add_argument("--out", required=True, metavar="PATH", help="output video (.mp4, .gif, or a folder)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    add_model_args(p)
    p.add_argument("--steps", type=int, default=25, help="denoising steps (default: 25)")
    p.add_argument(
        "--guidance", type=float, default=7.5, help="classifier-free guidance scale (default: 7.5)"
    )
    p.add_argument("--negative-prompt", default="", metavar="TEXT", help="negative prompt (default: empty)")
    p.add_argument("--frames", type=int, help="number of frames (default: the model's)")
    p.add_argument("--height", type=int, help="height in pixels (default: the model's)")
    p.add_argument("--width", type=int, help="width in pixels (default: the model's)")
    p.add_argument("--fps", type=float, help="frames per second of the file (default: the model's)")
    p.add_argument("--solver", default="ddim", choices=("ddim", "dpm++"), help="sampler (default: ddim)")
    p.add_argument("--noise", default="iid", help="initial noise: iid, ar1:GAMMA, mixed:ALPHA (default: iid)")
    p.add_argument("--batch-size", type=int, default=1, help="prompts per sampling batch (default: 1)")
    p.add_argument("--contact-sheet", metavar="PNG", help="also write all frames as one grid image")
    p.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="DIR",
        help="adapter folder to load (repeatable: several adapters at once)",
    )
    p.add_argument(
        "--adapter-weight",
        action="append",
        default=[],
        metavar="SPEC",
        help="weight of the adapter at the same position: a number or a per-step schedule (dws, "
        "step:LOW,HIGH,K,OF, linear:A,B, constant:W); default: the method's own (dws for a subject LoRA)",
    )
    add_zeroshot_args(p)
    p.add_argument("--overwrite", action="store_true", help="replace output files that exist")
    p.set_defaults(func=run)


def read_prompts(args: argparse.Namespace) -> list[str]:
    if args.prompt is not None:
        if not args.prompt.strip():
            raise CustomvidError("--prompt is empty")
        return [args.prompt]
    path = Path(args.prompt_file)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise CustomvidError(f"cannot read prompt file {path}: {err.strerror or err}") from err
    prompts = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not prompts:
        raise CustomvidError(f"prompt file {path} has no prompts")
    return prompts


def numbered_paths(path: str, count: int) -> list[Path]:
    """One path for one output; clip.mp4 -> clip_000.mp4, clip_001.mp4, ... for several."""
    p = Path(path)
    if count == 1:
        return [p]
    return [p.with_name(f"{p.stem}_{i:03d}{p.suffix}") for i in range(count)]


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CustomvidError(f"--device {name}: no CUDA device is available")
    return name


def load_from_args(args: argparse.Namespace):
    import torch

    from customvid.models import load_components

    return load_components(
        args.model,
        device=resolve_device(args.device),
        dtype=getattr(torch, args.dtype),
        motion_adapter=args.motion_adapter,
    )


def _check_args(args: argparse.Namespace) -> None:
    # Fail before loading a model or sampling, not after minutes of work.
    suffix = Path(args.out).suffix.lower()
    if suffix and suffix not in VIDEO_SUFFIXES:
        raise CustomvidError(
            f"--out {args.out}: unsupported video format {suffix!r} (use .mp4, .gif or a folder)"
        )
    for name in ("steps", "batch_size", "frames", "height", "width"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise CustomvidError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.fps is not None and args.fps <= 0:
        raise CustomvidError(f"--fps must be > 0, got {args.fps}")
    from customvid.sampling.noise import noise_sampler
    from customvid.sampling.schedules import weight_schedule

    noise_sampler(args.noise)  # validates the spec
    if len(args.adapter_weight) > len(args.adapter):
        raise CustomvidError(f"{len(args.adapter_weight)} --adapter-weight for {len(args.adapter)} --adapter")
    for spec in args.adapter_weight:
        weight_schedule(spec)


def _check_outputs(paths: list[Path], overwrite: bool) -> None:
    if overwrite:
        return
    existing = [p for p in paths if p.exists()]
    if existing:
        raise CustomvidError(f"{existing[0]} exists; pass --overwrite to replace it")


def attach_adapters(components, files: list, weights: list[str]) -> list:
    """Attach the adapter folders already read (`read_adapter`), each with its --adapter-weight or its default."""
    from customvid.adapters import load_adapter

    weights = list(weights) + [None] * (len(files) - len(weights))
    return [load_adapter(f, components, schedule=w) for f, w in zip(files, weights, strict=True)]


def free_control(components, batch: list[str], free, args, seeds: list[int], frames: int, size: tuple[int, int]):
    """--box-control free: Peekaboo-style masked cross-attention for the batch (None without it); its `latents`
    are the seeded noise `generate` would draw, shaped by the control."""
    if free is None:
        return None
    from customvid.sampling.box_control import free_box_control, initial_latents

    control = free_box_control(components, batch, free[1], subject=args.box_subject, video_size=size)
    start = initial_latents(components, len(batch), seed=seeds, num_frames=frames, height=size[0], width=size[1],
                            noise=args.noise)
    control.latents = control.shape_noise(start)
    return control


def run(args: argparse.Namespace) -> int:
    prompts = read_prompts(args)
    _check_args(args)
    from customvid import io
    from customvid.sampling import generate

    outs = numbered_paths(args.out, len(prompts))
    sheets = numbered_paths(args.contact_sheet, len(prompts)) if args.contact_sheet else None
    _check_outputs(outs + (sheets or []), args.overwrite)
    from customvid.adapters import read_adapter

    adapter_files = [read_adapter(path) for path in args.adapter]  # a bad folder fails before the model loads
    conditions = check_zeroshot_args(args)
    components = load_from_args(args)
    adapters = attach_adapters(components, adapter_files, args.adapter_weight)
    frames = args.frames or components.default_frames
    size = (args.height or components.default_size[0], args.width or components.default_size[1])
    zeroshot, free = apply_zeroshot(components, args, conditions, frames, size)
    adapters += zeroshot
    fps = args.fps or components.fps
    for start in range(0, len(prompts), args.batch_size):
        batch = prompts[start : start + args.batch_size]
        seeds = [args.seed + start + i for i in range(len(batch))]
        box = free_control(components, batch, free, args, seeds, frames, size)
        with box or contextlib.nullcontext():
            result = generate(
                components,
                batch,
                negative_prompt=args.negative_prompt,
                num_frames=args.frames,
                height=args.height,
                width=args.width,
                num_inference_steps=args.steps,
                guidance_scale=args.guidance,
                seed=seeds,
                solver=args.solver,
                noise=args.noise,
                progress=True,
                adapters=adapters,
                callback=box.callback if box else None,
                latents=box.latents if box else None,
            )
        for i, video in enumerate(result.frames, start=start):
            io.write_video(outs[i], video, fps=fps)
            print(outs[i])
            if sheets is not None:
                io.write_contact_sheet(sheets[i], video)
                print(sheets[i])
    return 0
