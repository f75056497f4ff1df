"""`customvid bench subject`: CustomCrafter's subject LoRA and Dynamic Weighted Video Sampling, measured.

For every held-out world subject: its reference images (`reference_specs`, the same as `customvid world
references`) train a subject adapter with `train-subject`'s defaults; then prompts whose backgrounds and motions
the references never show are sampled, per seed, under four conditions: the base model with the class word,
the adapter at constant 1.0, at constant 0.8, and under DWS. Each clip is probed: identity (shape, colour, colour2
and texture all right), background, motion, dynamic degree, and how closely the probe's centre path follows the
base model's own clip at the same seed and prompt (the direct test of "motion preserved").
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from customvid.benchmarks.base import through_vae
from customvid.benchmarks.timing import interleaved_medians
from customvid.world import vocab

CONDITIONS = {"base (class word)": None, "constant 1.0": "constant:1", "constant 0.8": "constant:0.8",
              "DWS (0.4 -> 0.8)": "dws"}
MOTIONS = ["left", "right", "up", "down", "bounce", "circle", "grow", "down_right"]


def bench_prompts(subject_name: str, n: int) -> list[tuple[str, str, str]]:
    """(motion, background) x n: non-still motions on backgrounds the subject's references never show."""
    from customvid.world.splits import reference_specs

    seen = {s.background for s in reference_specs(subject_name)}
    backgrounds = [b for b in vocab.BACKGROUNDS if b not in seen] or list(vocab.BACKGROUNDS)
    out = []
    for i in range(n):
        motion, background = MOTIONS[i % len(MOTIONS)], backgrounds[i % len(backgrounds)]
        out.append((motion, background))
    return out


def write_references(subject_name: str, root: Path) -> Path:
    """The subject's references as `customvid world references` writes them (root/NAME/), plus a NAME.txt
    caption beside each image."""
    from customvid.world.dataset import read_references, write_subject_references

    write_subject_references(root, subjects=subject_name)
    folder = root / subject_name
    for record in read_references(folder):
        # what a user captioning the photo would write: the token, the class, the background it shows
        background = record["subject"]["background"]
        caption = f"a {{token}} {{class_word}} staying still on a {background} background"
        Path(record["image"]).with_suffix(".txt").write_text(caption)
    return folder


def path_agreement(a: np.ndarray, b: np.ndarray, side: float) -> float:
    """1 - mean distance between two probe centre paths [F, 2] over frames both have, / frame side (NaN: none)."""
    ok = ~(np.isnan(a).any(1) | np.isnan(b).any(1))
    if not ok.any():
        return float("nan")
    return float(1 - np.linalg.norm(a[ok] - b[ok], axis=1).mean() / side)


def score(frames: np.ndarray, subject, background: str, motion: str, probe=None) -> dict:
    """Probe scores of one clip against what it should show (`probe`: the clip's probe_video, if already read)."""
    from customvid.metrics.dynamic_degree import is_dynamic, pair_scores
    from customvid.world.probe import probe_video

    probe = probe or probe_video(frames)
    identity = (probe.shape == subject.shape and probe.colour == subject.colour
                and probe.texture == subject.texture and probe.colour2 == subject.colour2)
    h, w = frames.shape[1:3]
    return {
        "identity": float(identity),
        "shape": float(probe.shape == subject.shape),
        "colour": float(probe.colour == subject.colour),
        "texture": float(probe.texture == subject.texture),
        "background": float(probe.background == background),
        "motion": float(probe.motion == motion),
        "dynamic": float(is_dynamic(pair_scores(frames), len(frames), h, w)),
        "centres": probe.centres,
        "read": {"shape": probe.shape, "colour": probe.colour, "colour2": probe.colour2,
                 "texture": probe.texture, "background": probe.background, "motion": probe.motion},
    }


def run_subject_bench(
    components_factory,
    work: Path,
    subjects: list[str],
    prompts_per_subject: int = 6,
    seeds=(0, 1),
    steps: int = 25,
    train_overrides: dict | None = None,
    progress: bool = True,
) -> dict:
    from customvid.adapters import load_adapter
    from customvid.sampling import generate
    from customvid.training.subject import SubjectTrainConfig, train_subject
    from customvid.world.splits import CUSTOM_SUBJECTS

    rows, trainings, speed, ceilings = [], {}, None, {}
    for name in subjects:
        subject = CUSTOM_SUBJECTS[name]
        refs = write_references(name, work / "references")
        adapter_dir = work / "adapters" / name
        cfg = SubjectTrainConfig(class_word=subject.shape, token="<sks>")
        for key, value in (train_overrides or {}).items():
            setattr(cfg.loop if hasattr(cfg.loop, key) else cfg, key, value)
        components = components_factory()
        t0 = time.time()
        if not adapter_dir.exists():
            train_subject(components, refs, adapter_dir, cfg, progress=progress)
            trainings[name] = {"seconds": round(time.time() - t0, 1)}
        else:
            trainings[name] = {"seconds": None, "note": "adapter existed; reused"}
        size = sum(p.stat().st_size for p in adapter_dir.iterdir())
        trainings[name]["adapter_bytes"] = size
        components = components_factory()
        ceilings[name] = vae_ceiling(components, name)
        adapter = load_adapter(adapter_dir, components)
        if speed is None:
            speed = lora_overhead(components, adapter, components_factory(), steps=steps)
        for motion, background in tqdm(bench_prompts(name, prompts_per_subject), desc=name, disable=not progress):
            phrase = vocab.MOTION_PHRASES[motion][0]
            class_prompt = f"a {subject.shape} {phrase} on a {background} background"
            token_prompt = f"a <sks> {subject.shape} {phrase} on a {background} background"
            clips = {}
            for label, schedule in CONDITIONS.items():
                if schedule is None:
                    adapter.set_schedule(0.0)  # weight 0 is exactly the base model (tested)
                    prompt = class_prompt
                else:
                    adapter.set_schedule(schedule)
                    prompt = token_prompt
                out = generate(components, [prompt] * len(seeds), seed=list(seeds), num_inference_steps=steps,
                               adapters=[adapter])
                clips[label] = out.frames
            for k, seed in enumerate(seeds):
                base_centres = None
                for label in CONDITIONS:
                    s = score(clips[label][k], subject, background, motion)
                    if base_centres is None:
                        base_centres = s["centres"]
                    side = float(clips[label].shape[2])
                    s["path_agreement"] = path_agreement(s.pop("centres"), base_centres, side)
                    rows.append({"subject": name, "condition": label, "seed": seed, "prompt": token_prompt,
                                 "motion_name": motion, "background_name": background, **s})
        adapter.detach()
    return {"summary": summarise(rows), "training": trainings, "speed": speed, "vae_ceiling": ceilings,
            "rows": rows,
            "settings": {"subjects": subjects, "prompts_per_subject": prompts_per_subject, "seeds": list(seeds),
                         "steps": steps, "train_overrides": train_overrides or {}}}


@torch.no_grad()
def vae_ceiling(components, subject_name: str, n: int = 8, seed: int = 0) -> dict:
    """The probe's scores on ground-truth clips of the subject passed through the model's VAE: what a generated
    clip can reach at best (the embedded VAE never saw two-colour patterns)."""
    from customvid.world import render_clip
    from customvid.world.splits import CUSTOM_SUBJECTS, build_spec

    subject, vae = CUSTOM_SUBJECTS[subject_name], components.vae
    rng = np.random.default_rng([seed, 77])
    rows = []
    for motion, background in bench_prompts(subject_name, n):
        spec = build_spec(subject, motion, background, rng, frames=components.default_frames)
        r = score(through_vae(vae, render_clip(spec).frames), subject, background, motion)
        r.pop("centres"), r.pop("read")
        rows.append(r)
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def lora_overhead(components, adapter, plain, repeats: int = 5, steps: int = 25) -> dict:
    """Seconds per clip of `components` with the adapter under DWS (its weight set every step) against `plain`,
    the same model loaded without it: interleaved runs in one process after a warm-up of each; ratio of medians."""
    from customvid.sampling import generate

    prompt = f"a <sks> {adapter.config.class_word} moving right on a blue background"
    adapter.set_schedule("dws")
    runs = {
        "none": lambda: generate(plain, prompt.replace("<sks> ", ""), num_inference_steps=steps),
        "lora": lambda: generate(components, prompt, num_inference_steps=steps, adapters=[adapter]),
    }
    seconds = interleaved_medians(runs, repeats)
    none, lora = seconds["none"], seconds["lora"]
    return {"seconds_none": none, "seconds_lora": lora, "overhead_pct": 100 * (lora / none - 1), "repeats": repeats}


def summarise(rows: list[dict]) -> dict:
    out = {}
    for label in CONDITIONS:
        sel = [r for r in rows if r["condition"] == label]
        out[label] = {k: float(np.nanmean([r[k] for r in sel])) if sel else float("nan")
                      for k in ("identity", "shape", "colour", "texture", "background", "motion", "dynamic",
                                "path_agreement")}
        out[label]["clips"] = len(sel)
    return out


def format_markdown(result: dict) -> str:
    keys = ["identity", "shape", "colour", "texture", "background", "motion", "dynamic", "path_agreement"]
    lines = ["| condition | " + " | ".join(keys) + " | clips |", "|---" * (len(keys) + 2) + "|"]
    for label, row in result["summary"].items():
        cells = [f"{row[k]:.1%}" if k != "path_agreement" else f"{row[k]:.3f}" for k in keys]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {row['clips']} |")
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    from customvid.cli.generate import add_model_args

    p = subparsers.add_parser(
        "subject",
        help="subject LoRA + DWS on the held-out world subjects, measured with the probe",
        description=__doc__.split("\n\n")[1],
    )
    add_model_args(p)
    p.add_argument("--work", type=Path, required=True, help="folder for references, adapters (reused if there)")
    p.add_argument("--subjects", nargs="+", default=None, help="held-out subject names (default: all)")
    p.add_argument("--prompts", type=int, default=6, help="prompts per subject (default 6)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--train-steps", type=int, default=None, help="override train-subject's --steps")
    p.add_argument("--json", default=None, help="also write all rows to this JSON file")
    p.add_argument("--speed-only", action="store_true",
                   help="only the sampling overhead of the first subject's adapter already in --work")
    p.add_argument("--repeats", type=int, default=5, help="interleaved runs for the overhead (default 5)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from customvid.cli.generate import load_from_args
    from customvid.errors import CustomvidError
    from customvid.io import write_json_atomic
    from customvid.world.splits import CUSTOM_SUBJECTS

    subjects = args.subjects or list(CUSTOM_SUBJECTS)
    unknown = [s for s in subjects if s not in CUSTOM_SUBJECTS]
    if unknown:
        raise CustomvidError(f"unknown subject {unknown[0]!r}; known: {', '.join(CUSTOM_SUBJECTS)}")
    if args.speed_only:
        from customvid.adapters import load_adapter

        folder = args.work / "adapters" / subjects[0]
        if not folder.is_dir():
            raise CustomvidError(f"--speed-only: no adapter {folder} yet; run the bench once without it")
        components = load_from_args(args)
        speed = lora_overhead(components, load_adapter(folder, components), load_from_args(args), args.repeats,
                              args.steps)
        print(f"sampling: {speed['seconds_none']:.2f} s/clip without, {speed['seconds_lora']:.2f} s with the LoRA "
              f"(DWS): overhead {speed['overhead_pct']:+.1f} % (median of {speed['repeats']} interleaved runs)")
        return 0
    overrides = {"steps": args.train_steps} if args.train_steps else {}
    result = run_subject_bench(lambda: load_from_args(args), args.work, subjects, args.prompts, args.seeds,
                               args.steps, overrides)
    print(format_markdown(result))
    for name, c in result["vae_ceiling"].items():
        print(f"VAE ceiling {name}: " + ", ".join(f"{k} {v:.0%}" for k, v in c.items()))
    speed = result["speed"]
    print(f"sampling: {speed['seconds_none']:.2f} s/clip without, {speed['seconds_lora']:.2f} s with the LoRA "
          f"(DWS): overhead {speed['overhead_pct']:+.1f} % (median of {speed['repeats']} interleaved runs)")
    for name, t in result["training"].items():
        print(f"{name}: training {t['seconds']} s, adapter {t['adapter_bytes'] / 1e6:.2f} MB")
    if args.json:
        write_json_atomic(args.json, result)
    return 0
