"""Inference settings of one zero-shot adapter, swept on the cases of `customvid bench zeroshot` (its default
variant, reference + motion module with the blended mask, or --variant), with a paired test between settings
(issue 14: box guidance, adapter weight, CFG scale, sampling steps).

A setting is `BOX_GUIDANCE,WEIGHT[,CFG[,STEPS]]` (defaults CFG 7.5, STEPS 25, the bench's). Every setting runs the
same clips (held-out subjects x paths x seeds), so settings pair clip by clip; the first setting is the reference
the others are compared with (sign-flip test, as tools/paired_compare.py).

    OMP_NUM_THREADS=1 python tools/zeroshot_sweep.py --zeroshot DIR --settings 0,1 1,1 0.5,1 [--trajectories ...]
        [--seeds 0 1] [--json out.json]
"""

import argparse
import dataclasses
import json

import numpy as np

from customvid.adapters import load_adapter
from customvid.benchmarks.zeroshot import VARIANTS, bench_cases, run_variant, score_clip
from customvid.models import load_components
from customvid.world.splits import CUSTOM_SUBJECTS, TRAJECTORIES

KEYS = ("miou", "cd", "colour_dist", "colour", "present", "background")


def run_setting(components, adapter, cases, seeds, setting: str, variant: str) -> list[dict]:
    box_guidance, weight, *rest = (float(x) for x in setting.split(","))
    cfg, steps = (rest + [7.5, 25][len(rest):])[:2]
    # box guidance out of [0, 1] extrapolates (a diagnostic, not a user setting: the variant is not validated)
    chosen = dataclasses.replace(VARIANTS[variant], box_guidance=box_guidance)
    adapter.set_schedule(weight)  # generate sets the weight from the schedule at every step
    videos = run_variant(components, adapter, chosen, cases, seeds, int(steps), guidance_scale=cfg)
    rows = [score_clip(v, cases[k // len(seeds)]) for k, v in enumerate(videos)]
    for r in rows:
        r.pop("read")
    return rows


def main() -> None:
    from paired_compare import sign_flip_p

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--zeroshot", required=True)
    p.add_argument("--settings", nargs="+", required=True)
    p.add_argument("--trajectories", nargs="+", default=list(TRAJECTORIES))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--variant", default="reference + motion, blended 0.75", choices=list(VARIANTS))
    p.add_argument("--json")
    args = p.parse_args()
    components = load_components(None)
    cases = bench_cases(list(CUSTOM_SUBJECTS), args.trajectories, components.default_frames,
                        components.default_size, components.fps)
    adapter = load_adapter(args.zeroshot, components)
    results = {}
    for setting in args.settings:
        rows = results[setting] = run_setting(components, adapter, cases, tuple(args.seeds), setting, args.variant)
        means = {k: np.mean([r[k] for r in rows if r[k] is not None]) for k in KEYS}
        print(f"{setting}: " + ", ".join(f"{k} {v:.3f}" for k, v in means.items()) + f" ({len(rows)} clips)",
              flush=True)
    first = args.settings[0]
    for setting in args.settings[1:]:
        for k in ("miou", "cd", "colour_dist"):
            d = np.array([b[k] - a[k] for a, b in zip(results[first], results[setting], strict=True)
                          if a[k] is not None and b[k] is not None])
            print(f"{setting} - {first}: {k} {d.mean():+.3f}, higher in {(d > 0).sum()}, lower in {(d < 0).sum()}, "
                  f"p {sign_flip_p(d):.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"zeroshot": args.zeroshot, "trajectories": args.trajectories, "seeds": args.seeds,
                       "results": results}, f)


if __name__ == "__main__":
    main()
