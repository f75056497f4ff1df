"""`customvid bench identity` and `bench noise` end to end on the tiny model (numbers meaningless, code real)."""

from __future__ import annotations

from customvid.benchmarks.identity import format_markdown, run_identity_bench
from customvid.benchmarks.noise import consistency_and_travel, run_noise_bench
from customvid.models import load_components
from customvid.world import render_clip
from customvid.world.splits import CUSTOM_SUBJECTS, build_spec

FAST = {"loop": {"steps": 1, "batch_size": 2, "sample_every": 0}, "prior_clips": 2, "prior_steps": 1}


def test_identity_bench_runs_on_the_tiny_model(tiny_model_dir, tmp_path):
    variants = ["tokens", "lora, masked"]
    result = run_identity_bench(lambda: load_components(tiny_model_dir), tmp_path, ["teal_ring"], variants, 1, (0,),
                                2, progress=False, train_overrides=FAST)
    assert list(result["summary"]) == ["base (class word)", *variants]
    assert all(row["clips"] == 1 for row in result["summary"].values())
    assert result["summary"]["tokens"]["adapter_mb"] < result["summary"]["lora, masked"]["adapter_mb"]
    assert (tmp_path / "adapters" / "lora_masked" / "teal_ring" / "adapter.json").is_file()
    assert "| tokens |" in format_markdown(result["summary"])


def test_noise_bench_sweeps_gamma(tiny_model_dir, tmp_path):
    result = run_noise_bench(lambda: load_components(tiny_model_dir), tmp_path, ["teal_ring"], [0.0, 0.5], 1, (0,),
                             2, progress=False, train_overrides=FAST)
    assert len(result["summary"]) == 4 and {r["gamma"] for r in result["rows"]} == {0.0, 0.5}


def test_consistency_of_a_true_clip_is_full():
    import numpy as np

    spec = build_spec(CUSTOM_SUBJECTS["spotted_hexagon"], "right", "blue", np.random.default_rng(0), frames=8)
    m = consistency_and_travel(render_clip(spec).frames)
    assert m["consistency"] > 0.8 and m["travel"] > 1.0
