"""Does the batch a clip is sampled in change what the zero-shot bench reads? (check for issue 14)

`customvid bench zeroshot` samples 20 clips per call; a single-clip CLI run of the same case looked different
(subject missing in 3 of 8 frames where the bench read it present). Here the held-out subjects x one trajectory x
2 seeds go through `run_variant` of the bench twice, all rows in one batch and one row per batch; printed per clip:
the probe's present fraction both ways and the largest pixel difference.

    python tools/zeroshot_batch_check.py [TRAJECTORY] [THREADS]
"""

import json
import sys

import numpy as np
import torch

from customvid.adapters import load_adapter
from customvid.benchmarks.zeroshot import VARIANTS, bench_cases, run_variant
from customvid.cli.zeroshot_args import ZEROSHOT_FOLDER
from customvid.models.components import EMBEDDED_DIR, load_components
from customvid.world.probe import probe_video
from customvid.world.splits import CUSTOM_SUBJECTS

VARIANT = "reference + motion, blended 0.75"  # the default


def main(trajectory: str) -> None:
    c = load_components(None)
    adapter = load_adapter(EMBEDDED_DIR / ZEROSHOT_FOLDER, c)
    cases = bench_cases(list(CUSTOM_SUBJECTS), [trajectory], c.default_frames, c.default_size, c.fps)
    variant, seeds = VARIANTS[VARIANT], (0, 1)
    together = run_variant(adapter.components, adapter, variant, cases, seeds, 25, batch=20)
    alone = run_variant(adapter.components, adapter, variant, cases, seeds, 25, batch=1)
    rows = []
    for k, (a, b) in enumerate(zip(together, alone, strict=True)):
        rows.append({"subject": cases[k // 2]["subject"], "seed": seeds[k % 2],
                     "present_batched": float(probe_video(a).present.mean()),
                     "present_alone": float(probe_video(b).present.mean()),
                     "max_pixel_diff": int(np.abs(a.astype(int) - b.astype(int)).max())})
    print(json.dumps({"trajectory": trajectory, "variant": VARIANT, "clips": rows}), flush=True)


if __name__ == "__main__":
    torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
    main(sys.argv[1] if len(sys.argv) > 1 else "u_turn")
