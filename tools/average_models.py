"""Weight average ("model soup") of two embedded-layout exports of the same architecture: UNet = (1 - w) * A + w * B,
VAE and everything else from A. Used in issue 15 to combine two warm-started stages of one chain (same lineage, so
their weights lie in one basin and the average is a model, not noise); the result is measured like any export.

    python tools/average_models.py A_DIR B_DIR WEIGHT OUT_DIR     e.g. runs/dirR2_export runs/dirR3_export 0.5 runs/soup
"""

import sys

import torch

from customvid.models.components import load_components, save_embedded


def main(a_dir: str, b_dir: str, weight: str, out_dir: str) -> None:
    w = float(weight)
    if not 0.0 <= w <= 1.0:
        raise SystemExit(f"weight must be in [0, 1], got {w}")
    a, b = load_components(a_dir), load_components(b_dir)

    def arch(unet):  # the config without loader bookkeeping such as _name_or_path
        return type(unet), {k: v for k, v in unet.config.items() if not k.startswith("_")}

    if arch(a.unet) != arch(b.unet):
        raise SystemExit(f"{a_dir} and {b_dir} hold different UNet architectures; they cannot be averaged")
    sb = b.unet.state_dict()
    averaged = {k: torch.lerp(v, sb[k], w) if v.is_floating_point() else v for k, v in a.unet.state_dict().items()}
    a.unet.load_state_dict(averaged)
    # the record names both parents, so the chain stays readable from the shipped folder
    extra = {"average": {"weight_of_b": w, "a": a.metadata, "b": b.metadata, "a_dir": a_dir, "b_dir": b_dir}}
    print(save_embedded(a, out_dir, extra=extra, storage_dtype=torch.float16))


if __name__ == "__main__":
    main(*sys.argv[1:])
