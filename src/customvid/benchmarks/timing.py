"""Side-by-side timing: runs compared in one process, interleaved, so drift in a shared machine's load hits all."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def interleaved_medians(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each run over `repeats` rounds, after one untimed warm-up of each; the order within a
    round alternates (forward, then reversed) so no run always goes first."""
    for run in runs.values():
        run()
    names, times = list(runs), {name: [] for name in runs}
    for r in range(repeats):
        for name in names if r % 2 == 0 else reversed(names):
            t0 = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - t0)
    return {name: float(np.median(t)) for name, t in times.items()}
