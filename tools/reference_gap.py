"""Does a zero-shot adapter's reference carry the subject's appearance? (diagnostic for issue 14)

For 16 world training clips (index 50,000 on, so not the first steps' clips) with captions that name the subject
only as "object", the v-prediction MSE inside the box (boxes on) at fixed noise and t in {950, 800, 600, 400, 200},
with: the clip's own reference, no reference, another clip's reference (shifted by one), and, for scale, the full
caption (which names colour, shape and texture) without and with the reference. A reference that carries
appearance gives a lower loss than a wrong one; the full caption without it says how much appearance is worth.

    python tools/reference_gap.py ZEROSHOT_DIR [THREADS]
"""

import sys

import numpy as np
import torch

from customvid.adapters import load_adapter
from customvid.io.boxes import box_masks
from customvid.models import load_components
from customvid.models.backbones import unet_forward
from customvid.training.losses import diffusion_target
from customvid.training.subject import encode_clips
from customvid.training.zeroshot import world_sample

N, FIRST = 16, 50_000


def main(folder: str, threads: int = 2) -> None:
    torch.set_num_threads(threads)
    c = load_components(None)
    adapter = load_adapter(folder, c, name="zeroshot").train(False)
    (h, w), frames = c.default_size, c.default_frames
    generic = [world_sample(FIRST + i, frames, h, w, c.fps, np.random.default_rng(i), 0.0, 1.0) for i in range(N)]
    full = [world_sample(FIRST + i, frames, h, w, c.fps, np.random.default_rng(i), 0.0, 0.0) for i in range(N)]
    latents = encode_clips(c.vae, np.stack([s["frames"] for s in generic]))
    boxes = np.stack([s["boxes"] for s in generic])
    grid = (h // c.vae_scale_factor, w // c.vae_scale_factor)
    inside = torch.from_numpy(np.stack([box_masks(b, (h, w), grid) for b in boxes]))[:, None]  # [N, 1, F, h, w]
    eps = torch.randn(latents.shape, generator=torch.Generator().manual_seed(0))
    subjects, masks = np.stack([s["subject"] for s in generic]), np.stack([s["mask"] for s in generic])
    other = np.roll(np.arange(N), 1)
    arms = {"own reference": (generic, subjects, masks, 1), "no reference": (generic, subjects, masks, 0),
            "another clip's reference": (generic, subjects[other], masks[other], 1),
            "full caption, no reference": (full, subjects, masks, 0),
            "full caption + reference": (full, subjects, masks, 1)}
    print("| t | " + " | ".join(arms) + " |\n|---|" + "---|" * len(arms))
    with torch.no_grad():
        for t in (950, 800, 600, 400, 200):
            tt = torch.full((N,), t)
            noisy, target = c.scheduler.add_noise(latents, eps, tt), diffusion_target(c.scheduler, latents, eps, tt)
            row = []
            for captions, subj, mask, keep in arms.values():
                adapter.set_condition(subject=subj, subject_mask=mask, boxes=boxes, ref_keep=[keep] * N)
                pred = unet_forward(c.unet, noisy, tt, c.encode_prompt([s["caption"] for s in captions]))
                err = ((pred - target) ** 2).mean(1, keepdim=True)
                row.append(float((err * inside).sum() / inside.sum()))
            print(f"| {t} | " + " | ".join(f"{v:.3f}" for v in row) + " |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:]))
