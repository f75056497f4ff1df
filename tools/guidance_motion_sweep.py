"""Diagnostic (not part of the package): directional-motion accuracy of a model against the guidance scale.

    python tools/guidance_motion_sweep.py [--model DIR] SCALE [SCALE ...]

Generates the directional-motion prompts of `customvid bench base` (seen pairs, seeds 0 and 1, 25 DDIM steps) at
each scale and prints one JSON line per scale: accuracy and the five motions the probe read most.
"""

import argparse
import collections
import json

from customvid.benchmarks.base import DIRECTIONAL, prompt_set, score_video
from customvid.models.components import load_components
from customvid.sampling import generate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("scales", type=float, nargs="+")
    args = ap.parse_args()
    components = load_components(args.model)
    prompts = [p for p in prompt_set() if p.motion in DIRECTIONAL and not p.held_out]
    for scale in args.scales:
        right, reads = 0.0, collections.Counter()
        for p in prompts:
            out = generate(components, [p.prompt] * 2, seed=[0, 1], num_inference_steps=25, guidance_scale=scale)
            for frames in out.frames:
                score = score_video(frames, p)
                right += score["motion"]
                reads[score["probe"]["motion"]] += 1
        n = 2 * len(prompts)
        print(
            json.dumps({"guidance": scale, "directional_motion": right / n, "videos": n, "reads": reads.most_common(5)})
        )


if __name__ == "__main__":
    main()
