"""`customvid bench identity`: Magic-Me's ID tokens against the subject LoRA, with and without the masked loss.

For every held-out world subject, each variant (tokens / lora / lora+tokens, each with and without the
mask-normalised loss on the world's true masks) trains on the subject's reference photos with train-subject's
defaults for its method; then the subject-LoRA benchmark's prompts and seeds (backgrounds and motions the photos
never show) are sampled with the adapter at its method's default schedule, and every clip is probed: identity
and its parts, the prompted background, motion, dynamic degree, and how often a background of the photos leaks
into the clip instead of the prompted one (what the masked loss should keep out).
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from customvid.benchmarks.subject import bench_prompts, score, write_references
from customvid.world import vocab

# variant -> train-subject settings (the method's defaults for everything not named)
VARIANTS = {
    "tokens": {"method": "tokens"},
    "tokens, masked": {"method": "tokens", "masked_loss": True},
    "lora": {"method": "lora"},
    "lora, masked": {"method": "lora", "masked_loss": True},
    "lora+tokens": {"method": "lora+tokens"},
    "lora+tokens, masked": {"method": "lora+tokens", "masked_loss": True},
    # learning-rate and augmentation trials for the tokens method
    "tokens, lr 5e-3": {"method": "tokens", "loop": {"lr": 5e-3}},
    "tokens, lr 2e-2": {"method": "tokens", "loop": {"lr": 2e-2}},
    "tokens, augmented": {"method": "tokens", "augment": True},
    "tokens, 300 steps": {"method": "tokens", "loop": {"steps": 300}},
}
DEFAULT_VARIANTS = ["tokens", "tokens, masked", "lora", "lora, masked", "lora+tokens", "lora+tokens, masked"]
KEYS = ["identity", "shape", "colour", "texture", "background", "leak", "motion", "dynamic"]


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def train_variant(components_factory, name: str, variant: str, refs: Path, out: Path, progress: bool,
                  overrides: dict | None = None) -> dict:
    """Train (or reuse) one adapter; its wall time and size. `overrides`: settings over the variant's (a "loop"
    entry merges into its loop settings)."""
    from customvid.training.subject import subject_config, train_subject
    from customvid.world.splits import CUSTOM_SUBJECTS

    seconds = None
    if not out.exists():
        settings = {**VARIANTS[variant], **(overrides or {})}
        settings["loop"] = {**VARIANTS[variant].get("loop", {}), **(overrides or {}).get("loop", {})}
        cfg = subject_config(settings.pop("method"), CUSTOM_SUBJECTS[name].shape, "<sks>", **settings)
        t0 = time.time()
        train_subject(components_factory(), refs, out, cfg, progress=progress)
        seconds = round(time.time() - t0, 1)
    return {"seconds": seconds, "adapter_bytes": sum(p.stat().st_size for p in out.iterdir())}


def evaluate(components, adapter, name: str, prompts, seeds, steps: int, noise: str = "iid",
             measure=None) -> list[dict]:
    """Probe rows of the adapter (None: the base model with the class word) on the prompts x seeds; `measure`
    (frames -> dict) adds its own columns."""
    from customvid.sampling import generate
    from customvid.world.splits import CUSTOM_SUBJECTS, reference_specs

    subject = CUSTOM_SUBJECTS[name]
    seen = {s.background for s in reference_specs(name)}
    rows = []
    for motion, background in prompts:
        phrase = vocab.MOTION_PHRASES[motion][0]
        word = "<sks> " if adapter is not None else ""
        prompt = f"a {word}{subject.shape} {phrase} on a {background} background"
        out = generate(components, [prompt] * len(seeds), seed=list(seeds), num_inference_steps=steps,
                       adapters=[adapter] if adapter is not None else [], noise=noise)
        for k, seed in enumerate(seeds):
            s = score(out.frames[k], subject, background, motion)
            s.pop("centres")
            s["leak"] = float(s["read"]["background"] in seen and s["read"]["background"] != background)
            s.update(measure(out.frames[k]) if measure else {})
            rows.append({"subject": name, "seed": seed, "prompt": prompt, **s})
    return rows


def run_identity_bench(components_factory, work: Path, subjects: list[str], variants: list[str],
                       prompts_per_subject: int = 6, seeds=(0, 1), steps: int = 25, progress: bool = True,
                       train_overrides: dict | None = None) -> dict:
    from customvid.adapters import load_adapter

    rows, trainings = [], {}
    for name in subjects:
        refs = write_references(name, work / "references")
        prompts = bench_prompts(name, prompts_per_subject)
        components = components_factory()
        for r in evaluate(components, None, name, prompts, seeds, steps):
            rows.append({"variant": "base (class word)", **r})
        for variant in tqdm(variants, desc=name, disable=not progress):
            out = work / "adapters" / slug(variant) / name
            trainings[f"{variant}/{name}"] = train_variant(components_factory, name, variant, refs, out, progress,
                                                           train_overrides)
            adapter = load_adapter(out, components)  # the method's default schedule
            for r in evaluate(components, adapter, name, prompts, seeds, steps):
                rows.append({"variant": variant, **r})
            adapter.detach()
    return {"summary": summarise(rows, ["base (class word)", *variants], trainings), "training": trainings,
            "rows": rows, "settings": {"subjects": subjects, "variants": variants, "seeds": list(seeds),
                                       "prompts_per_subject": prompts_per_subject, "steps": steps}}


def summarise(rows: list[dict], variants: list[str], trainings: dict) -> dict:
    out = {}
    for variant in variants:
        sel = [r for r in rows if r["variant"] == variant]
        out[variant] = {k: float(np.mean([r[k] for r in sel])) for k in KEYS}
        out[variant]["clips"] = len(sel)
        t = [v for key, v in trainings.items() if key.rsplit("/", 1)[0] == variant]
        secs = [v["seconds"] for v in t if v["seconds"] is not None]
        out[variant]["train_seconds"] = float(np.mean(secs)) if secs else None
        out[variant]["adapter_mb"] = float(np.mean([v["adapter_bytes"] for v in t])) / 1e6 if t else None
    return out


def format_markdown(summary: dict) -> str:
    lines = ["| variant | " + " | ".join(KEYS) + " | clips | training s | adapter MB |", "|---" * (len(KEYS) + 4) + "|"]
    for variant, row in summary.items():
        secs = f"{row['train_seconds']:.0f}" if row["train_seconds"] else "-"
        size = f"{row['adapter_mb']:.3f}" if row["adapter_mb"] else "-"
        cells = " | ".join(f"{row[k]:.1%}" for k in KEYS)
        lines.append(f"| {variant} | {cells} | {row['clips']} | {secs} | {size} |")
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    from customvid.cli.generate import add_model_args

    p = subparsers.add_parser("identity", help="ID tokens vs LoRA, masked vs plain loss, on the held-out subjects",
                              description=__doc__.split("\n\n")[1])
    add_model_args(p)
    p.add_argument("--work", type=Path, required=True, help="folder for references and adapters (reused if there)")
    p.add_argument("--subjects", nargs="+", default=None, help="held-out subject names (default: all)")
    p.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, metavar="VARIANT",
                   help=f"of: {'; '.join(VARIANTS)} (default: the first six)")
    p.add_argument("--prompts", type=int, default=6, help="prompts per subject (default 6)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--json", default=None, help="also write all rows to this JSON file")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from customvid.cli.generate import load_from_args
    from customvid.errors import CustomvidError
    from customvid.io import write_json_atomic
    from customvid.world.splits import CUSTOM_SUBJECTS

    subjects = args.subjects or list(CUSTOM_SUBJECTS)
    unknown = [s for s in subjects if s not in CUSTOM_SUBJECTS] + [v for v in args.variants if v not in VARIANTS]
    if unknown:
        raise CustomvidError(f"unknown subject or variant {unknown[0]!r}")
    result = run_identity_bench(lambda: load_from_args(args), args.work, subjects, args.variants, args.prompts,
                                args.seeds, args.steps)
    print(format_markdown(result["summary"]))
    if args.json:
        write_json_atomic(args.json, result)
    return 0
