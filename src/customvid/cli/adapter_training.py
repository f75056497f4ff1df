"""Options every adapter trainer (train-subject, train-motion) shares: the loop, the run folder, the model."""

from __future__ import annotations

from pathlib import Path

from customvid.cli.train import _non_negative, _positive


def add_loop_args(p, lr: float | None, steps: int | None, batch: int | None, batch_help: str) -> None:
    """None: the default depends on another option (e.g. train-subject's --method) and is filled in later."""

    def default(value) -> str:
        return "the method's" if value is None else f"{value:g}"

    p.add_argument("--lr", type=float, default=lr, help=f"learning rate (default {default(lr)})")
    p.add_argument("--steps", type=_positive, default=steps, help=f"optimizer steps (default {default(steps)})")
    p.add_argument("--batch", type=_positive, default=batch, help=f"{batch_help} (default {default(batch)})")
    p.add_argument("--grad-accum", type=_positive, default=1, help="gradient accumulation steps (default 1)")
    p.add_argument("--lr-schedule", default="constant", choices=("constant", "cosine"),
                   help="after warm-up: constant (default) or cosine down to 10 %% of --lr at --steps")
    p.add_argument("--mixed-precision", default="no", choices=("no", "fp16", "bf16"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-dir", type=Path, help="run folder (checkpoints, loss log, samples; default OUT.run)")
    p.add_argument("--checkpoint-every", type=_positive, default=50)
    p.add_argument("--sample-every", type=_non_negative, default=100, help="steps between sample sheets (0: none)")
    p.add_argument("--model", metavar="PATH", help="base model folder (default: the embedded model)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing adapter folder")
    p.add_argument("--no-progress", action="store_true")


def loop_config(args):
    from customvid.errors import CustomvidError
    from customvid.training.adapter_loop import LoopConfig

    if args.lr is not None and args.lr <= 0:
        raise CustomvidError(f"--lr must be > 0, got {args.lr}")
    return LoopConfig(steps=args.steps, batch_size=args.batch, grad_accum=args.grad_accum, lr=args.lr,
                      mixed_precision=args.mixed_precision, seed=args.seed, checkpoint_every=args.checkpoint_every,
                      sample_every=args.sample_every, lr_schedule=args.lr_schedule)
