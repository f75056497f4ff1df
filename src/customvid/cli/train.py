"""`customvid train-base`: reproduce the embedded default model from scratch (VAE, then UNet), resumably."""

from __future__ import annotations

import argparse
from pathlib import Path


def _channels(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if len(values) < 2 or any(v <= 0 or v % 16 for v in values):
        raise argparse.ArgumentTypeError(f"need >= 2 positive multiples of 16, got {text!r}")
    return values


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _device(text: str) -> str:
    import torch

    try:
        return str(torch.device(text))
    except RuntimeError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def register(sub) -> None:
    p = sub.add_parser(
        "train-base",
        help="train the embedded base model (VAE then UNet3D) on the toy world; resumable",
        description="Train the embedded default model from scratch on the toy world's train split. Interrupt at any "
        "time (Ctrl-C saves a checkpoint); run the same command again to resume exactly where it stopped.",
    )
    p.add_argument("--out", type=Path, default=Path("runs/base"), help="run folder (checkpoints, logs)")
    p.add_argument(
        "--export",
        type=Path,
        default=None,
        help="write the finished model folder here (default: the package's embedded model folder)",
    )
    p.add_argument(
        "--export-only",
        action="store_true",
        help="export the latest checkpoint's EMA weights now, without training (given no recipe flags: with the "
        "run's own recipe from its config.json)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="start the UNet from this model folder's weights (warm start of a new run)",
    )
    p.add_argument("--vae-steps", type=_positive, default=None)
    p.add_argument(
        "--decoder-steps",
        type=_non_negative,
        default=None,
        help="steps fine-tuning the VAE decoder alone after the VAE (default 3000; 0: none)",
    )
    p.add_argument(
        "--unet-steps",
        type=_non_negative,
        default=None,
        help="UNet steps (default 10000); 0 with --init-from keeps that model's UNet, e.g. to fine-tune its decoder",
    )
    p.add_argument(
        "--stop-at",
        type=_positive,
        default=None,
        help="stop (checkpoint and export) after UNet step N; the learning rate still follows --unet-steps, so a "
        "run split over sessions or time-limited calls keeps one schedule",
    )
    p.add_argument("--unet-batch", type=_positive, default=None)
    p.add_argument("--unet-lr", type=float, default=None, help="peak UNet learning rate (default 3e-4)")
    p.add_argument("--unet-channels", type=_channels, default=None, help="UNet widths, e.g. 32,64,128")
    p.add_argument("--checkpoint-every", type=_positive, default=None)
    p.add_argument(
        "--snr-weighting",
        choices=("min_snr_v", "min_snr"),
        default=None,
        help="loss weight per noise level (default min_snr_v: full weight on high-noise steps; min_snr: Hang et "
        "al., the recipe of runs made before this option existed)",
    )
    p.add_argument(
        "--subject-weight",
        type=float,
        default=None,
        help="diffusion-loss weight inside the subject mask relative to outside (default 1: unweighted)",
    )
    p.add_argument(
        "--temporal-text",
        action="store_true",
        default=None,
        help="give every temporal transformer cross-attention to the caption (zero-initialised; a stock "
        "--init-from model gains it and starts out computing exactly what it did)",
    )
    p.add_argument(
        "--frame-time",
        action="store_true",
        default=None,
        help="also add the frame index to every ResNet block's time embedding (zero-initialised; implies "
        "--temporal-text)",
    )
    p.add_argument(
        "--timestep-bias",
        type=float,
        default=None,
        help="k > 1 draws more high-noise training steps, t = T(1 - u^k) (default 1: uniform)",
    )
    p.add_argument(
        "--reference-clips",
        type=_non_negative,
        default=None,
        help="stable targets: captioned steps at t >= --reference-min-t average their v-target over this many "
        "more clips of the same caption, posterior-weighted (Xu et al. 2023; default 0: off)",
    )
    p.add_argument(
        "--reference-min-t",
        type=_non_negative,
        default=None,
        help="lowest timestep that gets a stable target (default 950; below it the weights pick the own clip)",
    )
    p.add_argument("--text-lr", type=float, default=None, help="peak lr of the temporal text layers (default 3e-4)")
    p.add_argument(
        "--sample-every",
        type=_non_negative,
        default=None,
        help="steps between sample sheets in <out>/samples (default 500; 0: none)",
    )
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: all cores)")
    p.add_argument("--device", type=_device, default="cpu", help="where the UNet trains, e.g. cuda (default cpu)")
    p.add_argument(
        "--workers", type=_non_negative, default=0, help="processes rendering training clips ahead (default 0)"
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import fcntl
    import signal

    import torch

    from customvid.errors import CustomvidError
    from customvid.training.base import (
        BaseTrainConfig,
        _check_run_config,
        export_checkpoint,
        export_embedded,
        finetune_decoder,
        train_unet,
        train_vae,
    )

    recipe = (
        "vae_steps",
        "decoder_steps",
        "unet_steps",
        "unet_batch",
        "unet_lr",
        "unet_channels",
        "checkpoint_every",
        "sample_every",
        "snr_weighting",
        "subject_weight",
        "temporal_text",
        "frame_time",
        "text_lr",
        "timestep_bias",
        "reference_clips",
        "reference_min_t",
    )
    given = any(getattr(args, n) is not None for n in recipe) or args.init_from is not None or args.seed != 0
    if args.export_only and not given and (args.out / "config.json").is_file():
        # export a run as it was made, without repeating its flags
        print(f"model written to {export_checkpoint(args.out, BaseTrainConfig.from_run(args.out), args.export)}")
        return 0
    cfg = BaseTrainConfig(seed=args.seed)
    for name in recipe:
        if getattr(args, name) is not None:
            setattr(cfg, name, getattr(args, name))
    cfg.threads, cfg.workers = args.threads, args.workers
    cfg.device = args.device
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise CustomvidError(f"--device {args.device}: torch sees no CUDA GPU on this machine")
    if args.init_from is not None:
        if not (args.init_from / "unet" / "config.json").is_file():
            raise CustomvidError(f"--init-from {args.init_from}: no unet/config.json there")
        cfg.init_from = str(args.init_from)
    elif cfg.unet_steps == 0:
        raise CustomvidError("--unet-steps 0 keeps the UNet of --init-from MODEL; without one there is no UNet")
    if args.threads:
        torch.set_num_threads(args.threads)
    _check_run_config(args.out, cfg, write=not args.export_only)
    if args.export_only:  # reads the latest checkpoint only, so it may run beside the trainer
        print(f"model written to {export_checkpoint(args.out, cfg, args.export)}")
        return 0
    # One trainer per run folder: two would overwrite each other's checkpoints.
    lock = open(args.out / ".lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise CustomvidError(f"another train-base is already running in {args.out}") from None
    # SIGTERM (e.g. a batch scheduler, `kill`) checkpoints like Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    vae = train_vae(args.out, cfg, progress=not args.no_progress)
    vae = finetune_decoder(args.out, cfg, vae, progress=not args.no_progress)
    unet, scheduler, step = train_unet(args.out, cfg, vae, progress=not args.no_progress, stop_at=args.stop_at)
    dest = export_embedded(args.export, unet, vae, scheduler, cfg, step, args.out)
    print(f"model written to {dest}")
    return 0
