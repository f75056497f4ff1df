"""Redness centroid per frame of "a red circle moving {DIR} on a black background" (issue 15's quick look at a
model's paths; DDIM 25, CFG 7.5, as `customvid generate` samples).

    python tools/direction_paths.py MODEL_DIR|embedded SEEDS [DIRS]    e.g. embedded 0,1,2,3 right,left,up,down
"""

import sys

import numpy as np

from customvid.models.components import load_components
from customvid.sampling import generate

sys.path.insert(0, "tools")
from direction_x0 import centroids, redness  # noqa: E402


def main(model_dir: str, seeds: str, dirs: str = "right") -> None:
    model = load_components() if model_dir == "embedded" else load_components(model_dir)
    for d in dirs.split(","):
        for s in (int(x) for x in seeds.split(",")):
            frames = np.asarray(generate(model, f"a red circle moving {d} on a black background", seed=s).frames)
            rgb = np.moveaxis(frames.reshape(-1, *frames.shape[-3:]).astype(float), -1, -3)  # [F, 3, H, W]
            cen = np.round(centroids(redness(rgb))).astype(int)
            print(d, s, "x", cen[:, 0].tolist(), "y", cen[:, 1].tolist(), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
