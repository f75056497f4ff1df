"""`customvid bench zeroshot`: DreamVideo-2's zero-shot subject and box-trajectory control, measured.

Cases: every held-out world subject (one reference render, its background blanked by the world's true mask: the
only image the model gets, never seen in training) on every held-out box trajectory (the `trajectories` split:
paths no base motion makes), on a background the reference does not show, once per seed. The prompt names the
subject by its class word only, as a user of a zero-shot method writes it ("a diamond making a u-turn on a gray
background"): its colours and pattern can come from the image alone. Every clip is probed: mIoU and CD
(centroid distance / frame diagonal) of the probe's subject box against the target boxes, identity (shape,
colour, second colour and texture all right) and its parts, and the prompted background. Beside the probe's
all-or-nothing reading, "colour dist" is continuous: the RGB distance (0-441) between the mean colour of the
probed subject pixels and that of the reference's subject pixels, so a reference that pulls the colour part of
the way shows, even where the VAE cannot reproduce a held-out colour exactly (its round trip of the reference
gives the floor).

Variants switch parts of one trained adapter at inference (the paper's mask ablation retrains; here the adapter
trained with the blended mask is run with each mask, which is said beside the numbers): the conditions alone,
the mask modes, and the training-free box control. `--compare LABEL=DIR` adds other trained adapters (e.g. a
loss-weight ablation) run with both conditions and their own mask.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from customvid.benchmarks.base import through_vae
from customvid.benchmarks.subject import score, vae_ceiling


@dataclass(frozen=True)
class Variant:
    reference: bool  # the subject image through reference attention
    boxes: str | None  # None, "trained" (the motion module) or "free" (training-free control)
    mask_mode: str | None = None  # reference-attention mask at inference (None: the adapter's own)
    reference_guidance: bool = True  # False: the reference in both branches of classifier-free guidance
    box_guidance: float | None = None  # share of the motion module out of the unconditional branch (None: adapter's)


VARIANTS = {
    "base (prompt only)": Variant(False, None),
    "reference + motion, blended 0.75": Variant(True, "trained", "blended"),
    "reference + motion, binary mask": Variant(True, "trained", "binary"),
    "reference + motion, no mask": Variant(True, "trained", "none"),
    "reference + motion, reference in both CFG branches": Variant(True, "trained", "blended", False),
    "reference + motion, boxes in both CFG branches": Variant(True, "trained", "blended", box_guidance=0.0),
    "reference attention alone": Variant(True, None),
    "motion module alone": Variant(False, "trained"),
    "training-free box control": Variant(False, "free"),
    "reference + training-free boxes": Variant(True, "free"),  # the boxes also mask the reference (adapter's mode)
    "reference + training-free boxes, reference unmasked": Variant(True, "free", "none"),
}
KEYS = ["miou", "cd", "identity", "shape", "colour", "texture", "background", "present", "colour_dist"]


def mean_colour_distance(frames: np.ndarray, masks: np.ndarray, colour: np.ndarray) -> float | None:
    """RGB distance between the mean colour of the masked pixels of uint8 frames [F, H, W, 3] (masks [F, H, W]) and
    `colour` [3]; None when the mask is empty (no subject to compare)."""
    if not masks.any():
        return None
    return float(np.linalg.norm(frames[masks].astype(np.float64).mean(0) - colour))


def bench_cases(subjects: list[str], trajectories: list[str], frames: int, size: tuple[int, int],
                fps: float) -> list[dict]:
    """One case per (held-out subject, held-out trajectory): image, mask, prompt, target boxes [F, 4] px, and the
    world's own clip of it (frames, the ground truth the boxes come from)."""
    from customvid.world import make_caption, render_clip, vocab
    from customvid.world.splits import CUSTOM_SUBJECTS, build_spec, reference_specs

    height, width = size
    cases = []
    for i, name in enumerate(subjects):
        subject = CUSTOM_SUBJECTS[name]
        ref_spec = reference_specs(name, n=1, width=width, height=height)[0]
        ref = render_clip(ref_spec)
        backgrounds = [b for b in vocab.BACKGROUNDS if b != ref_spec.background]
        for j, trajectory in enumerate(trajectories):
            background = backgrounds[(i + j) % len(backgrounds)]
            caption = make_caption(subject, trajectory, background, words=subject.shape)
            spec = build_spec(subject, trajectory, background, np.random.default_rng([i, j, 55]), frames=frames,
                              width=width, height=height, fps=fps, caption=caption)
            clip = render_clip(spec)
            cases.append({"subject": name, "trajectory": trajectory, "background": background, "prompt": spec.caption,
                          "phrase": subject.shape, "image": ref.frames[0], "mask": ref.masks[0],
                          "ref_colour": ref.frames[0][ref.masks[0]].astype(np.float64).mean(0),
                          "boxes": clip.boxes, "frames": clip.frames})
    return cases


def run_variant(components, adapter, variant: Variant, cases: list[dict], seeds, steps: int,
                batch: int = 20, guidance_scale: float | None = None) -> list[np.ndarray]:
    """Generated uint8 clips, case-major then seed, of one variant (adapter: the attached zero-shot adapter or
    None, required when the variant uses a trained part; guidance_scale None: generate's own)."""
    from customvid.sampling import generate
    from customvid.sampling.box_control import free_box_control, initial_latents

    rows = [(c, s) for c in cases for s in seeds]
    out = []
    fields = ("mask_mode", "reference_guidance", "box_guidance")
    saved = [getattr(adapter.config, f) for f in fields] if adapter is not None else None
    try:
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            prompts, seed_list = [c["prompt"] for c, _ in chunk], [s for _, s in chunk]
            boxes = [c["boxes"] for c, _ in chunk]
            used = []
            if variant.reference or variant.boxes == "trained":
                adapter.config.mask_mode = variant.mask_mode or saved[0]
                adapter.config.reference_guidance = variant.reference_guidance
                adapter.config.box_guidance = saved[2] if variant.box_guidance is None else variant.box_guidance
                # beside the free control the boxes only mask the reference (as `generate --box-control free` does)
                adapter.set_condition(
                    subject=np.stack([c["image"] for c, _ in chunk]) if variant.reference else None,
                    subject_mask=np.stack([c["mask"] for c, _ in chunk]) if variant.reference else None,
                    boxes=np.stack(boxes) if variant.boxes else None,
                    motion_module=variant.boxes == "trained")
                used = [adapter]
            control, latents = None, None
            if variant.boxes == "free":
                control = free_box_control(components, prompts, boxes, subject=[c["phrase"] for c, _ in chunk])
                latents = control.shape_noise(initial_latents(components, len(chunk), seed=seed_list))
            guidance = {} if guidance_scale is None else {"guidance_scale": guidance_scale}
            with control or contextlib.nullcontext():
                video = generate(components, prompts, seed=seed_list, num_inference_steps=steps, adapters=used,
                                 callback=control.callback if control else None, latents=latents, **guidance).frames
            out.extend(video)
            if adapter is not None:
                adapter.clear_condition()
    finally:
        if adapter is not None:
            for f, v in zip(fields, saved, strict=True):
                setattr(adapter.config, f, v)
    return out


def score_clip(frames: np.ndarray, case: dict) -> dict:
    from customvid.metrics.cd import video_centroid_distance
    from customvid.metrics.miou import video_miou
    from customvid.world.probe import probe_video
    from customvid.world.splits import CUSTOM_SUBJECTS

    probe = probe_video(frames)
    s = score(frames, CUSTOM_SUBJECTS[case["subject"]], case["background"], case["trajectory"], probe=probe)
    h, w = frames.shape[1:3]
    return {"miou": video_miou(probe.boxes, case["boxes"]), "present": float(probe.present.mean()),
            "colour_dist": mean_colour_distance(frames, probe.masks, case["ref_colour"]),
            "cd": video_centroid_distance(probe.boxes, case["boxes"], w, h),
            **{k: s[k] for k in ("identity", "shape", "colour", "texture", "background")}, "read": s["read"]}


def sampling_overhead(components, plain, adapter, case: dict, steps: int, repeats: int = 3) -> dict:
    """Seconds per clip of plain sampling, with both trained modules, and with the training-free control,
    interleaved in one process (ratio of medians)."""
    from customvid.benchmarks.timing import interleaved_medians
    from customvid.sampling import generate
    from customvid.sampling.box_control import free_box_control

    def trained():
        adapter.set_condition(subject=case["image"], subject_mask=case["mask"], boxes=case["boxes"])
        generate(components, case["prompt"], num_inference_steps=steps, adapters=[adapter])
        adapter.clear_condition()

    def free():
        with free_box_control(plain, case["prompt"], case["boxes"], subject=case["phrase"]) as control:
            generate(plain, case["prompt"], num_inference_steps=steps, callback=control.callback)

    runs = {"plain": lambda: generate(plain, case["prompt"], num_inference_steps=steps), "trained": trained,
            "free": free}
    seconds = interleaved_medians(runs, repeats)
    return {"seconds": seconds, "repeats": repeats,
            **{f"ratio_{k}": seconds[k] / seconds["plain"] for k in ("trained", "free")}}


def run_zeroshot_bench(components_factory, folder: Path | None, subjects: list[str], trajectories: list[str],
                       variants: list[str], seeds=(0, 1), steps: int = 25, compare: dict | None = None,
                       repeats: int = 3, progress: bool = True) -> dict:
    from customvid.adapters import load_adapter
    from customvid.cli.zeroshot_args import ZEROSHOT_FOLDER
    from customvid.errors import CustomvidError

    components = components_factory()
    size, frames = components.default_size, components.default_frames
    cases = bench_cases(subjects, trajectories, frames, size, components.fps)
    adapter = None
    if any(VARIANTS[v].reference or VARIANTS[v].boxes == "trained" for v in variants):
        default = Path(components.source) / ZEROSHOT_FOLDER
        folder = folder or (default if (default / "adapter.json").is_file() else None)
        if folder is None:
            raise CustomvidError(f"no zero-shot modules for {components.source}: give --zeroshot DIR (trained "
                                 "with customvid train-zeroshot)")
        adapter = load_adapter(folder, components)
    jobs = [(v, adapter, VARIANTS[v]) for v in variants]
    extra = []
    for label, path in (compare or {}).items():
        other = components_factory()
        extra.append(load_adapter(path, other))
        jobs.append((label, extra[-1], Variant(True, "trained")))
    rows, seconds = [], {}
    for label, a, variant in tqdm(jobs, desc="variants", disable=not progress):
        t0 = time.time()
        comps = a.components if a is not None else components
        videos = run_variant(comps, a, variant, cases, seeds, steps)
        seconds[label] = round(time.time() - t0, 1)
        for k, video in enumerate(videos):
            case, seed = cases[k // len(seeds)], seeds[k % len(seeds)]
            rows.append({"variant": label, "subject": case["subject"], "trajectory": case["trajectory"],
                         "seed": seed, "prompt": case["prompt"], **score_clip(video, case)})
    ceilings = {name: vae_ceiling(components, name) for name in subjects}
    for case in cases:  # the colour-distance floor: the reference itself through the VAE
        if "colour_dist" not in ceilings[case["subject"]]:
            ceilings[case["subject"]]["colour_dist"] = reference_roundtrip_distance(components, case)
    speed = None
    if adapter is not None and repeats > 0:
        speed = sampling_overhead(components, components_factory(), adapter, cases[0], steps, repeats)
    return {"summary": summarise(rows, [j[0] for j in jobs]), "per_subject": per_subject(rows),
            "vae_ceiling": ceilings, "speed": speed, "variant_seconds": seconds, "rows": rows,
            "settings": {"subjects": subjects, "trajectories": trajectories, "seeds": list(seeds), "steps": steps,
                         "adapter": str(folder) if folder else None,
                         "compare": {k: str(v) for k, v in (compare or {}).items()}}}


def reference_roundtrip_distance(components, case: dict) -> float:
    """colour dist of the reference image after a round trip through the model's VAE (same mask)."""
    image = through_vae(components.vae, case["image"][None])
    return mean_colour_distance(image, case["mask"][None], case["ref_colour"])


def _mean(values) -> float:
    v = [x for x in values if x is not None]
    return float(np.mean(v)) if v else float("nan")


def summarise(rows: list[dict], labels: list[str]) -> dict:
    out = {}
    for label in labels:
        sel = [r for r in rows if r["variant"] == label]
        out[label] = {k: _mean(r[k] for r in sel) for k in KEYS}
        out[label]["clips"] = len(sel)
    return out


def per_subject(rows: list[dict]) -> dict:
    """variant -> subject -> identity parts: which held-out subjects the image carries."""
    out: dict = {}
    for r in rows:
        out.setdefault(r["variant"], {}).setdefault(r["subject"], []).append(r)
    keys = ("identity", "shape", "colour", "texture", "miou", "colour_dist")
    return {v: {s: {k: _mean(r[k] for r in sel) for k in keys} for s, sel in by.items()} for v, by in out.items()}


def format_markdown(summary: dict) -> str:
    lines = ["| variant | mIoU | CD | identity | shape | colour | texture | background | present | colour dist "
             "| clips |", "|---" * 11 + "|"]
    for label, r in summary.items():
        pct = " | ".join(f"{r[k]:.1%}" for k in ("identity", "shape", "colour", "texture", "background", "present"))
        lines.append(f"| {label} | {r['miou']:.3f} | {r['cd']:.3f} | {pct} | {r['colour_dist']:.1f} | {r['clips']} |")
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    from customvid.cli.generate import add_model_args

    p = subparsers.add_parser("zeroshot", help="zero-shot subject + box control on held-out subjects and paths",
                              description=__doc__.split("\n\n")[1])
    add_model_args(p)
    p.add_argument("--zeroshot", type=Path, default=None,
                   help="zero-shot adapter folder (default: the model folder's zeroshot/)")
    p.add_argument("--subjects", nargs="+", default=None, help="held-out subject names (default: all)")
    p.add_argument("--trajectories", nargs="+", default=None, help="held-out trajectories (default: all)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), metavar="VARIANT",
                   help=f"of: {'; '.join(VARIANTS)} (default: all)")
    p.add_argument("--compare", nargs="+", default=[], metavar="LABEL=DIR",
                   help="more trained zero-shot adapters, run with both conditions")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--repeats", type=int, default=3, help="interleaved timing runs (0: no timing)")
    p.add_argument("--json", default=None, help="also write all rows to this JSON file")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from customvid.cli.generate import load_from_args
    from customvid.errors import CustomvidError
    from customvid.io import write_json_atomic
    from customvid.world.splits import CUSTOM_SUBJECTS, TRAJECTORIES

    subjects, trajectories = args.subjects or list(CUSTOM_SUBJECTS), args.trajectories or list(TRAJECTORIES)
    unknown = ([s for s in subjects if s not in CUSTOM_SUBJECTS] + [t for t in trajectories if t not in TRAJECTORIES]
               + [v for v in args.variants if v not in VARIANTS])
    if unknown:
        raise CustomvidError(f"unknown subject, trajectory or variant {unknown[0]!r}")
    compare = {}
    for item in args.compare:
        label, sep, path = item.partition("=")
        if not sep or not (Path(path) / "adapter.json").is_file():
            raise CustomvidError(f"--compare {item!r}: expected LABEL=DIR with DIR an adapter folder")
        compare[label] = Path(path)
    result = run_zeroshot_bench(lambda: load_from_args(args), args.zeroshot, subjects, trajectories, args.variants,
                                tuple(args.seeds), args.steps, compare, args.repeats)
    print(format_markdown(result["summary"]))
    for name, c in result["vae_ceiling"].items():
        print(f"VAE ceiling {name}: " + ", ".join(f"{k} {v:.1f}" if k == "colour_dist" else f"{k} {v:.0%}"
                                                  for k, v in c.items()))
    if result["speed"]:
        s = result["speed"]["seconds"]
        print(f"sampling s/clip (median of {result['speed']['repeats']} interleaved): plain {s['plain']:.2f}, "
              f"trained modules {s['trained']:.2f} (x{result['speed']['ratio_trained']:.2f}), training-free "
              f"{s['free']:.2f} (x{result['speed']['ratio_free']:.2f})")
    if args.json:
        write_json_atomic(args.json, result)
    return 0
