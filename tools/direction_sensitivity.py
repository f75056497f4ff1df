"""How much does a model's loss depend on the caption's motion words? (diagnostic for issue 15)

For 40 world clips of directional motions and grow/shrink (seen subjects, fixed seed), the v-prediction MSE with
the true caption vs the same caption with the opposite motion, at fixed noise and t in {999, 900, 750, 500}.
A model that reads the direction has a clearly lower loss with the true caption: gap = (opp - true) / true.

    python tools/direction_sensitivity.py MODEL_DIR [MODEL_DIR ...]
"""

import json
import sys

import numpy as np
import torch

from customvid.models.components import load_components
from customvid.training.base import encode_clips
from customvid.training.data import frames_to_tensor
from customvid.world import make_caption, render_clip
from customvid.world.spec import Subject
from customvid.world.splits import build_spec

OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up", "up_left": "down_right",
            "down_right": "up_left", "up_right": "down_left", "down_left": "up_right", "grow": "shrink",
            "shrink": "grow"}
SUBJECTS = [Subject("circle", "red", "solid"), Subject("square", "blue", "solid"),
            Subject("star", "yellow", "striped"), Subject("heart", "white", "dotted")]


@torch.no_grad()
def sensitivity(folder: str | None) -> dict:
    c = load_components(None if folder == "embedded" else folder)
    rng = np.random.default_rng(5)
    clips, true_c, opp_c = [], [], []
    for motion, opposite in OPPOSITE.items():
        for subject in SUBJECTS:
            spec = build_spec(subject, motion, "black", rng, frames=c.default_frames)
            clips.append(frames_to_tensor(render_clip(spec).frames).movedim(0, 1))
            true_c.append(make_caption(subject, motion, "black"))
            opp_c.append(make_caption(subject, opposite, "black"))
    z = encode_clips(c.vae, torch.stack(clips))
    out = {}
    for t in (999, 900, 750, 500):
        noise = torch.randn(z.shape, generator=torch.Generator().manual_seed(t))
        tt = torch.full((len(z),), t)
        noisy, target = c.scheduler.add_noise(z, noise, tt), c.scheduler.get_velocity(z, noise, tt)
        losses = {}
        for name, captions in (("true", true_c), ("opposite", opp_c)):
            pred = c.unet(noisy, tt, encoder_hidden_states=c.encode_prompt(captions)).sample
            losses[name] = ((pred - target) ** 2).mean().item()
        out[t] = round((losses["opposite"] - losses["true"]) / losses["true"], 4)
    return out


if __name__ == "__main__":
    torch.set_num_threads(1)
    for folder in sys.argv[1:] or ["embedded"]:
        print(json.dumps({"model": folder, "gap_by_t": sensitivity(folder)}), flush=True)
