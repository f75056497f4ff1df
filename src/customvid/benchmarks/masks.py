"""`customvid bench masks`: the weight-free subject segmenters (`customvid.segmentation`) against the world's true
masks.

Images: the reference photos of every held-out subject (`reference_specs`, what `customvid world references`
writes) and the first frames of a sample of train-split clips (solid, striped and dotted subjects on every
background), each rendered at every size asked (the same scenes, scaled), clean and "degraded" like a phone
photo (Gaussian blur 0.7 px, noise sigma 6, JPEG quality 85). Prints mean / min IoU per segmenter, per split
and per texture, and seconds per image.

    from customvid.benchmarks.masks import format_masks_table, run_masks_benchmark
    print(format_masks_table(run_masks_benchmark()))
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from customvid.world import vocab

CONDITIONS = ("clean", "degraded")
TEXTURES = tuple(vocab.ALL_TEXTURES)


def degrade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from customvid.benchmarks.probe import add_noise, blur

    x = add_noise(blur(image[None], rng, sigma=0.7), rng, sigma=6.0)[0]
    _, buf = cv2.imencode(".jpg", np.ascontiguousarray(x[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]


def bench_images(size: int, n_refs: int, n_train: int, seed: int, subjects=None) -> list[dict]:
    """{split, name, texture, background, image, mask} for the held-out references and the train sample."""
    from customvid.world.render import render_clip
    from customvid.world.splits import CUSTOM_SUBJECTS, reference_specs, sample_spec

    specs = [("subjects", name, spec) for name in (subjects if subjects is not None else CUSTOM_SUBJECTS)
             for spec in reference_specs(name, n_refs, seed, size, size)] if n_refs else []
    specs += [("train", None, sample_spec("train", i, seed, frames=1, width=size, height=size))
              for i in range(n_train)]
    out = []
    for split, name, spec in specs:
        clip = render_clip(spec)
        out.append({"split": split, "name": name or spec.subject.phrase(), "texture": spec.subject.texture,
                    "background": spec.background, "image": clip.frames[0], "mask": clip.masks[0]})
    return out


def run_masks_benchmark(n_refs: int = 6, n_train: int = 42, sizes=(64, 256), conditions=CONDITIONS, seed: int = 0,
                        segmenters=None, subjects=None) -> dict:
    """IoU of every weight-free segmenter on every image: {"config", "rows" (one per size x condition x
    segmenter), "images" (per image and segmenter)}."""
    from customvid.segmentation import WEIGHT_FREE, mask_iou, segment

    segmenters = list(segmenters or WEIGHT_FREE)
    rows, images = [], []
    for size in sizes:
        cases = bench_images(size, n_refs, n_train, seed, subjects)
        for condition in conditions:
            rng = np.random.default_rng([seed, size, CONDITIONS.index(condition)])
            inputs = [c["image"] if condition == "clean" else degrade(c["image"], rng) for c in cases]
            for method in segmenters:
                ious, seconds = [], 0.0
                for case, image in zip(cases, inputs, strict=True):
                    start = time.perf_counter()
                    pred = segment(image, method)
                    seconds += time.perf_counter() - start
                    ious.append(mask_iou(pred, case["mask"]))
                    images.append({"size": size, "condition": condition, "segmenter": method, "iou": ious[-1],
                                   **{k: case[k] for k in ("split", "name", "texture", "background")}})
                ious = np.array(ious)
                row = {"size": size, "condition": condition, "segmenter": method, "images": len(ious),
                       "mean": float(ious.mean()), "min": float(ious.min()),
                       "seconds_per_image": seconds / len(ious)}
                for key, values in (("split", ("subjects", "train")), ("texture", TEXTURES)):
                    for v in values:
                        pick = [i for i, c in enumerate(cases) if c[key] == v]
                        row[v] = float(ious[pick].mean()) if pick else None
                rows.append(row)
    config = {"n_refs": n_refs, "n_train": n_train, "sizes": list(sizes), "conditions": list(conditions),
              "seed": seed, "subjects": subjects}
    return {"config": config, "rows": rows, "images": images}


def format_masks_table(result: dict) -> str:
    cols = ["mean", "min", "subjects", "train", *TEXTURES]
    head = ["size", "condition", "segmenter", "mean IoU", "min IoU", "held-out", "train", *TEXTURES, "s/image"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["rows"]:
        cells = [f"{r['size']} px", r["condition"], r["segmenter"]]
        cells += ["-" if r[c] is None else f"{r[c]:.3f}" for c in cols]
        cells.append(f"{r['seconds_per_image']:.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def register(subparsers) -> None:
    """`customvid bench masks`: the weight-free subject segmenters' IoU against the world's true masks."""
    p = subparsers.add_parser(
        "masks",
        help="subject segmenters' IoU against the world's true masks",
        description="Render the held-out subjects' reference photos and a sample of train-split frames, segment "
        "them with every weight-free segmenter (clean and degraded) and print mean / min IoU against the true "
        "masks per segmenter, split and texture, and seconds per image, as a markdown table.",
    )
    p.add_argument("--refs", type=int, default=6, help="reference photos per held-out subject (default 6)")
    p.add_argument("--train", type=int, default=42, help="train-split images (default 42)")
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 256], help="image sizes in px (default 64 256)")
    p.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write all rows and per-image IoUs to this JSON file")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from customvid.errors import CustomvidError
    from customvid.io import write_json_atomic

    if args.refs < 0 or args.train < 0 or args.refs + args.train == 0 or min(args.sizes) < 16:
        raise CustomvidError("bench masks needs --refs >= 0 and --train >= 0 (not both 0) and --sizes >= 16")
    result = run_masks_benchmark(args.refs, args.train, tuple(args.sizes), tuple(args.conditions), args.seed)
    print(format_masks_table(result))
    if args.json:
        write_json_atomic(args.json, result)
    return 0
