"""`customvid bench noise`: Magic-Me's 3D Gaussian noise prior (`--noise ar1:GAMMA`) swept, with and without an
ID adapter.

For each gamma the same prompts and seeds are sampled by the base model (class word) and with each held-out
subject's ID-token adapter (`bench identity`'s "tokens" variant, trained if missing); every clip is probed:
identity and shape, motion accuracy, dynamic degree (VBench's rule on Farneback flow), the subject's travel
(mean centre displacement per frame, px) and a weight-free temporal consistency: the share of frames whose own
colour and shape readings agree with the clip's (CLIP's T.Cons needs CLIP weights, which `customvid evaluate
--clip DIR` uses when a user has them).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

GAMMAS = [0.0, 0.05, 0.15, 0.3, 0.5, 0.7, 0.9]
KEYS = ["identity", "shape", "colour", "motion", "dynamic", "consistency", "travel"]


def consistency_and_travel(frames: np.ndarray) -> dict[str, float]:
    from customvid.world.probe import probe_video

    probe = probe_video(frames)
    agree = [bool(p) and c == probe.colour and s == probe.shape
             for p, c, s in zip(probe.present, probe.frame_colours, probe.frame_shapes, strict=True)]
    steps = np.linalg.norm(np.diff(probe.centres, axis=0), axis=1)
    travel = float(np.nanmean(steps)) if np.isfinite(steps).any() else 0.0
    return {"consistency": float(np.mean(agree)), "travel": travel}


def noise_spec(gamma: float) -> str:
    return "iid" if gamma == 0 else f"ar1:{gamma:g}"


def run_noise_bench(components_factory, work: Path, subjects: list[str], gammas=GAMMAS, prompts_per_subject=4,
                    seeds=(0, 1), steps: int = 25, progress: bool = True, train_overrides: dict | None = None) -> dict:
    from customvid.adapters import load_adapter
    from customvid.benchmarks.identity import evaluate, slug, train_variant
    from customvid.benchmarks.subject import bench_prompts, write_references

    rows = []
    components = components_factory()
    for name in subjects:
        out = work / "adapters" / slug("tokens") / name
        refs = write_references(name, work / "references")
        train_variant(components_factory, name, "tokens", refs, out, progress, train_overrides)
        adapter = load_adapter(out, components)
        prompts = bench_prompts(name, prompts_per_subject)
        for gamma in tqdm(gammas, desc=name, disable=not progress):
            for label, a in (("base (class word)", None), ("ID tokens", adapter)):
                for r in evaluate(components, a, name, prompts, seeds, steps, noise_spec(gamma),
                                  measure=consistency_and_travel):
                    rows.append({"condition": label, "gamma": gamma, **r})
        adapter.detach()
    return {"summary": summarise(rows), "rows": rows,
            "settings": {"subjects": subjects, "gammas": list(gammas), "seeds": list(seeds),
                         "prompts_per_subject": prompts_per_subject, "steps": steps}}


def summarise(rows: list[dict]) -> dict:
    summary = {}
    for label in dict.fromkeys(r["condition"] for r in rows):
        for gamma in sorted({r["gamma"] for r in rows}):
            sel = [r for r in rows if r["condition"] == label and r["gamma"] == gamma]
            summary[f"{label} @ {gamma:g}"] = {"condition": label, "gamma": gamma, "clips": len(sel),
                                               **{k: float(np.mean([r[k] for r in sel])) for k in KEYS}}
    return summary


def format_markdown(summary: dict) -> str:
    lines = ["| condition | gamma | " + " | ".join(KEYS) + " | clips |", "|---" * (len(KEYS) + 3) + "|"]
    for row in summary.values():
        cells = " | ".join(f"{row[k]:.2f} px" if k == "travel" else f"{row[k]:.1%}" for k in KEYS)
        lines.append(f"| {row['condition']} | {row['gamma']:g} | {cells} | {row['clips']} |")
    return "\n".join(lines)


def plot(summary: dict, path: Path) -> None:
    """One panel per measure against gamma, a line per condition (matplotlib, `pip install matplotlib`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(KEYS), figsize=(3.2 * len(KEYS), 3.0))
    for label in dict.fromkeys(r["condition"] for r in summary.values()):
        sel = sorted((r for r in summary.values() if r["condition"] == label), key=lambda r: r["gamma"])
        for ax, key in zip(axes, KEYS, strict=True):
            ax.plot([r["gamma"] for r in sel], [r[key] for r in sel], marker="o", label=label)
            ax.set_title(key + (" (px/frame)" if key == "travel" else ""))
            ax.set_xlabel("gamma")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def register(subparsers: argparse._SubParsersAction) -> None:
    from customvid.cli.generate import add_model_args

    p = subparsers.add_parser("noise", help="the AR(1) noise prior swept, with and without ID tokens",
                              description=__doc__.split("\n\n")[1])
    add_model_args(p)
    p.add_argument("--work", type=Path, required=True, help="bench identity's work folder (adapters reused)")
    p.add_argument("--subjects", nargs="+", default=None, help="held-out subject names (default: all)")
    p.add_argument("--gammas", type=float, nargs="+", default=GAMMAS)
    p.add_argument("--prompts", type=int, default=4, help="prompts per subject (default 4)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--json", default=None, help="also write all rows to this JSON file")
    p.add_argument("--plot", type=Path, default=None, help="write the curves to this PNG (needs matplotlib)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from customvid.cli.generate import load_from_args
    from customvid.errors import CustomvidError
    from customvid.io import write_json_atomic
    from customvid.world.splits import CUSTOM_SUBJECTS

    subjects = args.subjects or list(CUSTOM_SUBJECTS)
    if [s for s in subjects if s not in CUSTOM_SUBJECTS] or not all(0 <= g < 1 for g in args.gammas):
        raise CustomvidError(f"--subjects must be of {', '.join(CUSTOM_SUBJECTS)} and --gammas in [0, 1)")
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ModuleNotFoundError:
            raise CustomvidError("--plot needs matplotlib (pip install \"customvid[plot]\" or matplotlib)") from None
    result = run_noise_bench(lambda: load_from_args(args), args.work, subjects, args.gammas, args.prompts,
                             args.seeds, args.steps)
    print(format_markdown(result["summary"]))
    if args.plot is not None:
        plot(result["summary"], args.plot)
    if args.json:
        for r in result["rows"]:
            r.pop("read", None)
        write_json_atomic(args.json, result)
    return 0
