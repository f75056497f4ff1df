"""Where does a model move the subject, for each asked direction? (diagnostic for issue 15)

For each of the 8 directions x 4 subjects x SEEDS, generate the canonical caption (varied backgrounds), probe the
clip and take the centre's end-minus-start displacement (px). Prints per asked direction the mean displacement,
the mean projection on the asked unit direction ("response", px; 0 = ignores the caption) and the probe's
motion accuracy; then the mean displacement over all clips (the model's own drift, whatever was asked).

    python tools/direction_response.py MODEL_DIR [SEEDS] [--opposite-negative] [--cfg SCALE] [--red-circle]

--opposite-negative: the negative prompt is the same caption with the opposite direction (contrastive guidance:
guidance then amplifies only what the direction word changes, instead of everything the caption says).
--red-circle: only "a red circle moving {left,right,up,down} on a black background" (the captions of
tools/direction_x0.py and tools/direction_overfit.py), 4 clips per direction and seed.
"""

import json
import sys

import numpy as np
import torch

from customvid.models.components import load_components
from customvid.sampling import generate
from customvid.world import make_caption, vocab
from customvid.world.probe import probe_video
from customvid.world.spec import Subject

SUBJECTS = [Subject("circle", "red", "solid"), Subject("square", "blue", "solid"),
            Subject("triangle", "green", "solid"), Subject("heart", "white", "solid")]
BACKGROUNDS = ["black", "gray", "blue", "brown"]


OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up", "up_left": "down_right",
            "down_right": "up_left", "up_right": "down_left", "down_left": "up_right"}


def main(folder, seeds, opposite_negative=False, cfg=7.5, red_circle=False):
    c = load_components(None if folder == "embedded" else folder)
    rows = []
    subjects, backgrounds = (SUBJECTS[:1] * 4, ["black"] * 4) if red_circle else (SUBJECTS, BACKGROUNDS)
    directions = {d: vocab.DIRECTIONS[d] for d in ("left", "right", "up", "down")} if red_circle else vocab.DIRECTIONS
    for d, (dx, dy) in directions.items():
        unit = np.array([dx, dy], float) / np.hypot(dx, dy)
        prompts = [make_caption(s, d, backgrounds[i]) for i, s in enumerate(subjects)]
        negatives = [make_caption(s, OPPOSITE[d], backgrounds[i]) for i, s in enumerate(subjects)]
        for seed in seeds:
            out = generate(c, prompts, seed=[seed * 100 + i for i in range(len(prompts))], num_inference_steps=25,
                           guidance_scale=cfg, negative_prompt=negatives if opposite_negative else "")
            for frames in out.frames:
                probe = probe_video(frames)
                ok = ~np.isnan(probe.centres).any(1)
                disp = probe.centres[ok][-1] - probe.centres[ok][0] if ok.sum() >= 2 else np.full(2, np.nan)
                rows.append({"asked": d, "disp": disp.tolist(), "response": float(disp @ unit),
                             "read": probe.motion, "right": probe.motion == d})
    summary = {}
    for d in directions:
        sel = [r for r in rows if r["asked"] == d]
        summary[d] = {"mean_disp": np.nanmean([r["disp"] for r in sel], 0).round(1).tolist(),
                      "response": round(float(np.nanmean([r["response"] for r in sel])), 2),
                      "accuracy": float(np.mean([r["right"] for r in sel]))}
    overall = {"model": folder, "opposite_negative": opposite_negative, "cfg": cfg, "clips": len(rows),
               "mean_response_px": round(float(np.nanmean([r["response"] for r in rows])), 2),
               "accuracy": float(np.mean([r["right"] for r in rows])),
               "drift_px": np.nanmean([r["disp"] for r in rows], 0).round(2).tolist(),
               "reads": {m: sum(r["read"] == m for r in rows) for m in sorted({str(r["read"]) for r in rows})}}
    print(json.dumps({**overall, "per_direction": summary}), flush=True)


if __name__ == "__main__":
    torch.set_num_threads(1)
    args = sys.argv[2:]
    flag = "--opposite-negative" in args
    scale = float(args[args.index("--cfg") + 1]) if "--cfg" in args else 7.5
    seeds = [int(a) for i, a in enumerate(args) if a.lstrip("-").isdigit() and (i == 0 or args[i - 1] != "--cfg")]
    main(sys.argv[1], seeds or [0], flag, scale, "--red-circle" in args)
