"""`customvid bench subject` end to end on the tiny model (numbers meaningless, code path real)."""

from __future__ import annotations

import numpy as np

from customvid.benchmarks.subject import CONDITIONS, bench_prompts, path_agreement, run_subject_bench
from customvid.models import load_components
from customvid.world.splits import reference_specs


def test_path_agreement():
    a = np.array([[0.0, 0.0], [10.0, 0.0], [np.nan, np.nan]])
    assert path_agreement(a, a, 64) == 1.0
    assert path_agreement(a, a + [6.4, 0], 64) == np.float64(0.9)
    assert np.isnan(path_agreement(a[2:], a[2:], 64))


def test_prompts_avoid_the_references_backgrounds():
    for name in ("checkered_diamond", "banded_cross"):
        seen = {s.background for s in reference_specs(name)}
        assert not {bg for _, bg in bench_prompts(name, 6)} & seen
        assert all(m != "still" for m, _ in bench_prompts(name, 6))


def test_bench_runs_on_the_tiny_model(tiny_model_dir, tmp_path):
    overrides = {"steps": 1, "batch_size": 2, "prior_clips": 2, "prior_steps": 1, "sample_every": 0}
    result = run_subject_bench(lambda: load_components(tiny_model_dir), tmp_path, ["teal_ring"], 1, (0,), 2,
                               overrides, progress=False)
    assert set(result["summary"]) == set(CONDITIONS)
    assert all(row["clips"] == 1 for row in result["summary"].values())
    base = [r for r in result["rows"] if r["condition"] == "base (class word)"][0]
    assert base["path_agreement"] in (1.0,) or np.isnan(base["path_agreement"])
    assert result["training"]["teal_ring"]["adapter_bytes"] > 0
    assert result["speed"]["seconds_lora"] > 0
