"""Where box following loses IoU (issue 14): on the cases of `customvid bench zeroshot`, the probe's boxes against
the target boxes for the world's own clips (raw, and through the model's VAE: the ceiling) and for an adapter's
default variant (reference + motion module): mIoU, probed/target box area, centre error in pixels; per path.

    OMP_NUM_THREADS=1 python tools/zeroshot_box_errors.py [ADAPTER_DIR] [--trajectories ...]
"""

import argparse

import numpy as np

from customvid.benchmarks.base import through_vae
from customvid.benchmarks.zeroshot import VARIANTS, bench_cases, run_variant
from customvid.metrics.boxes import box_iou
from customvid.models import load_components
from customvid.world.probe import probe_video
from customvid.world.splits import CUSTOM_SUBJECTS, TRAJECTORIES


def box_errors(frames: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: IoU, probed area / target area, centre distance (px) of the probe's box against the target."""
    found = np.asarray(probe_video(frames).boxes, np.float64)

    def area(b):
        return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])

    def centre(b):
        return np.stack([b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], 1) / 2

    return box_iou(found, target), area(found) / area(target), np.linalg.norm(centre(found) - centre(target), axis=1)


def report(label: str, errors: list) -> None:
    iou, ratio, dist = (np.concatenate([e[i] for e in errors]) for i in range(3))
    print(f"{label}: mIoU {np.mean([e[0].mean() for e in errors]):.3f}, area ratio median {np.nanmedian(ratio):.2f}, "
          f"centre error {np.nanmean(dist):.2f} px ({len(errors)} clips)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("adapter", nargs="?")
    p.add_argument("--trajectories", nargs="+", default=list(TRAJECTORIES))
    args = p.parse_args()
    components = load_components(None)
    cases = bench_cases(list(CUSTOM_SUBJECTS), args.trajectories, components.default_frames,
                        components.default_size, components.fps)
    areas = [np.prod(c["boxes"][:, 2:] - c["boxes"][:, :2], axis=1).mean() for c in cases]
    print(f"target box area: mean {np.mean(areas):.0f} px")
    report("world clips", [box_errors(c["frames"], c["boxes"]) for c in cases])
    report("world clips through the VAE", [box_errors(through_vae(components.vae, c["frames"]), c["boxes"])
                                            for c in cases])
    if args.adapter:
        from customvid.adapters import load_adapter

        adapter = load_adapter(args.adapter, components)
        seeds = (0, 1)
        videos = run_variant(components, adapter, VARIANTS["reference + motion, blended 0.75"], cases, seeds, 25)
        errors = [box_errors(v, cases[k // len(seeds)]["boxes"]) for k, v in enumerate(videos)]
        report(f"{args.adapter}, reference + motion", errors)
        for t in args.trajectories:
            report(f"  {t}", [e for k, e in enumerate(errors) if cases[k // len(seeds)]["trajectory"] == t])


if __name__ == "__main__":
    main()
