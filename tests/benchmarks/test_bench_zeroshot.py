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
    assert s["colour_dist"] < 10  # the same subject as the reference (the probe's mask edges blend in background)
    shifted = dict(case, boxes=case["boxes"] + [20, 0, 20, 0])  # the same clip against boxes 20 px off
    assert score_clip(render_clip(spec).frames, shifted)["miou"] < 0.5


def test_colour_distance_compares_the_masked_mean_colour():
    from customvid.benchmarks.zeroshot import mean_colour_distance

    frames = np.zeros((2, 4, 4, 3), np.uint8)
    frames[:, :2] = [200, 0, 0]
    masks = np.zeros((2, 4, 4), bool)
    masks[:, :2] = True
    assert mean_colour_distance(frames, masks, np.array([200.0, 0, 0])) == 0
    assert mean_colour_distance(frames, masks, np.array([200.0, 30, 40])) == 50
    masks[:, 1] = False
    masks[:, 2, 0] = True  # 4 red pixels and 1 black one per frame: the mean moves a fifth of the way
    assert mean_colour_distance(frames, masks, np.array([200.0, 0, 0])) == pytest.approx(40)
    assert mean_colour_distance(frames, np.zeros_like(masks), np.array([0.0, 0, 0])) is None


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
    assert 0 <= result["vae_ceiling"]["teal_ring"]["colour_dist"] < 442


def test_bench_zeroshot_cli_needs_modules(tiny_model_dir, tmp_path, capsys):
    assert main(["bench", "zeroshot", "--model", str(tiny_model_dir), "--subjects", "teal_ring",
                 "--trajectories", "wave", "--steps", "1", "--seeds", "0", "--repeats", "0"]) == 2
    assert "no zero-shot modules" in capsys.readouterr().err
    assert main(["bench", "zeroshot", "--model", str(tiny_model_dir), "--compare", "x"]) == 2
    assert "expected LABEL=DIR" in capsys.readouterr().err
