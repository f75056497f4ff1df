"""`customvid train-subject`: a subject adapter from a few photos; resumable, atomic, multi-process via accelerate."""

from __future__ import annotations

from pathlib import Path

from customvid.cli.train import _non_negative, _positive


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
    p.add_argument("--method", default="lora", help="adapter method (default: lora)")
    p.add_argument("--masks", type=Path, help="folder of masks (NAME_mask.png or NAME.png) instead of beside")
    p.add_argument("--prior-dir", type=Path, help="class clips (mp4/gif/frame folders, NAME.txt captions)")
    p.add_argument("--prior-weight", type=float, default=1.0, help="class-prior loss weight (default 1.0)")
    p.add_argument("--prior-clips", type=_positive, default=16, help="class clips to generate (default 16)")
    p.add_argument("--prior-steps", type=_positive, default=25, help="DDIM steps per generated class clip (default 25)")
    p.add_argument("--instance-prompt", default="a {token} {class_word} staying still",
                   help="caption of the photos (default: %(default)r)")
    p.add_argument("--masked-loss", action="store_true",
                   help="mask-normalised loss on the photos (Magic-Me; needs masks), 5%% of samples unmasked")
    p.add_argument("--train-token", action="store_true",
                   help="also train the identifier token's embedding row (text encoder otherwise frozen)")
    p.add_argument("--rank", type=_positive, default=8, help="LoRA rank (default 8)")
    p.add_argument("--alpha", type=float, default=None, help="LoRA alpha (default: the rank)")
    p.add_argument("--lr", type=float, default=2e-3, help="learning rate (default 2e-3)")
    p.add_argument("--steps", type=_positive, default=400, help="optimizer steps (default 400)")
    p.add_argument("--batch", type=_positive, default=2,
                   help="global batch: photos per step, each with a class clip (default 2)")
    p.add_argument("--grad-accum", type=_positive, default=1, help="gradient accumulation steps (default 1)")
    p.add_argument("--mixed-precision", default="no", choices=("no", "fp16", "bf16"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-dir", type=Path, help="run folder (checkpoints, loss log, samples; default OUT.run)")
    p.add_argument("--checkpoint-every", type=_positive, default=50)
    p.add_argument("--sample-every", type=_non_negative, default=100, help="steps between sample sheets (0: none)")
    p.add_argument("--model", metavar="PATH", help="base model folder (default: the embedded model)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import torch

    from customvid.adapters.tokens import TOKEN_RE
    from customvid.errors import CustomvidError
    from customvid.models import load_components
    from customvid.training.adapter_loop import LoopConfig
    from customvid.training.subject import SubjectTrainConfig, train_subject
    from customvid.training.subject_data import load_subject_images

    if args.out.exists() and not args.overwrite:
        raise CustomvidError(f"{args.out} exists; pass --overwrite to replace it")
    if not args.images.is_dir():
        raise CustomvidError(f"--images {args.images}: not a folder")
    if args.lr <= 0:
        raise CustomvidError(f"--lr must be > 0, got {args.lr}")
    if not TOKEN_RE.match(args.token):
        raise CustomvidError(f"token {args.token!r} must look like <name> (letters, digits, _ or -), e.g. <sks>")
    load_subject_images(args.images, 64, 64, args.masks)  # every photo and mask checked before the model loads
    if args.threads:
        torch.set_num_threads(args.threads)
    loop = LoopConfig(
        steps=args.steps,
        batch_size=args.batch,
        grad_accum=args.grad_accum,
        lr=args.lr,
        mixed_precision=args.mixed_precision,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        sample_every=args.sample_every,
    )
    cfg = SubjectTrainConfig(
        class_word=args.class_word,
        token=args.token,
        method=args.method,
        rank=args.rank,
        alpha=float(args.alpha if args.alpha is not None else args.rank),
        instance_prompt=args.instance_prompt,
        prior_weight=args.prior_weight,
        prior_clips=args.prior_clips,
        prior_steps=args.prior_steps,
        masked_loss=args.masked_loss,
        train_token=args.train_token,
        loop=loop,
    )
    components = load_components(args.model)
    train_subject(
        components, args.images, args.out, cfg, run_dir=args.run_dir, masks_dir=args.masks,
        prior_dir=args.prior_dir, overwrite=args.overwrite, progress=not args.no_progress,
    )
    print(f"adapter written to {args.out}")
    return 0
