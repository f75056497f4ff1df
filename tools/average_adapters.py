"""Uniform weight average of adapter folders of one method and config (checkpoints of one training chain, so their
weights share a basin): weights.safetensors = the mean of the parents', adapter.json = the last parent's, without
its inference-only settings (the code's defaults apply), with an "average" record naming every parent and its own
training record. Issue 14 used it on the zero-shot stages.

    python tools/average_adapters.py OUT_DIR PARENT_DIR PARENT_DIR [...]
"""

import json
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file

from customvid.adapters.zeroshot.config import INFERENCE_ONLY


def main(out: str, *parents: str) -> None:
    if len(parents) < 2:
        raise SystemExit("give an output folder and at least two adapter folders")
    if Path(out).exists():
        raise SystemExit(f"{out} exists; remove it first")
    metas = [json.loads((Path(p) / "adapter.json").read_text()) for p in parents]
    modules = [{k: v for k, v in m["config"].items() if k not in INFERENCE_ONLY} for m in metas]
    if any(m["method"] != metas[0]["method"] for m in metas) or any(c != modules[0] for c in modules):
        raise SystemExit("the adapters differ in method or module config; they cannot be averaged")
    weights = [load_file(Path(p) / "weights.safetensors") for p in parents]
    if any(w.keys() != weights[0].keys() for w in weights):
        raise SystemExit("the adapters hold different tensors")
    mean = {k: sum(w[k].double() for w in weights).div(len(weights)).to(weights[0][k].dtype) for k in weights[0]}
    tmp = Path(out + ".tmp")
    tmp.mkdir(parents=True)
    save_file(mean, tmp / "weights.safetensors")
    meta = {**metas[-1], "config": modules[-1]}
    meta["average"] = [{"dir": p, "training": m.get("training")} for p, m in zip(parents, metas, strict=True)]
    (tmp / "adapter.json").write_text(json.dumps(meta, indent=2) + "\n")
    tmp.rename(out)
    print(f"{out}: mean of {len(parents)} adapters")


if __name__ == "__main__":
    main(*sys.argv[1:])
