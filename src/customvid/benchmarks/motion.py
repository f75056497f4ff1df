"""`customvid bench motion`: motion customization (Customizing Motion in T2V, MotionDirector's recipe beside it),
measured on the world's held-out motions.

For each held-out motion (zigzag, figure eight, spiral), <= 8 clips of train-split subjects on four backgrounds
(rendered at 16 frames and 96 px, written as mp4 with a caption using the token: what a user would bring) train
one adapter per recipe variant. Generated clips then put the motion on subjects and backgrounds those clips never
show, per seed, and the probe reads them back:
- trajectory similarity: the cosine of the mean-centred probe centre path [F, 2] with each training clip's path
  (aligned for position by the centring, for scale by the cosine), best over the training clips;
- motion accuracy: the probe's motion classifier, which knows the held-out motions, reads the motion's name;
- no leakage: the prompted colour, shape and background all read right;
- the base kept: base-motion prompts with the adapter attached, motion / colour / background against the base.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from customvid.world import vocab

TOKEN = "<pll>"
# training clips show these; evaluation prompts use none of them (every pair is in the base model's train split)
TRAIN_SUBJECTS = [("red", "circle"), ("green", "square"), ("blue", "star"), ("white", "circle"),
                  ("red", "square"), ("green", "star"), ("blue", "circle"), ("white", "square")]
TRAIN_BACKGROUNDS = ["black", "gray", "tiled", "gradient"]
EVAL_SUBJECTS = [("yellow", "heart"), ("purple", "triangle"), ("orange", "heart"), ("orange", "triangle"),
                 ("purple", "heart"), ("yellow", "triangle")]
EVAL_BACKGROUNDS = ["blue", "green", "brown"]
BASE_MOTIONS = ["still", "bounce", "circle", "grow", "right", "down"]
# name -> overrides of MotionTrainConfig (loop fields by name too). "paper" is the paper's recipe (regularization
# fitted to its data); the shipped default is "paper, reg fitted to the base" (measured: keeps the base motions)
VARIANTS = {
    "paper": {"reg_target": "data"},
    "paper, lr 3e-4": {"lr": 3e-4, "reg_target": "data"},
    "paper, lr 3e-4, reg 50 %": {"lr": 3e-4, "reg_ratio": 0.5, "reg_target": "data"},
    "paper, reg fitted to the base": {"reg_target": "base"},
    "temporal only": {"params": "temporal", "reg_target": "data"},
    "uniform timesteps": {"timestep_bias": 1.0, "reg_target": "data"},
    "no regularization": {"reg_ratio": 0.0, "reg_target": "data"},
    "LoRA r16": {"lora_rank": 16, "lr": 1e-3, "reg_target": "data"},
    "MotionDirector r16": {"recipe": "motiondirector", "params": "temporal", "lora_rank": 16, "lr": 1e-3,
                           "reg_target": "data"},
}


def write_training_clips(motion: str, root: Path, n: int = 8, seed: int = 0) -> tuple[Path, np.ndarray]:
    """n clips of `motion` as mp4 + caption .txt under root/motion; returns the folder and their true centre paths
    at the model's 8 frames [n, 8, 2] in 64 px units (what generated clips are compared with)."""
    from customvid.io import write_video
    from customvid.world import render_clip
    from customvid.world.spec import Subject
    from customvid.world.splits import build_spec

    folder = root / motion
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        colour, shape = TRAIN_SUBJECTS[i % len(TRAIN_SUBJECTS)]
        background = TRAIN_BACKGROUNDS[i % len(TRAIN_BACKGROUNDS)]
        rng = np.random.default_rng([seed, 303, vocab.NOVEL_MOTIONS.index(motion), i])
        subject = Subject(shape, colour)
        caption = f"a {subject.phrase()} doing {TOKEN} on a {background} background"
        spec = build_spec(subject, motion, background, rng, frames=16, width=96, height=96, fps=8.0, caption=caption)
        video = folder / f"clip_{i}.mp4"
        if not video.exists():
            write_video(video, render_clip(spec).frames, fps=8)
            video.with_suffix(".txt").write_text(caption)
        small = dataclasses.replace(spec, size=spec.size * 64 / 96, offset=tuple(o * 64 / 96 for o in spec.offset),
                                    params=_scaled(spec.params, 64 / 96), width=64, height=64)
        clip = render_clip(small.with_frames(8))
        paths.append(np.stack([clip.boxes[:, [0, 2]].mean(1), clip.boxes[:, [1, 3]].mean(1)], axis=1))
    return folder, np.stack(paths)


def _scaled(params: dict, factor: float) -> dict:
    keep = {"angle0", "periods", "direction", "turn", "phase", "bounces"}
    return {k: (v if k in keep or not isinstance(v, float) else v * factor) for k, v in params.items()}


def trajectory_similarity(path: np.ndarray, references: np.ndarray) -> float:
    """Best cosine between the mean-centred path [F, 2] and each reference [N, F, 2] (NaN frames dropped; NaN when
    fewer than half the frames have the subject)."""
    ok = ~np.isnan(path).any(1)
    if ok.sum() < max(2, len(path) // 2):
        return float("nan")
    a = path[ok] - path[ok].mean(0)
    best = -1.0
    for ref in references:
        b = ref[ok] - ref[ok].mean(0)
        denom = np.linalg.norm(a) * np.linalg.norm(b)
        best = max(best, float((a * b).sum() / denom) if denom > 0 else 0.0)
    return best


def _probe_row(frames: np.ndarray, colour: str, shape: str, background: str, motion: str, refs) -> dict:
    from customvid.world.probe import probe_video

    probe = probe_video(frames)
    return {
        "similarity": trajectory_similarity(probe.centres, refs) if refs is not None else float("nan"),
        "motion": float(probe.motion == motion),
        "colour": float(probe.colour == colour),
        "shape": float(probe.shape == shape),
        "background": float(probe.background == background),
        "appearance": float(probe.colour == colour and probe.shape == shape and probe.background == background),
        "read_motion": probe.motion,
    }


def evaluate_adapter(components, adapter, motion: str, refs: np.ndarray, seeds, steps: int,
                     include_base: bool) -> list[dict]:
    """Rows for one adapter: the token prompts on held-out subjects/backgrounds, and base-motion prompts with it
    attached (and, if include_base, the same with its weight 0: exactly the base model, tested)."""
    from customvid.sampling import generate

    rows = []

    def run(condition: str, prompts: list[tuple[str, str, str, str]], weight: float, with_refs: bool):
        adapter.set_schedule(weight)
        for colour, shape, background, asked, prompt in tqdm(prompts, desc=condition, leave=False):
            out = generate(components, [prompt] * len(seeds), seed=list(seeds), num_inference_steps=steps,
                           adapters=[adapter])
            for k, seed in enumerate(seeds):
                row = _probe_row(out.frames[k], colour, shape, background, asked, refs if with_refs else None)
                rows.append({"condition": condition, "motion_name": motion, "asked": asked, "seed": seed,
                             "prompt": prompt, **row})

    held = [(c, s, EVAL_BACKGROUNDS[i % len(EVAL_BACKGROUNDS)], motion,
             f"a {c} {s} doing {TOKEN} on a {EVAL_BACKGROUNDS[i % len(EVAL_BACKGROUNDS)]} background")
            for i, (c, s) in enumerate(EVAL_SUBJECTS)]
    base = [(c, s, EVAL_BACKGROUNDS[i % len(EVAL_BACKGROUNDS)], m,
             f"a {c} {s} {vocab.MOTION_PHRASES[m][0]} on a {EVAL_BACKGROUNDS[i % len(EVAL_BACKGROUNDS)]} background")
            for i, ((c, s), m) in enumerate(zip(EVAL_SUBJECTS, BASE_MOTIONS, strict=True))]
    run("held-out motion", held, 1.0, True)
    run("base motions, adapter on", base, 1.0, False)
    if include_base:
        phrase = vocab.MOTION_PHRASES[motion][0]
        run("base model, motion's phrase", [(*h[:4], h[4].replace(f"doing {TOKEN}", phrase)) for h in held], 0.0,
            True)
        run("base motions, base model", base, 0.0, False)
    adapter.set_schedule(1.0)
    return rows


METRICS = ("similarity", "motion", "appearance", "colour", "shape", "background")


def _mean(values) -> float:
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    return float(x.mean()) if len(x) else float("nan")  # NaN: not measured (no reference path for base motions)


def summarise(rows: list[dict]) -> dict:
    out: dict = {}
    for r in rows:
        out.setdefault((r["variant"], r["condition"]), []).append(r)
    return {f"{v} | {c}": {**{k: _mean([r[k] for r in sel]) for k in METRICS}, "clips": len(sel)}
            for (v, c), sel in out.items()}


def run_motion_bench(components_factory, work: Path, motions: list[str], variants: list[str], seeds=(0, 1),
                     steps: int = 25, train_steps: int | None = None, progress: bool = True) -> dict:
    from customvid.adapters import load_adapter
    from customvid.training.motion import MotionTrainConfig, train_motion

    rows, trainings = [], {}
    for motion in motions:
        folder, refs = write_training_clips(motion, work / "clips")
        for variant in variants:
            cfg = MotionTrainConfig()
            for key, value in {**VARIANTS[variant], **({"steps": train_steps} if train_steps else {})}.items():
                setattr(cfg.loop if hasattr(cfg.loop, key) else cfg, key, value)
            adapter_dir = work / "adapters" / motion / variant.replace(" ", "_")
            t0 = time.time()
            if not adapter_dir.exists():
                train_motion(components_factory(), folder, adapter_dir, cfg, progress=progress)
                seconds = round(time.time() - t0, 1)
            else:
                seconds = None  # reused: the time is in the earlier run's output
            size = sum(p.stat().st_size for p in adapter_dir.iterdir())
            trainings[f"{motion} | {variant}"] = {"seconds": seconds, "adapter_bytes": size}
            components = components_factory()
            adapter = load_adapter(adapter_dir, components)
            # the base model's rows once per motion, with the paper's variant
            new = evaluate_adapter(components, adapter, motion, refs, seeds, steps, include_base=variant == "paper")
            for r in new:
                r["variant"] = variant if "adapter" in r["condition"] or "held" in r["condition"] else "base"
            rows += new
            adapter.detach()
    return {"summary": summarise(rows), "training": trainings, "rows": rows,
            "settings": {"motions": motions, "variants": variants, "seeds": list(seeds), "steps": steps,
                         "train_steps": train_steps}}


def run_composition(components_factory, work: Path, subject_name: str, motion: str, seeds=(0, 1), steps: int = 25,
                    subject_overrides: dict | None = None, progress: bool = True) -> dict:
    """A held-out subject performing a held-out motion: the subject adapter trained on its own (train-subject) and
    loaded beside the motion adapter, against the paper's joint stage (trained with the motion adapter in place and
    the motion clips mixed in). Scores identity (the probe's shape, colour, pattern) and the trajectory."""
    from customvid.adapters import load_adapter
    from customvid.benchmarks.subject import score, write_references
    from customvid.sampling import generate
    from customvid.training.motion import MotionTrainConfig, train_joint_subject
    from customvid.training.subject import SubjectTrainConfig, train_subject
    from customvid.world.splits import CUSTOM_SUBJECTS

    subject = CUSTOM_SUBJECTS[subject_name]
    motion_dir = work / "adapters" / motion / "paper"
    if not motion_dir.is_dir():
        from customvid.errors import CustomvidError

        raise CustomvidError(f"no motion adapter {motion_dir} yet: run the bench with --motions {motion} first")
    folder, refs = write_training_clips(motion, work / "clips")
    photos = write_references(subject_name, work / "references")
    cfg = SubjectTrainConfig(class_word=subject.shape, token="<sks>")
    for key, value in (subject_overrides or {}).items():  # tests: fewer steps and prior clips
        setattr(cfg.loop if hasattr(cfg.loop, key) else cfg, key, value)
    separate, joint = work / "subjects" / subject_name, work / "subjects" / f"{subject_name}_joint_{motion}"
    times = {}
    if not separate.exists():
        t0 = time.time()
        train_subject(components_factory(), photos, separate, cfg, progress=progress)
        times["separate"] = round(time.time() - t0, 1)
    if not joint.exists():
        t0 = time.time()
        components = components_factory()
        motion_adapter = load_adapter(motion_dir, components)
        train_joint_subject(components, motion_adapter, photos, joint, subject.shape, "<sks>", cfg.loop.steps,
                            MotionTrainConfig(), folder, progress=progress)
        times["joint"] = round(time.time() - t0, 1)
    rows = []
    for label, subject_dir in (("separate", separate), ("joint", joint)):
        components = components_factory()
        adapters = [load_adapter(subject_dir, components), load_adapter(motion_dir, components)]
        for background in EVAL_BACKGROUNDS:
            prompt = f"a <sks> {subject.shape} doing {TOKEN} on a {background} background"
            out = generate(components, [prompt] * len(seeds), seed=list(seeds), num_inference_steps=steps,
                           adapters=adapters)
            for k, seed in enumerate(seeds):
                s = score(out.frames[k], subject, background, motion)
                rows.append({"condition": label, "seed": seed, "prompt": prompt, "present": float(s["read"]["shape"]
                             is not None), "similarity": trajectory_similarity(s.pop("centres"), refs), **s})
    # similarity is NaN (left out of its mean) where the subject is gone: read it beside `present`
    keys = ("present", "identity", "shape", "colour", "texture", "background", "motion", "similarity")
    summary = {label: {k: _mean([r[k] for r in rows if r["condition"] == label]) for k in keys}
               for label in ("separate", "joint")}
    return {"subject": subject_name, "motion": motion, "summary": summary, "training_seconds": times, "rows": rows}


def format_markdown(result: dict) -> str:
    lines = ["| variant | condition | " + " | ".join(METRICS) + " | clips |", "|---" * (len(METRICS) + 3) + "|"]
    for key, row in result["summary"].items():
        variant, condition = key.split(" | ")
        cells = [f"{row[k]:.3f}" if k == "similarity" else f"{row[k]:.0%}" for k in METRICS]
        lines.append(f"| {variant} | {condition} | " + " | ".join(cells) + f" | {row['clips']} |")
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    from customvid.cli.generate import add_model_args
    from customvid.world.splits import CUSTOM_SUBJECTS

    p = subparsers.add_parser(
        "motion",
        help="motion customization on the held-out world motions, measured with the probe",
        description=__doc__.split("\n\n")[1],
    )
    add_model_args(p)
    p.add_argument("--work", type=Path, required=True, help="folder for clips and adapters (reused if there)")
    p.add_argument("--motions", nargs="+", default=list(vocab.NOVEL_MOTIONS), choices=vocab.NOVEL_MOTIONS)
    p.add_argument("--variants", nargs="+", default=["paper"], choices=list(VARIANTS),
                   help="recipe variants side by side (default: paper)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--steps", type=int, default=25, help="denoising steps per clip (default 25)")
    p.add_argument("--train-steps", type=int, default=None, help="override train-motion's --steps")
    p.add_argument("--json", default=None, help="also write all rows to this JSON file")
    p.add_argument("--compose", metavar="SUBJECT", default=None, choices=list(CUSTOM_SUBJECTS),
                   help="instead: this held-out subject doing the first --motions motion (its paper adapter in --work)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from customvid.cli.generate import load_from_args
    from customvid.io import write_json_atomic

    if args.compose:
        result = run_composition(lambda: load_from_args(args), args.work, args.compose, args.motions[0], args.seeds,
                                 args.steps)
        for label, row in result["summary"].items():
            print(f"{args.compose} doing {args.motions[0]}, subject adapter {label}: "
                  + ", ".join(f"{k} {v:.3f}" if k == "similarity" else f"{k} {v:.0%}" for k, v in row.items()))
        if args.json:
            write_json_atomic(args.json, result)
        return 0
    result = run_motion_bench(lambda: load_from_args(args), args.work, args.motions, args.variants, args.seeds,
                              args.steps, args.train_steps)
    print(format_markdown(result))
    for name, t in result["training"].items():
        print(f"{name}: training {t['seconds']} s, adapter {t['adapter_bytes'] / 1e6:.2f} MB")
    if args.json:
        write_json_atomic(args.json, result)
    return 0
