"""`customvid train-subject`: a subject adapter from a few photos; resumable, atomic, multi-process via accelerate."""

from __future__ import annotations

from pathlib import Path

from customvid.cli.adapter_training import add_loop_args, loop_config
from customvid.cli.train import _positive


def register(sub) -> None:
    p = sub.add_parser(
        "train-subject",
        help="customise a subject from a few photos (spatial LoRA + token); resumable",
        description="Train a subject adapter (CustomCrafter's spatial LoRA) on the photos in --images. Interrupt "
        "at any time; the same command resumes. Scale out with `accelerate launch --multi_gpu --num_processes N -m "
        "customvid train-subject ...` (also on CPUs; the same global --batch gives the same result).",
    )
    p.add_argument("--images", type=Path, required=True, help="folder of PNG/JPEG photos (NAME_mask.png beside)")
    p.add_argument("--token", required=True, help='the new token naming the subject, e.g. "<sks>"')
    p.add_argument("--class-word", required=True, help="the subject's class, e.g. circle")
    p.add_argument("--out", type=Path, required=True, help="adapter folder to write")
    p.add_argument("--method", default="lora", choices=("lora", "tokens", "lora+tokens"),
                   help="lora: spatial LoRA + a frozen identifier (CustomCrafter); tokens: extended textual "
                   "inversion, only new embedding rows train (Magic-Me); lora+tokens: both (default: lora)")
    p.add_argument("--num-tokens", type=_positive, default=4,
                   help="tokens, lora+tokens: embedding rows under the token (default 4)")
    p.add_argument("--masks", metavar="DIR|SEGMENTER",
                   help="masks folder (NAME_mask.png or NAME.png), or a segmenter for photos without masks: auto, "
                   "grabcut, border, clipseg:WEIGHTS_DIR (default: NAME_mask.png beside each photo, if any)")
    p.add_argument("--prior-dir", type=Path, help="class clips (mp4/gif/frame folders, NAME.txt captions)")
    p.add_argument("--prior-weight", type=float, help="class-prior loss weight (default: 1.0; tokens: 0)")
    p.add_argument("--prior-clips", type=_positive, default=16, help="class clips to generate (default 16)")
    p.add_argument("--prior-steps", type=_positive, default=25, help="DDIM steps per generated class clip (default 25)")
    p.add_argument("--instance-prompt", default="a {token} {class_word} staying still",
                   help="caption of the photos (default: %(default)r)")
    p.add_argument("--masked-loss", action="store_true",
                   help="mask-normalised loss on the photos (Magic-Me; needs masks), 5%% of samples unmasked")
    p.add_argument("--augment", action="store_true",
                   help='flip, rotate and rescale the photos, the caption saying "close up" / "far away"')
    p.add_argument("--noise-offset", type=float, help="noise offset (default: 0; tokens: 0.1)")
    p.add_argument("--train-token", action="store_true",
                   help="lora: also train the identifier token's embedding row (text encoder otherwise frozen)")
    p.add_argument("--a1111", action="store_true", help="also write the token rows in A1111's .pt layout")
    p.add_argument("--rank", type=_positive, default=8, help="LoRA rank (default 8)")
    p.add_argument("--alpha", type=float, default=None, help="LoRA alpha (default: the rank)")
    add_loop_args(p, lr=None, steps=None, batch=None,
                  batch_help="global batch: photos per step, each with a class clip (lora: 2, tokens: 4)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import torch

    from customvid.adapters.tokens import TOKEN_RE
    from customvid.errors import CustomvidError
    from customvid.models import load_components
    from customvid.training.subject import check_subject_config, subject_config, train_subject
    from customvid.training.subject_data import load_subject_images

    if args.out.exists() and not args.overwrite:
        raise CustomvidError(f"{args.out} exists; pass --overwrite to replace it")
    if not args.images.is_dir():
        raise CustomvidError(f"--images {args.images}: not a folder")
    if not TOKEN_RE.match(args.token):
        raise CustomvidError(f"token {args.token!r} must look like <name> (letters, digits, _ or -), e.g. <sks>")
    masks_dir, mask_source = _mask_option(args.masks)
    photos = load_subject_images(args.images, 64, 64, masks_dir)  # every photo and mask checked before the model
    if args.masked_loss and photos.masks is None and mask_source is None:
        raise CustomvidError("--masked-loss needs masks: NAME_mask.png beside the photos, or --masks DIR|SEGMENTER")
    if args.threads:
        torch.set_num_threads(args.threads)
    loop_config(args)  # checks the values
    cfg = subject_config(
        args.method,
        class_word=args.class_word,
        token=args.token,
        rank=args.rank,
        alpha=float(args.alpha if args.alpha is not None else args.rank),
        num_tokens=args.num_tokens,
        instance_prompt=args.instance_prompt,
        prior_weight=args.prior_weight,
        prior_clips=args.prior_clips,
        prior_steps=args.prior_steps,
        masked_loss=args.masked_loss,
        augment=args.augment,
        noise_offset=args.noise_offset,
        train_token=args.train_token or None,
        loop={"steps": args.steps, "batch_size": args.batch, "grad_accum": args.grad_accum, "lr": args.lr,
              "mixed_precision": args.mixed_precision, "seed": args.seed, "checkpoint_every": args.checkpoint_every,
              "sample_every": args.sample_every},
    )
    check_subject_config(cfg)
    components = load_components(args.model)
    train_subject(
        components, args.images, args.out, cfg, run_dir=args.run_dir, masks_dir=masks_dir,
        prior_dir=args.prior_dir, overwrite=args.overwrite, progress=not args.no_progress, mask_source=mask_source,
        a1111=args.a1111,
    )
    print(f"adapter written to {args.out}")
    return 0


def _mask_option(value: str | None) -> tuple[Path | None, str | None]:
    """--masks: a folder, or the name of a segmenter (checked now, before the model loads)."""
    from customvid.errors import CustomvidError

    if value is None:
        return None, None
    if Path(value).is_dir():
        return Path(value), None
    from customvid.segmentation import check_method

    try:
        check_method(value)
    except CustomvidError as err:
        raise CustomvidError(f"--masks {value}: not a folder, and {err}") from None
    return None, value

