"""`customvid bench ...`: benchmarks, one subcommand each.

BENCH_COMMANDS maps a subcommand name to its registrar: a callable here, or "module:function" imported when
the parser is built (a module that does not exist yet is skipped, like the top-level command registry). A
registrar gets the `bench` subparsers and adds exactly its own subcommand with ``set_defaults(func=...)``.
To add one: ``BENCH_COMMANDS["base"] = "customvid.benchmarks.base:register"``.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

from customvid.cli.generate import add_model_args, load_from_args

Registrar = Callable[[argparse._SubParsersAction], None]


def _register_speed(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "speed",
        help="our sampling loop vs a plain diffusers loop",
        description="Seconds per clip and per denoising step, overhead % and peak memory of customvid's "
        "sampling loop against a plain hand-written diffusers loop (same UNet, solver, steps, CFG, latents), "
        "interleaved in one run. Prints a markdown table.",
    )
    add_model_args(p)
    p.add_argument("--steps", type=int, default=25, help="denoising steps (default: 25)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each loop (default: 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs of each loop first (default: 1)")
    p.add_argument("--guidance", type=float, default=7.5, help="CFG scale (default: 7.5)")
    p.add_argument("--solver", default="ddim", choices=("ddim", "dpm++"), help="sampler (default: ddim)")
    p.add_argument("--frames", type=int, help="frames (default: the model's)")
    p.add_argument("--height", type=int, help="height in pixels (default: the model's)")
    p.add_argument("--width", type=int, help="width in pixels (default: the model's)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.set_defaults(func=_run_speed)


def _run_speed(args: argparse.Namespace) -> int:
    from customvid.errors import CustomvidError
    from customvid.sampling.bench import format_markdown, run_speed

    if (
        args.steps < 1
        or args.repeats < 1
        or args.warmup < 0
        or (args.threads is not None and args.threads < 1)
    ):
        raise CustomvidError("bench speed needs --steps >= 1, --repeats >= 1, --warmup >= 0, --threads >= 1")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    report = run_speed(
        load_from_args(args),
        num_inference_steps=args.steps,
        repeats=args.repeats,
        warmup=args.warmup,
        guidance_scale=args.guidance,
        solver=args.solver,
        num_frames=args.frames,
        height=args.height,
        width=args.width,
    )
    print(format_markdown(report))
    return 0


BENCH_COMMANDS: dict[str, Registrar | str] = {
    "speed": _register_speed,
    "base": "customvid.benchmarks.base:register",
    "probe": "customvid.benchmarks.probe:register",
    "subject": "customvid.benchmarks.subject:register",
    "motion": "customvid.benchmarks.motion:register",
    "masks": "customvid.benchmarks.masks:register",
    "identity": "customvid.benchmarks.identity:register",
    "noise": "customvid.benchmarks.noise:register",
    "refine": "customvid.benchmarks.refine:register",
    "zeroshot": "customvid.benchmarks.zeroshot:register",
}


def _registrar(target: Registrar | str) -> Registrar | None:
    if callable(target):
        return target
    module_name, _, func = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name == module_name:
            return None  # benchmark not built yet
        raise
    return getattr(module, func or "register")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="benchmarks", description="Benchmarks; see each subcommand.")
    sub = p.add_subparsers(dest="bench_command", metavar="BENCH", required=True)
    for target in BENCH_COMMANDS.values():
        registrar = _registrar(target)
        if registrar is not None:
            registrar(sub)
