"""`customvid train-motion`: a motion adapter from a few clips; resumable, atomic, multi-process via accelerate."""

from __future__ import annotations

from pathlib import Path

from customvid.cli.adapter_training import add_loop_args, loop_config
from customvid.cli.train import _non_negative, _positive


def register(sub) -> None:
    p = sub.add_parser(
        "train-motion",
        help="customise a motion from a few clips (temporal layers + cross-attention K/V + token); resumable",
        description="Train a motion adapter (Customizing Motion in T2V) on the captioned clips in --videos; the "
        "captions use --token (\"a white square doing <pll> on a black background\"). Interrupt at any time; the "
        "same command resumes. With --subject-images, a subject LoRA is then trained jointly with the motion "
        "(the paper's appearance stage) and written to --subject-out.",
    )
    p.add_argument("--videos", type=Path, help="folder of clips (mp4, gif or PNG-frame folders) with NAME.txt captions")
    p.add_argument("--manifest", type=Path, help='JSONL of {"video": path, "caption": text} instead of .txt files')
    p.add_argument("--token", default="<pll>", help='the new token naming the motion (default <pll>; "" for none)')
    p.add_argument("--out", type=Path, required=True, help="adapter folder to write")
    p.add_argument("--params", default="temporal+kv", choices=("temporal", "temporal+kv"),
                   help="what to tune: temporal layers, plus the spatial cross-attention K/V (default, the paper)")
    p.add_argument("--lora-rank", type=_non_negative, default=0, help="0: tune fully (default); > 0: LoRA rank")
    p.add_argument("--recipe", default="paper", choices=("paper", "motiondirector"),
                   help="paper (default) or MotionDirector's dual-path LoRA (needs --lora-rank)")
    p.add_argument("--spatial-rank", type=_positive, default=32, help="MotionDirector: spatial LoRA rank (32)")
    p.add_argument("--spatial-steps", type=_positive, default=150, help="MotionDirector: spatial-stage steps (150)")
    p.add_argument("--init-word", default="moving", help="word the token's embedding starts from (default moving)")
    p.add_argument("--no-train-token", action="store_true", help="keep the token's row fixed")
    p.add_argument("--token-lr-scale", type=float, default=10.0, help="token row's rate / --lr (default 10)")
    p.add_argument("--timestep-bias", type=float, default=2.0,
                   help="t = T(1 - u^k): 1 uniform, > 1 toward high noise (default 2)")
    p.add_argument("--reg-dir", type=Path, help="regularization clips with captions (default: world base motions)")
    p.add_argument("--reg-ratio", type=float, default=0.25, help="share of samples from the regularization set")
    p.add_argument("--reg-target", default="base", choices=("data", "base"),
                   help="fit regularization clips to the base model's own prediction on them (default: keeps the "
                   "base motions, measured) or to their data (the paper)")
    p.add_argument("--reg-clips", type=_positive, default=32, help="world clips when no --reg-dir (default 32)")
    p.add_argument("--frame-sampling", default="even", choices=("even", "window"),
                   help="even: frames spread over the whole clip; window: the model's fps from the middle")
    add_loop_args(p, lr=1e-4, steps=300, batch=4, batch_help="global batch (LoRA: try --lr 1e-3)")
    p.add_argument("--subject-images", type=Path,
                   help="also learn a subject from these photos, jointly with the motion")
    p.add_argument("--subject-token", default="<sks>", help="the subject's token (default <sks>)")
    p.add_argument("--class-word", help="the subject's class word (with --subject-images)")
    p.add_argument("--subject-out", type=Path, help="subject adapter folder to write (with --subject-images)")
    p.add_argument("--subject-steps", type=_positive, default=400, help="joint subject-stage steps (default 400)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import torch

    from customvid.errors import CustomvidError
    from customvid.models import load_components
    from customvid.training.motion import MotionTrainConfig, check_motion_config, train_motion
    from customvid.training.motion_data import load_motion_clips

    token = args.token or None
    if (args.videos is None) == (args.manifest is None):
        raise CustomvidError("give the clips as --videos DIR or --manifest FILE (one of them)")
    for path in (args.out, args.subject_out):
        if path is not None and path.exists() and not args.overwrite:
            raise CustomvidError(f"{path} exists; pass --overwrite to replace it")
    if args.subject_images is not None:
        if not args.class_word or args.subject_out is None:
            raise CustomvidError("--subject-images needs --class-word and --subject-out")
        from customvid.training.subject_data import load_subject_images

        load_subject_images(args.subject_images, 64, 64)
    loop = loop_config(args)
    cfg = MotionTrainConfig(
        token=token, params=args.params, lora_rank=args.lora_rank, init_word=args.init_word,
        train_token=not args.no_train_token, token_lr_scale=args.token_lr_scale, timestep_bias=args.timestep_bias,
        reg_ratio=args.reg_ratio, reg_clips=args.reg_clips, reg_target=args.reg_target,
        frame_sampling=args.frame_sampling, recipe=args.recipe,
        spatial_rank=args.spatial_rank, spatial_steps=args.spatial_steps, loop=loop,
    )
    check_motion_config(cfg)
    # every clip and caption checked before the model loads
    load_motion_clips(args.videos, 64, 64, 2, 4.0, args.frame_sampling, token, args.manifest)
    if args.threads:
        torch.set_num_threads(args.threads)
    components = load_components(args.model)
    motion = train_motion(components, args.videos, args.out, cfg, run_dir=args.run_dir, manifest=args.manifest,
                          reg_dir=args.reg_dir, overwrite=args.overwrite, progress=not args.no_progress)
    print(f"motion adapter written to {args.out}")
    if args.subject_images is not None:
        from customvid.training.motion import train_joint_subject

        train_joint_subject(components, motion, args.subject_images, args.subject_out, args.class_word,
                            args.subject_token, args.subject_steps, cfg, args.videos, args.manifest,
                            overwrite=args.overwrite, progress=not args.no_progress)
        print(f"subject adapter written to {args.subject_out}")
    return 0
