"""Redness centroid per frame of "a red circle moving {DIR} on a black background" (issue 15's quick look at a
model's paths; DDIM 25, CFG 7.5, as `customvid generate` samples).

    python tools/direction_paths.py MODEL_DIR|embedded SEEDS [DIRS]    e.g. embedded 0,1,2,3 right,left,up,down
"""

import sys

import numpy as np

from customvid.models.components import load_components
from customvid.sampling import generate


def main(model_dir: str, seeds: str, dirs: str = "right") -> None:
    model = load_components() if model_dir == "embedded" else load_components(model_dir)
    for d in dirs.split(","):
        for s in (int(x) for x in seeds.split(",")):
            video = generate(model, f"a red circle moving {d} on a black background", seed=s).frames
            f = np.asarray(video).astype(float).reshape(-1, *np.asarray(video).shape[-3:])
            red = np.clip(f[..., 0] - np.maximum(f[..., 1], f[..., 2]), 0, None)
            ys, xs = np.mgrid[: red.shape[1], : red.shape[2]]
            cx = (red * xs).sum((1, 2)) / red.sum((1, 2))
            cy = (red * ys).sum((1, 2)) / red.sum((1, 2))
            print(d, s, "x", np.round(cx).astype(int).tolist(), "y", np.round(cy).astype(int).tolist(), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
