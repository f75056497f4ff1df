"""Paired comparison of two `customvid bench base` runs on the same prompts and seeds (issue 15: is a gap of a few
videos a change or seed noise?). For each of the bench's summary rows: the mean of A and B, the videos where A scores
higher and where B does, and the two-sided p-value of a paired sign-flip permutation test on the per-video
differences (for 0/1 scores this is McNemar's exact test; present_single is a fraction of frames, hence the
general form; 200,000 seeded draws).

    python tools/paired_compare.py A.json[,A2.json] B.json[,B2.json]
"""

import json
import sys

import numpy as np

from customvid.benchmarks.base import SUMMARY_ROWS


def videos(paths: str) -> dict:
    return {(r["prompt"], r["seed"]): r for path in paths.split(",") for r in json.load(open(path))["rows"]}


def sign_flip_p(diffs: np.ndarray, draws: int = 200_000) -> float:
    diffs = diffs[diffs != 0]
    if not len(diffs):
        return 1.0
    signs = np.random.default_rng(0).choice([-1.0, 1.0], size=(draws, len(diffs)))
    return float((np.abs(signs @ diffs) >= abs(diffs.sum()) - 1e-9).mean())


def main(a_paths: str, b_paths: str) -> None:
    a, b = videos(a_paths), videos(b_paths)
    if a.keys() != b.keys():
        raise SystemExit(
            f"the runs differ in prompts/seeds ({len(a)} and {len(b)} videos, {len(a.keys() & b.keys())} shared)"
        )
    print("| row (videos) | A | B | videos A higher | videos B higher | p |\n|---|---:|---:|---:|---:|---:|")
    for name, key, select in SUMMARY_ROWS:
        pairs = np.array([(a[k][key], b[k][key]) for k in sorted(a) if select(a[k])], dtype=float)
        diffs = pairs[:, 1] - pairs[:, 0]
        print(
            f"| {name} ({len(pairs)}) | {pairs[:, 0].mean():.1%} | {pairs[:, 1].mean():.1%} | {(diffs < 0).sum()} | "
            f"{(diffs > 0).sum()} | {sign_flip_p(diffs):.3f} |"
        )


if __name__ == "__main__":
    main(*sys.argv[1:])
