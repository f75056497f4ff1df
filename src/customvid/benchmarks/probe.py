"""Probe-accuracy benchmark: how well `customvid.world.probe.probe_video` reads rendered clips back, clean and
degraded the ways generated video is (noise, blur, colour jitter, dropped frames, mp4), each alone and combined.

    from customvid.benchmarks.probe import run_probe_benchmark, format_probe_table
    print(format_probe_table(run_probe_benchmark(n_clips=300, seed=0)))
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from customvid.world import vocab
from customvid.world.render import background_image, render_clip
from customvid.world.splits import sample_spec

SPLITS = ("train", "composition", "subjects", "motions")
CONDITIONS = ("clean", "noise", "blur", "jitter", "drop", "mp4", "combined")
ATTRIBUTES = ("presence", "empty", "single", "colour", "colour2", "shape", "texture", "background", "motion",
              "box_iou")


# ---------------------------------------------------------------- degradations (uint8 [F, H, W, 3] -> same)


def add_noise(frames: np.ndarray, rng: np.random.Generator, sigma: float = 10.0) -> np.ndarray:
    noisy = frames.astype(np.float32) + rng.normal(0.0, sigma, frames.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def blur(frames: np.ndarray, rng: np.random.Generator, sigma: float = 1.0) -> np.ndarray:
    return np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in frames])


def colour_jitter(frames: np.ndarray, rng: np.random.Generator, strength: float = 0.15) -> np.ndarray:
    """torchvision-style brightness, contrast and saturation factors in [1 - strength, 1 + strength], per clip."""
    b, c, s = rng.uniform(1 - strength, 1 + strength, 3)
    x = frames.astype(np.float32) * b
    grey = x @ np.float32([0.299, 0.587, 0.114])
    x = (x - grey.mean(axis=(1, 2))[:, None, None, None]) * c + grey.mean(axis=(1, 2))[:, None, None, None]
    grey = (x @ np.float32([0.299, 0.587, 0.114]))[..., None]
    x = grey + (x - grey) * s
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def drop_frames(frames: np.ndarray, rng: np.random.Generator, fraction: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """A random ~fraction of the frames removed (order kept); returns the frames and the kept indices."""
    n = len(frames)
    keep = np.sort(rng.choice(n, size=max(2, n - int(round(fraction * n))), replace=False))
    return frames[keep], keep


def mp4_roundtrip(
    frames: np.ndarray, rng: np.random.Generator | None = None, fps: float = 8.0, crf: int = 23
) -> np.ndarray:
    """H.264 (yuv420p) encode and decode in memory, as saving a generated clip does."""
    import av

    _, h, w, _ = frames.shape
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=int(round(fps)))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf)}
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")))
        out.mux(stream.encode())
    buf.seek(0)
    with av.open(buf) as inp:
        decoded = [fr.to_ndarray(format="rgb24") for fr in inp.decode(video=0)]
    return np.stack(decoded)


_PIXEL_DEGRADATIONS: dict[str, Callable] = {
    "noise": add_noise,
    "blur": blur,
    "jitter": colour_jitter,
    "mp4": mp4_roundtrip,
}


def degrade(frames: np.ndarray, condition: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Frames under a benchmark condition, and the indices of the original frames they show."""
    keep = np.arange(len(frames))
    if condition == "clean":
        return frames, keep
    if condition == "drop":
        return drop_frames(frames, rng)
    if condition == "combined":  # in the order a generated clip meets them
        for name in ("blur", "jitter", "noise", "mp4"):
            frames = _PIXEL_DEGRADATIONS[name](frames, rng)
        return drop_frames(frames, rng)
    if condition in _PIXEL_DEGRADATIONS:
        return _PIXEL_DEGRADATIONS[condition](frames, rng), keep
    raise ValueError(f"unknown condition {condition!r}; known: {', '.join(CONDITIONS)}")


# ---------------------------------------------------------------- clips and scoring

@dataclass
class _Case:
    split: str  # a world split, or "empty" for a background-only clip
    index: int
    frames: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray
    truth: dict  # attribute -> expected probe reading


def _cases(n_clips: int, n_empty: int, seed: int, frames: int, width: int, height: int) -> list[_Case]:
    cases = []
    for i in range(n_clips):
        split, index = SPLITS[i % len(SPLITS)], i // len(SPLITS)
        clip = render_clip(sample_spec(split, index, seed=seed, frames=frames, width=width, height=height))
        s = clip.spec
        truth = {"colour": s.subject.colour, "colour2": s.subject.colour2, "shape": s.subject.shape,
                 "texture": s.subject.texture, "background": s.background, "motion": s.motion}
        cases.append(_Case(split, index, clip.frames, clip.masks, clip.boxes, truth))
    for i in range(n_empty):
        name = vocab.BACKGROUNDS[i % len(vocab.BACKGROUNDS)]
        bg = np.clip(np.rint(background_image(name, width, height)), 0, 255).astype(np.uint8)
        truth = {"colour": None, "colour2": None, "shape": None, "texture": None, "background": name,
                 "motion": None}
        cases.append(_Case("empty", i, np.repeat(bg[None], frames, axis=0), np.zeros((frames, height, width), bool),
                           np.full((frames, 4), np.nan), truth))
    return cases


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of matching rows of two [N, 4] x1, y1, x2, y2 arrays; 0 where either is NaN."""
    x1, y1 = np.maximum(a[:, 0], b[:, 0]), np.maximum(a[:, 1], b[:, 1])
    x2, y2 = np.minimum(a[:, 2], b[:, 2]), np.minimum(a[:, 3], b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda z: (z[:, 2] - z[:, 0]) * (z[:, 3] - z[:, 1])  # noqa: E731
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / (area(a) + area(b) - inter)
    return np.nan_to_num(iou, nan=0.0)


@dataclass
class _Tally:
    hits: dict
    totals: dict
    ious: list
    failures: list
    seconds: float = 0.0
    clips: int = 0

    def add(self, attr: str, ok: bool, n: int = 1, hits: float | None = None):
        self.hits[attr] = self.hits.get(attr, 0.0) + (float(ok) * n if hits is None else hits)
        self.totals[attr] = self.totals.get(attr, 0) + n


def _score(case: _Case, keep: np.ndarray, probe, tally: _Tally, condition: str, max_failures: int):
    gt_present = case.masks[keep].any(axis=(1, 2))
    tally.add("presence", True, len(keep), hits=float((probe.present == gt_present).sum()))
    if case.split == "empty":
        tally.add("empty", not probe.present.any() and probe.colour is None and probe.motion is None)
    else:
        tally.add("single", True, int(gt_present.sum()), hits=float((probe.single & gt_present).sum()))
        tally.ious.extend(box_iou(np.asarray(probe.boxes, float), case.boxes[keep])[gt_present].tolist())
    for attr, want in case.truth.items():
        if case.split == "empty" and attr != "background":
            continue
        got = getattr(probe, attr)
        tally.add(attr, got == want)
        if got != want and len(tally.failures) < max_failures:
            tally.failures.append({"condition": condition, "split": case.split, "index": case.index,
                                   "attribute": attr, "want": want, "got": got})


def run_probe_benchmark(n_clips: int = 300, seed: int = 0, conditions: tuple[str, ...] = CONDITIONS,
                        n_empty: int | None = None, frames: int = 16, width: int = 64, height: int = 64,
                        max_failures: int = 200, progress: bool = False) -> dict:
    """Probe accuracy per attribute and condition.

    n_clips subject clips cycle through the splits train, composition, subjects and motions (clip i is
    `sample_spec(split, i // 4, seed)`), plus n_empty background-only clips (default n_clips // 10, at least 7:
    every background). Every condition sees the same clips; its degradations are seeded per clip.

    Returns {"config": ..., "conditions": {condition: {attribute: accuracy, ..., "box_iou": mean IoU,
    "clips": n, "ms_per_clip": probe time}}, "failures": [first failures]}. Attributes: presence (per frame),
    empty (background-only clips read as empty), single (per frame: present and one blob), colour, colour2,
    shape, texture, background, motion (per clip).
    """
    from customvid.world.probe import probe_video

    n_empty = max(len(vocab.BACKGROUNDS), n_clips // 10) if n_empty is None else n_empty
    started = time.perf_counter()
    cases = _cases(n_clips, n_empty, seed, frames, width, height)
    results: dict[str, dict] = {}
    failures: list[dict] = []
    for condition in conditions:
        if condition not in CONDITIONS:
            raise ValueError(f"unknown condition {condition!r}; known: {', '.join(CONDITIONS)}")
        tally = _Tally({}, {}, [], [])
        for k, case in enumerate(cases):
            # seeded by condition name and clip, so any subset of conditions reproduces the same videos
            rng = np.random.default_rng([seed, CONDITIONS.index(condition), k])
            video, keep = degrade(case.frames, condition, rng)
            t0 = time.perf_counter()
            probe = probe_video(video)
            tally.seconds += time.perf_counter() - t0
            tally.clips += 1
            _score(case, keep, probe, tally, condition, max_failures - len(failures))
        row = {attr: tally.hits[attr] / tally.totals[attr] for attr in tally.totals}
        row["box_iou"] = float(np.mean(tally.ious)) if tally.ious else float("nan")
        row["clips"] = tally.clips
        row["ms_per_clip"] = 1000 * tally.seconds / max(tally.clips, 1)
        results[condition] = row
        failures.extend(tally.failures)
        if progress:
            print(f"{condition}: " + ", ".join(f"{k}={v:.3f}" for k, v in row.items()), flush=True)
    config = {"n_clips": n_clips, "n_empty": n_empty, "seed": seed, "frames": frames, "width": width,
              "height": height, "splits": list(SPLITS), "wall_s": time.perf_counter() - started}
    return {"config": config, "conditions": results, "failures": failures}


TABLE_COLUMNS = ("presence", "empty", "single", "colour", "colour2", "shape", "texture", "background", "motion",
                 "box_iou", "ms_per_clip")


def format_probe_table(result: dict) -> str:
    """A markdown table of run_probe_benchmark's result: one row per condition, accuracies in percent."""
    cols = [c for c in TABLE_COLUMNS if any(c in row for row in result["conditions"].values())]
    lines = ["| condition | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for cond, row in result["conditions"].items():
        cells = []
        for c in cols:
            v = row.get(c)
            if v is None:
                cells.append("-")
            elif c == "ms_per_clip":
                cells.append(f"{v:.0f}")
            elif c == "box_iou":
                cells.append(f"{v:.3f}")
            else:
                cells.append(f"{100 * v:.1f}")
        lines.append(f"| {cond} | " + " | ".join(cells) + " |")
    cfg = result["config"]
    lines.append("")
    lines.append(f"{cfg['n_clips']} subject clips ({', '.join(cfg['splits'])}) + {cfg['n_empty']} background-only "
                 f"clips per condition, {cfg['frames']} frames at {cfg['width']}x{cfg['height']}, seed {cfg['seed']}; "
                 "accuracy in %, box IoU mean over ground-truth frames, probe time per clip.")
    return "\n".join(lines)


def register(subparsers) -> None:
    """`customvid bench probe`: the probe's accuracy per attribute on clean and degraded renders."""
    p = subparsers.add_parser(
        "probe",
        help="world-probe accuracy on clean and degraded renders",
        description="Render clips from the train, composition, subjects and motions splits (plus empty ones), "
        "degrade them (noise, blur, colour jitter, dropped frames, mp4, all stacked), probe them and print "
        "accuracy per attribute as a markdown table.",
    )
    p.add_argument("--clips", type=int, default=300, help="subject clips per condition (default: 300)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_run)


def _run(args) -> int:
    from customvid.errors import CustomvidError

    if args.clips < 1:
        raise CustomvidError("bench probe needs --clips >= 1")
    print(format_probe_table(run_probe_benchmark(n_clips=args.clips, seed=args.seed, progress=True)))
    return 0
