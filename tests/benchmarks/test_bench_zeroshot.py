"""`customvid bench zeroshot` end to end on the tiny model with a randomised zero-shot adapter (numbers
meaningless, code real), and its ground truth: a rendered case scores as it should."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from customvid.adapters.zeroshot import ZeroShotAdapter, ZeroShotConfig
from customvid.benchmarks.zeroshot import VARIANTS, bench_cases, format_markdown, run_zeroshot_bench, score_clip
from customvid.cli import main
from customvid.models import load_components


@pytest.fixture(scope="module")
def adapter_dir(tiny_components, tmp_path_factory):
    import copy

    components = dataclasses.replace(tiny_components, unet=copy.deepcopy(tiny_components.unet), adapters=[])
    adapter = ZeroShotAdapter(ZeroShotConfig(encoder_channels=(8, 8), encoder_heads=2)).attach(components)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in adapter.net.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return adapter.save(tmp_path_factory.mktemp("zs") / "zeroshot")


def test_cases_are_held_out_subjects_on_held_out_paths():
    cases = bench_cases(["teal_ring", "banded_cross"], ["l_turn", "wave"], 8, (64, 64), 4.0)
    assert [(c["subject"], c["trajectory"]) for c in cases] == [
        ("teal_ring", "l_turn"), ("teal_ring", "wave"), ("banded_cross", "l_turn"), ("banded_cross", "wave")]
    for c in cases:
        assert c["boxes"].shape == (8, 4) and c["image"].shape == (64, 64, 3) and c["mask"].any()
        assert c["phrase"] in c["prompt"] and f"{c['background']} background" in c["prompt"]
    assert cases[0]["boxes"][-1, 1] > cases[0]["boxes"][0, 1] + 5  # the L-turn ends lower than it starts


def test_a_rendered_case_scores_full_marks():
    from customvid.world import render_clip
    from customvid.world.splits import CUSTOM_SUBJECTS, build_spec

    case = bench_cases(["teal_ring"], ["u_turn"], 8, (64, 64), 4.0)[0]
    spec = build_spec(CUSTOM_SUBJECTS["teal_ring"], "u_turn", case["background"], np.random.default_rng([0, 0, 55]),
                      frames=8, fps=4.0, caption=case["prompt"])
    s = score_clip(render_clip(spec).frames, case)
    assert s["miou"] > 0.9 and s["cd"] < 0.01 and s["identity"] == 1.0 and s["background"] == 1.0
    shifted = dict(case, boxes=case["boxes"] + [20, 0, 20, 0])  # the same clip against boxes 20 px off
    assert score_clip(render_clip(spec).frames, shifted)["miou"] < 0.5


def test_zeroshot_bench_runs_every_variant_on_the_tiny_model(tiny_model_dir, adapter_dir):
    result = run_zeroshot_bench(lambda: load_components(tiny_model_dir), adapter_dir, ["teal_ring"], ["wave"],
                                list(VARIANTS), seeds=(0, 1), steps=2, compare={"again": adapter_dir}, repeats=1,
                                progress=False)
    assert list(result["summary"]) == [*VARIANTS, "again"]
    assert all(r["clips"] == 2 for r in result["summary"].values())
    rows = {(r["variant"], r["seed"]): r for r in result["rows"]}
    assert set(rows) == {(v, s) for v in [*VARIANTS, "again"] for s in (0, 1)}
    assert result["speed"]["seconds"]["trained"] > 0 and result["speed"]["ratio_free"] > 0
    assert "| motion module alone |" in format_markdown(result["summary"])


def test_bench_zeroshot_cli_needs_modules(tiny_model_dir, tmp_path, capsys):
    assert main(["bench", "zeroshot", "--model", str(tiny_model_dir), "--subjects", "teal_ring",
                 "--trajectories", "wave", "--steps", "1", "--seeds", "0", "--repeats", "0"]) == 2
    assert "no zero-shot modules" in capsys.readouterr().err
    assert main(["bench", "zeroshot", "--model", str(tiny_model_dir), "--compare", "x"]) == 2
    assert "expected LABEL=DIR" in capsys.readouterr().err
