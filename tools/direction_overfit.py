"""Can a UNet learn the caption's direction from pure noise when the target is exact? (diagnostic for issue 15)

From a model folder's UNet (converted to the frame-time architecture, whose new layers start at zero), train on the
top of the noise schedule only (t in [985, 999], where x_t is pure noise and the best prediction is the mean clip of
the caption) for 4 captions, "a red circle moving {left,right,up,down} on a black background", batch 8, the recipe's
rates (3e-5, new layers 3e-4). Arms from the same start and the same draws: target = the caption's mean latent
over 200 rendered clips ("mean"), one rendered clip, the usual target ("one clip"), or the mean of 9 rendered clips
("9 clips": what `train-base --reference-clips 8` gives at the top, where its weights are uniform). Every 100 steps the
x0-prediction at t = 999 (conditional, 8 noises per caption) is decoded and its redness centroid's last-minus-first
displacement projected on the asked direction ("response", px of 64; the data's mean clip: ~27 px).

    python tools/direction_overfit.py MODEL_DIR|embedded [STEPS] [THREADS] [--mean-only --save DIR]

--save DIR writes the "mean" arm's model there (sample it with tools/direction_response.py DIR).
"""

import argparse
import copy
import dataclasses
import json
import sys

import numpy as np
import torch
import torch.nn.functional as F

from customvid.models.components import load_components, save_embedded
from customvid.models.temporal_text import FrameTimeUNet3DConditionModel
from customvid.sampling.pipeline import decode_latents
from customvid.training.base import encode_clips
from customvid.training.data import render_clips
from customvid.world import make_caption
from customvid.world.splits import build_spec

sys.path.insert(0, "tools")
from direction_x0 import SUBJECT, UNIT, centroids, redness  # noqa: E402

CLIPS = 200


def caption_clips(direction: str, frames: int, n: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng([seed, list(UNIT).index(direction)])
    return render_clips([build_spec(SUBJECT, direction, "black", rng, frames=frames) for _ in range(n)])


@torch.no_grad()
def response(c, unet, text, a999) -> float:
    unet.eval()
    x = torch.randn((4 * 8, 4, c.default_frames, 16, 16), generator=torch.Generator().manual_seed(123))
    v = unet(x, torch.full((len(x),), 999), encoder_hidden_states=text.repeat_interleave(8, 0)).sample
    x0 = a999.sqrt() * x - (1 - a999).sqrt() * v
    video = decode_latents(c.vae, x0).numpy()
    cen = centroids(redness(video))
    disp = (cen[:, -1] - cen[:, 0]).reshape(4, 8, 2).mean(1)
    unet.train()
    return float(np.mean([disp[i] @ np.array(u) for i, u in enumerate(UNIT.values())]))


def main(folder: str, steps: int, arms=("mean", "one clip", "9 clips"), save: str | None = None) -> None:
    torch.manual_seed(0)  # dropout in the temporal convs draws from torch's global generator
    c = load_components(None if folder == "embedded" else folder)
    start = c.unet
    if not isinstance(start, FrameTimeUNet3DConditionModel):
        start = FrameTimeUNet3DConditionModel.from_unet3d(start)
    frames = c.default_frames
    text = c.encode_prompt([make_caption(SUBJECT, d, "black") for d in UNIT])
    pools = [encode_clips(c.vae, caption_clips(d, frames, CLIPS, 0)) for d in UNIT]  # [CLIPS, 4, F, h, w] each
    means = torch.stack([p.mean(0) for p in pools])
    a = c.scheduler.alphas_cumprod
    out = {"model": folder, "steps": steps}
    for arm in arms:
        unet = copy.deepcopy(start).train().requires_grad_(True)
        new = {id(p) for p in unet.text_temporal_parameters()}
        opt = torch.optim.AdamW([{"params": [p for p in unet.parameters() if id(p) not in new], "lr": 3e-5},
                                 {"params": [p for p in unet.parameters() if id(p) in new], "lr": 3e-4}],
                                weight_decay=1e-2)
        gen = torch.Generator().manual_seed(0)  # the same draws in both arms
        curve = {0: round(response(c, unet, text, a[999]), 2)}
        for step in range(1, steps + 1):
            which = torch.randint(0, 4, (8,), generator=gen)
            pick = torch.randint(0, CLIPS, (8, 9), generator=gen)
            t = torch.randint(985, 1000, (8,), generator=gen)
            noise = torch.randn((8, *means.shape[1:]), generator=gen)
            ab = a[t].view(-1, 1, 1, 1, 1)
            draws = torch.stack([pools[w][p] for w, p in zip(which, pick, strict=True)])  # [8, 9, ...]
            clean = {"mean": means[which], "one clip": draws[:, 0], "9 clips": draws.mean(1)}[arm]
            noisy = ab.sqrt() * clean + (1 - ab).sqrt() * noise
            target = (ab.sqrt() * noisy - clean) / (1 - ab).sqrt()
            loss = F.mse_loss(unet(noisy, t, encoder_hidden_states=text[which]).sample, target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
            opt.step()
            if step % 100 == 0:
                curve[step] = round(response(c, unet, text, a[999]), 2)
                print(arm, step, curve[step], round(loss.item(), 4), flush=True)
        out[arm] = curve
        if save and arm == "mean":
            save_embedded(dataclasses.replace(c, unet=unet.eval().requires_grad_(False)), save,
                          extra={"made_by": "tools/direction_overfit.py", "from": folder, "steps": steps})
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("model", nargs="?", default="embedded")
    p.add_argument("steps", nargs="?", type=int, default=300)
    p.add_argument("threads", nargs="?", type=int, default=2)
    p.add_argument("--mean-only", action="store_true")
    p.add_argument("--save")
    p.add_argument("--arms", nargs="+", default=["mean", "one clip", "9 clips"])
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    main(a.model, a.steps, ("mean",) if a.mean_only else a.arms, a.save)
