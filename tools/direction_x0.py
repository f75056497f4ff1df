"""Does the model's x0-prediction put the subject where the caption's direction says, frame by frame?
(diagnostic for issue 15; seconds, not the minutes of sampling and probing)

For "a red circle moving {left,right,up,down} on a black background", 12 seeds, DDIM 25 at CFG 7.5: at the first
step (t = 999, pure noise) and three later steps of the model's own path, the guided x0-prediction is decoded and
the centroid of its redness (r - max(g, b)) taken per frame; printed: the mean last-minus-first displacement (px)
and its projection on the asked direction ("response"). The data's answer for t = 999 is the same centroid on the
mean of 200 rendered clips of each caption (what an ideal model predicts from pure noise). Then time-reversal
equivariance: |f(R x) - R f(x)| / |f(x)| on pure noise (R reverses the frames), beside a fixed frame shuffle for
scale. A reversal-equivariant model's mean prediction from (reversal-invariant) noise is reversal-symmetric: it
cannot tell "left" from "right" there.

    python tools/direction_x0.py MODEL_DIR|embedded
"""

import json
import sys

import numpy as np
import torch

from customvid.models.components import load_components
from customvid.sampling import generate
from customvid.sampling.pipeline import decode_latents
from customvid.world import make_caption, render_clip
from customvid.world.spec import Subject
from customvid.world.splits import build_spec

SUBJECT = Subject("circle", "red", "solid")
UNIT = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
SEEDS = 12


def redness(video: np.ndarray) -> np.ndarray:
    """[..., 3, H, W] RGB (any range) -> [..., H, W] r - max(g, b), clipped at 0: where the red subject is."""
    return np.clip(video[..., 0, :, :] - video[..., 1:, :, :].max(-3), 0, None)


def centroids(weights: np.ndarray) -> np.ndarray:
    """[..., H, W] non-negative weights -> [..., 2] (x, y) centroids."""
    ys, xs = np.mgrid[: weights.shape[-2], : weights.shape[-1]]
    m = weights.sum((-1, -2)) + 1e-6
    return np.stack([(weights * xs).sum((-1, -2)) / m, (weights * ys).sum((-1, -2)) / m], -1)


def data_displacement(direction: str, frames: int, n: int = 200) -> np.ndarray:
    rng = np.random.default_rng(0)
    mean = sum(render_clip(build_spec(SUBJECT, direction, "black", rng, frames=frames)).masks.astype(float)
               for _ in range(n)) / n
    cen = centroids(mean)
    return cen[-1] - cen[0]


@torch.no_grad()
def x0_displacements(c, caption: str) -> dict:
    saved = {}

    def grab(i, t, latents, state):
        if i in (0, 3, 6, 10):
            saved[int(t)] = latents.clone()

    generate(c, [caption] * SEEDS, seed=list(range(SEEDS)), num_inference_steps=25, callback=grab)
    text = torch.cat([c.encode_prompt([""] * SEEDS), c.encode_prompt([caption] * SEEDS)])
    out = {}
    for t, lat in saved.items():
        inp = c.scheduler.scale_model_input(torch.cat([lat, lat]), t)
        vu, vc = c.unet(inp, torch.full((2 * SEEDS,), t), encoder_hidden_states=text).sample.chunk(2)
        a = c.scheduler.alphas_cumprod[t]
        x0 = a.sqrt() * lat - (1 - a).sqrt() * (vu + 7.5 * (vc - vu))
        video = decode_latents(c.vae, x0).numpy()  # [B, F, 3, H, W]
        cen = centroids(redness(video))
        out[t] = (cen[:, -1] - cen[:, 0]).mean(0)
    return out


@torch.no_grad()
def reversal_error(c) -> dict:
    x = torch.randn((8, c.unet.config.in_channels, c.default_frames, *[s // 4 for s in c.default_size]),
                    generator=torch.Generator().manual_seed(0))
    text = c.encode_prompt([make_caption(SUBJECT, "right", "black")] * len(x))
    perm = torch.randperm(c.default_frames, generator=torch.Generator().manual_seed(1))
    out = {}
    for t in (999, 900, 700, 500):
        tt = torch.full((len(x),), t)
        a = c.unet(x, tt, encoder_hidden_states=text).sample
        r = c.unet(x.flip(2), tt, encoder_hidden_states=text).sample.flip(2)
        s = c.unet(x[:, :, perm], tt, encoder_hidden_states=text).sample[:, :, perm.argsort()]
        out[t] = {"reversal": round(((r - a).norm() / a.norm()).item(), 4),
                  "shuffle": round(((s - a).norm() / a.norm()).item(), 4)}
    return out


def main(folder: str) -> None:
    c = load_components(None if folder == "embedded" else folder)
    rows = {}
    for d, unit in UNIT.items():
        disp = x0_displacements(c, make_caption(SUBJECT, d, "black"))
        rows[d] = {"data_t999": data_displacement(d, c.default_frames).round(1).tolist(),
                   **{f"t{t}": {"disp": v.round(1).tolist(), "response": round(float(v @ np.array(unit)), 2)}
                      for t, v in disp.items()}}
    ts = [k for k in rows["left"] if k.startswith("t")]
    summary = {t: round(float(np.mean([rows[d][t]["response"] for d in UNIT])), 2) for t in ts}
    print(json.dumps({"model": folder, "mean_response_px": summary,
                      "data_response_px": round(float(np.mean([np.array(rows[d]["data_t999"]) @ np.array(u)
                                                               for d, u in UNIT.items()])), 1),
                      "per_direction": rows, "reversal_vs_shuffle": reversal_error(c)}), flush=True)


if __name__ == "__main__":
    torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
    main(sys.argv[1] if len(sys.argv) > 1 else "embedded")
