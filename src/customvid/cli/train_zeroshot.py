"""`customvid train-zeroshot`: DreamVideo-2's reference attention + mask-guided motion module on the world's training
split; resumable, atomic, multi-process via accelerate."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from customvid.cli.adapter_training import add_loop_args, loop_config
from customvid.cli.train import _non_negative


def register(sub) -> None:
    p = sub.add_parser(
        "train-zeroshot",
        help="train the zero-shot subject (one image) + box-trajectory modules on the world; resumable",
        description="Train DreamVideo-2's modules with the base model frozen: reference attention (the subject from "
        "one image) and the mask-guided motion module (the subject follows per-frame boxes), on world clips rendered "
        "on the fly. Interrupt at any time; the same command resumes. To ship them with the embedded model, write "
        "--out into its folder as zeroshot/ (see the README).",
    )
    p.add_argument("--out", type=Path, required=True, help="adapter folder to write")
    p.add_argument("--parts", default="both", choices=("both", "reference", "motion"),
                   help="train both modules (default), or only one of them")
    p.add_argument("--mask-mode", default="blended", choices=("blended", "binary", "none"),
                   help="reference attention x box mask: 1 inside, --mask-blend outside (default blended)")
    p.add_argument("--mask-blend", type=float, default=0.75, help="lambda_M outside the box (default 0.75)")
    p.add_argument("--box-weight", type=float, default=2.0, help="loss weight inside the box, lambda (default 2)")
    p.add_argument("--ref-dropout", type=float, default=0.1, help="share of samples without the image (0.1)")
    p.add_argument("--box-dropout", type=float, default=0.1, help="share of samples without boxes (0.1)")
    p.add_argument("--controlnet-lr-scale", type=float, default=0.1,
                   help="the ControlNet copy's learning rate / --lr (default 0.1)")
    p.add_argument("--warmup", type=_non_negative, default=100, help="learning-rate warm-up steps (default 100)")
    p.add_argument("--class-caption", type=float, default=0.5,
                   help="share of captions naming the subject by its shape word alone (default 0.5)")
    p.add_argument("--generic-caption", type=float, default=0.25,
                   help="share of captions naming it 'object' (default 0.25); the rest name it in full")
    p.add_argument("--init-from", metavar="DIR", help="start from this zero-shot adapter (same module settings)")
    p.add_argument("--export-only", action="store_true",
                   help="write --out from the run's latest checkpoint now, without training (also while it trains)")
    add_loop_args(p, lr=1e-4, steps=3000, batch=4, batch_help="clips per optimizer step")
    p.set_defaults(func=_run, checkpoint_every=100, sample_every=500)


def _run(args) -> int:
    import torch

    from customvid.adapters.zeroshot import ZeroShotConfig
    from customvid.errors import CustomvidError
    from customvid.models import load_components
    from customvid.training.zeroshot import (
        ZeroShotTrainConfig,
        check_zeroshot_config,
        default_run_dir,
        export_zeroshot,
        train_zeroshot,
    )

    if args.out.exists() and not args.overwrite:
        raise CustomvidError(f"{args.out} exists; pass --overwrite to replace it")
    if args.export_only:
        run_dir = args.run_dir or default_run_dir(args.out)
        export_zeroshot(load_components(args.model), args.out, run_dir, overwrite=args.overwrite)
        print(f"zero-shot adapter written to {args.out} from {run_dir}")
        return 0
    adapter = ZeroShotConfig(reference=args.parts != "motion", motion=args.parts != "reference",
                             mask_mode=args.mask_mode, mask_blend=args.mask_blend)
    cfg = ZeroShotTrainConfig(adapter=adapter, box_weight=args.box_weight, ref_dropout=args.ref_dropout,
                              box_dropout=args.box_dropout, controlnet_lr_scale=args.controlnet_lr_scale,
                              class_caption=args.class_caption, generic_caption=args.generic_caption,
                              init_from=args.init_from,
                              loop=dataclasses.replace(loop_config(args), warmup=args.warmup))
    check_zeroshot_config(cfg)
    if args.threads:
        torch.set_num_threads(args.threads)
    components = load_components(args.model)
    train_zeroshot(components, args.out, cfg, run_dir=args.run_dir, overwrite=args.overwrite,
                   progress=not args.no_progress)
    print(f"zero-shot adapter written to {args.out}")
    return 0
